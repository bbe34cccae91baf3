//! NVSP: the messages of the Network VSP protocol.
//!
//! Every message is a 4-byte type followed by a packed body; senders pad to
//! [`MESSAGE_SIZE`] (Linux's `sizeof(struct nvsp_message)`). Each message is
//! described once, in the [`messages!`] table below, which generates the parser and
//! the encoder so the two cannot drift apart.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What every NVSP packet is padded to: the header plus the largest body (the
/// version-6 PD API completion, 36 bytes).
pub const MESSAGE_SIZE: usize = 40;

/// An NVSP protocol version (`major << 16 | minor`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

impl Version {
    pub const V1: Self = Self(0x2);
    pub const V2: Self = Self(0x30002);
    pub const V4: Self = Self(0x40000);
    pub const V5: Self = Self(0x50000);
    pub const V6: Self = Self(0x60000);
    pub const V61: Self = Self(0x60001);

    /// What netvsp speaks, newest first: version 2 (Windows Server 2008 R2) up to
    /// 6.1, the range Linux proposes from (it tries 6.1, 6, 5, 4, 2, 1 in turn).
    pub const SUPPORTED: [Self; 5] = [Self::V61, Self::V6, Self::V5, Self::V4, Self::V2];

    /// The newest supported version within `min..=max`, as the host picks it.
    pub fn negotiate(min: Self, max: Self) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|v| *v >= min && *v <= max)
    }
}

/// An open message type: a guest may send any value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct MessageType(pub u32);

impl MessageType {
    pub const NONE: Self = Self(0);
    pub const INIT: Self = Self(1);
    pub const INIT_COMPLETE: Self = Self(2);
    pub const SEND_NDIS_VERSION: Self = Self(100);
    pub const SEND_RECEIVE_BUFFER: Self = Self(101);
    pub const SEND_RECEIVE_BUFFER_COMPLETE: Self = Self(102);
    pub const REVOKE_RECEIVE_BUFFER: Self = Self(103);
    pub const SEND_SEND_BUFFER: Self = Self(104);
    pub const SEND_SEND_BUFFER_COMPLETE: Self = Self(105);
    pub const REVOKE_SEND_BUFFER: Self = Self(106);
    pub const SEND_RNDIS_PACKET: Self = Self(107);
    pub const SEND_RNDIS_PACKET_COMPLETE: Self = Self(108);
    /// Version 2: the guest's MTU and capabilities.
    pub const SEND_NDIS_CONFIG: Self = Self(125);
    /// Version 4: the host announces an SR-IOV VF; the guest switches to it.
    pub const SEND_VF_ASSOCIATION: Self = Self(128);
    pub const SWITCH_DATA_PATH: Self = Self(129);
    /// Version 5: vRSS sub-channels and the host's send indirection table.
    pub const OID_QUERY_EX: Self = Self(131);
    pub const OID_QUERY_EX_COMPLETE: Self = Self(132);
    pub const SUBCHANNEL: Self = Self(133);
    pub const SEND_INDIRECTION_TABLE: Self = Self(134);
}

/// An open NVSP status.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct Status(pub u32);

impl Status {
    pub const NONE: Self = Self(0);
    pub const SUCCESS: Self = Self(1);
    pub const FAILURE: Self = Self(2);
    pub const PROTOCOL_TOO_NEW: Self = Self(3);
    pub const PROTOCOL_TOO_OLD: Self = Self(4);
    pub const INVALID_RNDIS_PACKET: Self = Self(5);
    pub const BUSY: Self = Self(6);
    pub const PROTOCOL_UNSUPPORTED: Self = Self(7);
}

/// The id Linux gives its receive buffer; the host's transfer-page packets must
/// name it as their page set.
pub const RECEIVE_BUFFER_ID: u16 = 0xcafe;
pub const SEND_BUFFER_ID: u16 = 0;
/// `send_buf_section_index` of an RNDIS message that is not in the send buffer
/// (it comes as GPA ranges of the packet instead).
pub const NO_SECTION: u32 = 0xffff_ffff;

/// `SEND_RNDIS_PACKET.channel_type`.
pub const CHANNEL_TYPE_DATA: u32 = 0;
pub const CHANNEL_TYPE_CONTROL: u32 = 1;

/// `SUBCHANNEL.op`.
pub const SUBCHANNEL_ALLOCATE: u32 = 1;

wire_structs! {
    mod messages;

    pub struct Init {
        pub min_version: U32,
        pub max_version: U32,
    }

    pub struct InitComplete {
        pub negotiated_version: U32,
        pub max_mdl_chain_length: U32,
        pub status: U32,
    }

    pub struct SendNdisVersion {
        pub major: U32,
        pub minor: U32,
    }

    /// Both buffers are set up by the same message shape.
    pub struct SendBuffer {
        pub gpadl: U32,
        pub id: U16,
    }

    /// How the host cuts the receive buffer: `sub_allocation_count` sections of
    /// `sub_allocation_size` bytes from `offset`.
    pub struct ReceiveBufferSection {
        pub offset: U32,
        pub sub_allocation_size: U32,
        pub sub_allocation_count: U32,
        pub end_offset: U32,
    }

    /// Linux accepts exactly one section starting at offset 0.
    pub struct SendReceiveBufferComplete {
        pub status: U32,
        pub section_count: U32,
        pub section: ReceiveBufferSection,
    }

    pub struct SendSendBufferComplete {
        pub status: U32,
        pub section_size: U32,
    }

    pub struct RevokeBuffer {
        pub id: U16,
    }

    /// "An RNDIS message is in send-buffer section `section_index`" (or, with
    /// [`NO_SECTION`], in the packet's GPA ranges).
    pub struct SendRndisPacket {
        pub channel_type: U32,
        pub section_index: U32,
        pub section_size: U32,
    }

    pub struct SendRndisPacketComplete {
        pub status: U32,
    }

    /// The guest's MTU (frame size including the Ethernet header) and capability bits
    /// (bit 0 VMQ, 1 chimney, 2 SR-IOV, 3 802.1Q, 4 correlation id, 5 teaming,
    /// 6 virtual subnet id, 7 RSC).
    pub struct SendNdisConfig {
        pub mtu: U32,
        pub reserved: U32,
        pub capabilities: U64,
    }

    pub struct VfAssociation {
        pub allocated: U32,
        pub serial: U32,
    }

    pub struct SwitchDataPath {
        pub active_data_path: U32,
    }

    pub struct SubchannelRequest {
        pub op: U32,
        pub count: U32,
    }

    pub struct SubchannelComplete {
        pub status: U32,
        pub count: U32,
    }

    pub struct SendIndirectionTable {
        pub count: U32,
        pub offset: U32,
    }
}

const _: () = {
    assert!(size_of::<Init>() == 8);
    assert!(size_of::<InitComplete>() == 12);
    assert!(size_of::<SendBuffer>() == 6);
    assert!(size_of::<ReceiveBufferSection>() == 16);
    assert!(size_of::<SendReceiveBufferComplete>() == 24);
    assert!(size_of::<SendSendBufferComplete>() == 8);
    assert!(size_of::<SendRndisPacket>() == 12);
    assert!(size_of::<SendNdisConfig>() == 16);
    assert!(size_of::<SubchannelComplete>() == 8);
};

/// Why bytes are not an NVSP message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than the 4 bytes of the type.
    NoHeader,
    /// The body of a known type is cut short.
    Truncated(MessageType),
}

/// One description per message: `Variant = TYPE(Body)`. Generates [`Message`],
/// its parser and its encoder.
macro_rules! messages {
    ($($(#[$doc:meta])* $name:ident = $ty:ident($body:ty),)*) => {
        /// A parsed NVSP message. Types the table does not know stay
        /// [`Message::Unknown`] for the caller to refuse.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub enum Message {
            $($(#[$doc])* $name($body),)*
            Unknown(MessageType),
        }

        impl Message {
            /// Reads one message; bytes past its body (the sender's padding) are
            /// ignored.
            pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
                let (ty, body) =
                    MessageType::read_from_prefix(bytes).map_err(|_| ParseError::NoHeader)?;
                match ty {
                    $(MessageType::$ty => <$body>::read_from_prefix(body)
                        .map(|(b, _)| Self::$name(b))
                        .map_err(|_| ParseError::Truncated(ty)),)*
                    other => Ok(Self::Unknown(other)),
                }
            }

            pub fn message_type(&self) -> MessageType {
                match self {
                    $(Self::$name(_) => MessageType::$ty,)*
                    Self::Unknown(ty) => *ty,
                }
            }

            fn body(&self) -> &[u8] {
                match self {
                    $(Self::$name(b) => b.as_bytes(),)*
                    Self::Unknown(_) => &[],
                }
            }
        }
    };
}

messages! {
    Init = INIT(Init),
    InitComplete = INIT_COMPLETE(InitComplete),
    SendNdisVersion = SEND_NDIS_VERSION(SendNdisVersion),
    SendReceiveBuffer = SEND_RECEIVE_BUFFER(SendBuffer),
    SendReceiveBufferComplete = SEND_RECEIVE_BUFFER_COMPLETE(SendReceiveBufferComplete),
    RevokeReceiveBuffer = REVOKE_RECEIVE_BUFFER(RevokeBuffer),
    SendSendBuffer = SEND_SEND_BUFFER(SendBuffer),
    SendSendBufferComplete = SEND_SEND_BUFFER_COMPLETE(SendSendBufferComplete),
    RevokeSendBuffer = REVOKE_SEND_BUFFER(RevokeBuffer),
    SendRndisPacket = SEND_RNDIS_PACKET(SendRndisPacket),
    SendRndisPacketComplete = SEND_RNDIS_PACKET_COMPLETE(SendRndisPacketComplete),
    SendNdisConfig = SEND_NDIS_CONFIG(SendNdisConfig),
    VfAssociation = SEND_VF_ASSOCIATION(VfAssociation),
    SwitchDataPath = SWITCH_DATA_PATH(SwitchDataPath),
    Subchannel = SUBCHANNEL(SubchannelRequest),
    SendIndirectionTable = SEND_INDIRECTION_TABLE(SendIndirectionTable),
}

impl Message {
    /// The message padded to [`MESSAGE_SIZE`], as Linux sends and expects them.
    pub fn encode(&self) -> [u8; MESSAGE_SIZE] {
        let mut out = [0u8; MESSAGE_SIZE];
        out[..4].copy_from_slice(self.message_type().as_bytes());
        let body = self.body();
        // Every body in the table is at most 32 bytes (asserted above).
        out[4..4 + body.len()].copy_from_slice(body);
        out
    }

    /// The completion of a subchannel request shares the request's type with a
    /// different body: build it here rather than in the table.
    pub fn encode_subchannel_complete(c: SubchannelComplete) -> [u8; MESSAGE_SIZE] {
        let mut out = [0u8; MESSAGE_SIZE];
        out[..4].copy_from_slice(MessageType::SUBCHANNEL.as_bytes());
        out[4..12].copy_from_slice(c.as_bytes());
        out
    }

    /// Reads a subchannel completion (same type as the request, other body).
    pub fn parse_subchannel_complete(bytes: &[u8]) -> Result<SubchannelComplete, ParseError> {
        let (ty, body) = MessageType::read_from_prefix(bytes).map_err(|_| ParseError::NoHeader)?;
        if ty != MessageType::SUBCHANNEL {
            return Err(ParseError::Truncated(ty));
        }
        SubchannelComplete::read_from_prefix(body)
            .map(|(c, _)| c)
            .map_err(|_| ParseError::Truncated(ty))
    }
}

/// `U32` from a plain value, shorter at call sites.
pub fn u32le(v: u32) -> U32 {
    U32::new(v)
}
