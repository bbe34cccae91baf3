//! The channel messages, laid out as Linux (`include/linux/hyperv.h`) and Hyper-V put
//! them on the wire. Each struct is the body after the 8-byte [`MessageHeader`]; the
//! const asserts pin the whole-message sizes Linux checks against.
//!
//! All fields are plain integers so any byte pattern is a value; meaning is checked by
//! whoever consumes the message.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::flags::OfferFlags;
use crate::ids::{GpadlId, Guid, Relid};
use crate::version::MESSAGE_SINT;

/// The type word of a channel message. Open: guests may send any value.
#[repr(transparent)]
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MessageType(pub u32);

crate::open_enum! {
    MessageType {
        INVALID = 0,
        OFFERCHANNEL = 1,
        RESCIND_CHANNELOFFER = 2,
        REQUESTOFFERS = 3,
        ALLOFFERS_DELIVERED = 4,
        OPENCHANNEL = 5,
        OPENCHANNEL_RESULT = 6,
        CLOSECHANNEL = 7,
        GPADL_HEADER = 8,
        GPADL_BODY = 9,
        GPADL_CREATED = 10,
        GPADL_TEARDOWN = 11,
        GPADL_TORNDOWN = 12,
        RELID_RELEASED = 13,
        INITIATE_CONTACT = 14,
        VERSION_RESPONSE = 15,
        UNLOAD = 16,
        UNLOAD_RESPONSE = 17,
        OPEN_RESERVED_CHANNEL = 18,
        CLOSE_RESERVED_CHANNEL = 19,
        CLOSE_RESERVED_RESPONSE = 20,
        TL_CONNECT_REQUEST = 21,
        MODIFYCHANNEL = 22,
        TL_CONNECT_RESULT = 23,
        MODIFYCHANNEL_RESPONSE = 24,
        MODIFY_CONNECTION = 25,
        MODIFY_CONNECTION_RESPONSE = 26,
        PAUSE = 27,
        PAUSE_RESPONSE = 28,
        RESUME = 29,
    }
}

/// Every channel message starts with this.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MessageHeader {
    pub message_type: MessageType,
    pub padding: u32,
}

pub const HEADER_SIZE: usize = core::mem::size_of::<MessageHeader>();

/// A message body with a fixed type; gives its whole size including the header.
pub trait VmbusMessage: IntoBytes + FromBytes + Immutable + KnownLayout + Sized {
    const TYPE: MessageType;
    const MESSAGE_SIZE: usize = HEADER_SIZE + core::mem::size_of::<Self>();
}

macro_rules! message {
    // No body: the header is the whole message.
    ($(#[$doc:meta])* $ty:ident {}, $msg:ident) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
        pub struct $ty {}
        message!($ty, $msg, 8);
    };
    ($ty:ident, $msg:ident, $size:expr) => {
        impl VmbusMessage for $ty {
            const TYPE: MessageType = MessageType::$msg;
        }
        const _: () = assert!(<$ty as VmbusMessage>::MESSAGE_SIZE == $size);
    };
}

/// The 120 bytes of device-defined data in offers and open requests.
pub type UserDefinedData = [u8; 120];

/// OFFERCHANNEL: the server offers a device to the guest.
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct OfferChannel {
    pub interface_id: Guid,
    pub instance_id: Guid,
    pub reserved: [u32; 4],
    pub flags: OfferFlags,
    pub mmio_megabytes: u16,
    pub user_defined: UserDefinedData,
    pub subchannel_index: u16,
    pub mmio_megabytes_optional: u16,
    pub child_relid: Relid,
    pub monitor_id: u8,
    /// Bit 0: the monitor id is valid (Win7+).
    pub monitor_allocated: u8,
    /// Bit 0: the guest must not also set the shared-interrupt bit (Win7+).
    pub is_dedicated_interrupt: u16,
    /// What the guest passes to HvSignalEvent for this channel (Win7+).
    pub connection_id: u32,
}
message!(OfferChannel, OFFERCHANNEL, 196);

impl fmt::Debug for OfferChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferChannel")
            .field("interface_id", &self.interface_id)
            .field("instance_id", &self.instance_id)
            .field("flags", &self.flags)
            .field("subchannel_index", &self.subchannel_index)
            .field("child_relid", &self.child_relid)
            .field("connection_id", &format_args!("{:#x}", self.connection_id))
            .finish_non_exhaustive()
    }
}

/// RESCIND_CHANNELOFFER: the device is gone; the guest answers with RELID_RELEASED.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RescindChannelOffer {
    pub child_relid: Relid,
}
message!(RescindChannelOffer, RESCIND_CHANNELOFFER, 12);

message!(RequestOffers {}, REQUESTOFFERS);

message!(AllOffersDelivered {}, ALLOFFERS_DELIVERED);

/// OPENCHANNEL: the guest opens a channel on a ring-buffer GPADL it created.
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct OpenChannel {
    pub child_relid: Relid,
    /// Echoed in the result so the guest can match it to its request.
    pub open_id: u32,
    pub ring_buffer_gpadl: GpadlId,
    pub target_vp: u32,
    /// Where the host-to-guest ring starts in the GPADL, in pages; the guest-to-host
    /// ring starts at page 0.
    pub downstream_ring_buffer_page_offset: u32,
    pub user_data: UserDefinedData,
}
message!(OpenChannel, OPENCHANNEL, 148);

impl fmt::Debug for OpenChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenChannel")
            .field("child_relid", &self.child_relid)
            .field("open_id", &self.open_id)
            .field("ring_buffer_gpadl", &self.ring_buffer_gpadl)
            .field("target_vp", &self.target_vp)
            .field(
                "downstream_ring_buffer_page_offset",
                &self.downstream_ring_buffer_page_offset,
            )
            .finish_non_exhaustive()
    }
}

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct OpenResult {
    pub child_relid: Relid,
    pub open_id: u32,
    /// 0 on success; any other value fails the guest's open.
    pub status: u32,
}
message!(OpenResult, OPENCHANNEL_RESULT, 20);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct CloseChannel {
    pub child_relid: Relid,
}
message!(CloseChannel, CLOSECHANNEL, 12);

/// GPADL_HEADER: starts a GPADL. `range_buf_len` bytes of [`crate::gpa::GpaRange`]s
/// follow, in this message and as many GPADL_BODY messages as needed.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpadlHeader {
    pub child_relid: Relid,
    pub gpadl: GpadlId,
    pub range_buf_len: u16,
    pub range_count: u16,
}
message!(GpadlHeader, GPADL_HEADER, 20);

impl GpadlHeader {
    /// Range bytes that fit after the header in one message.
    pub const MAX_DATA: usize = crate::MAX_MESSAGE_SIZE - Self::MESSAGE_SIZE;
}

/// GPADL_BODY: more range bytes (page numbers) for an in-progress GPADL.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpadlBody {
    /// Unused by Linux and by this server.
    pub message_number: u32,
    pub gpadl: GpadlId,
}
message!(GpadlBody, GPADL_BODY, 16);

impl GpadlBody {
    pub const MAX_DATA: usize = crate::MAX_MESSAGE_SIZE - Self::MESSAGE_SIZE;
}

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpadlCreated {
    pub child_relid: Relid,
    pub gpadl: GpadlId,
    /// 0 on success.
    pub status: u32,
}
message!(GpadlCreated, GPADL_CREATED, 20);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpadlTeardown {
    pub child_relid: Relid,
    pub gpadl: GpadlId,
}
message!(GpadlTeardown, GPADL_TEARDOWN, 16);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpadlTorndown {
    pub gpadl: GpadlId,
}
message!(GpadlTorndown, GPADL_TORNDOWN, 12);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RelidReleased {
    pub child_relid: Relid,
}
message!(RelidReleased, RELID_RELEASED, 12);

/// INITIATE_CONTACT: the guest proposes a version.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct InitiateContact {
    pub version_requested: u32,
    /// The VP the server sends channel messages to (Win8.1+; 0 before).
    pub target_vcpu: u32,
    /// Before 5.0: the GPA of the guest's interrupt page. From 5.0: message SINT in
    /// bits 0-7, message VTL in bits 8-15, and (6.0) feature flags in bits 32-63.
    pub interrupt_page_or_target_info: u64,
    pub monitor_page1: u64,
    pub monitor_page2: u64,
}
message!(InitiateContact, INITIATE_CONTACT, 40);

impl InitiateContact {
    pub fn msg_sint(&self) -> u8 {
        self.interrupt_page_or_target_info as u8
    }

    pub fn msg_vtl(&self) -> u8 {
        (self.interrupt_page_or_target_info >> 8) as u8
    }

    pub fn feature_flags(&self) -> u32 {
        (self.interrupt_page_or_target_info >> 32) as u32
    }

    /// The 5.0+ encoding of the union.
    pub fn target_info(sint: u8, vtl: u8, feature_flags: u32) -> u64 {
        u64::from(sint) | u64::from(vtl) << 8 | u64::from(feature_flags) << 32
    }

    /// What a 5.0+ guest that leaves the SINT at its default asks for.
    pub fn default_target_info(feature_flags: u32) -> u64 {
        Self::target_info(MESSAGE_SINT, 0, feature_flags)
    }
}

/// VERSION_RESPONSE. From 6.0 a successful response carries a trailing feature word
/// ([`VersionResponse2`]); Linux reads only the first 16 bytes.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VersionResponse {
    /// Nonzero when the requested version is accepted.
    pub version_supported: u8,
    pub connection_state: ConnectionState,
    pub padding: u16,
    /// From 5.0: the message connection id the guest must post to. Before: the
    /// selected version (informational).
    pub msg_conn_id: u32,
}
message!(VersionResponse, VERSION_RESPONSE, 16);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VersionResponse2 {
    pub response: VersionResponse,
    pub supported_features: u32,
}
message!(VersionResponse2, VERSION_RESPONSE, 20);

/// `VersionResponse::connection_state`.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ConnectionState(pub u8);

crate::open_enum! {
    ConnectionState {
        SUCCESSFUL = 0,
        FAILED_LOW_RESOURCES = 1,
        FAILED_UNKNOWN_FAILURE = 2,
    }
}

message!(Unload {}, UNLOAD);

message!(UnloadResponse {}, UNLOAD_RESPONSE);

/// TL_CONNECT_REQUEST: an hv_sock connect, which this server answers with a refusal.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TlConnectRequest {
    pub guest_endpoint_id: Guid,
    pub host_service_id: Guid,
}
message!(TlConnectRequest, TL_CONNECT_REQUEST, 40);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TlConnectResult {
    pub guest_endpoint_id: Guid,
    pub host_service_id: Guid,
    pub status: u32,
}
message!(TlConnectResult, TL_CONNECT_RESULT, 44);

/// MODIFYCHANNEL (4.1+): retarget a channel's interrupts to another VP.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModifyChannel {
    pub child_relid: Relid,
    pub target_vp: u32,
}
message!(ModifyChannel, MODIFYCHANNEL, 16);

/// MODIFYCHANNEL_RESPONSE (5.3+).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModifyChannelResponse {
    pub child_relid: Relid,
    pub status: u32,
}
message!(ModifyChannelResponse, MODIFYCHANNEL_RESPONSE, 16);

/// MODIFY_CONNECTION (6.0 with the modify-connection feature).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModifyConnection {
    pub monitor_page1: u64,
    pub monitor_page2: u64,
}
message!(ModifyConnection, MODIFY_CONNECTION, 24);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModifyConnectionResponse {
    pub connection_state: ConnectionState,
}
message!(ModifyConnectionResponse, MODIFY_CONNECTION_RESPONSE, 9);

message!(Pause {}, PAUSE);

message!(PauseResponse {}, PAUSE_RESPONSE);

message!(Resume {}, RESUME);

/// One channel message, header included, ready to post. Fixed-size so building one
/// never allocates and can never exceed the hv_message payload.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    len: u8,
    data: [u8; crate::MAX_MESSAGE_SIZE],
}

impl OutgoingMessage {
    pub fn new<T: VmbusMessage>(body: &T) -> Self {
        Self::with_tail(body, &[]).unwrap_or_else(|| unreachable!("fixed messages fit"))
    }

    /// A message whose body is followed by variable data (GPADL page lists). `None`
    /// when the whole would exceed [`crate::MAX_MESSAGE_SIZE`].
    pub fn with_tail<T: VmbusMessage>(body: &T, tail: &[u8]) -> Option<Self> {
        let len = T::MESSAGE_SIZE.checked_add(tail.len())?;
        if len > crate::MAX_MESSAGE_SIZE {
            return None;
        }
        let mut data = [0u8; crate::MAX_MESSAGE_SIZE];
        let header = MessageHeader {
            message_type: T::TYPE,
            padding: 0,
        };
        data[..HEADER_SIZE].copy_from_slice(header.as_bytes());
        data[HEADER_SIZE..T::MESSAGE_SIZE].copy_from_slice(body.as_bytes());
        data[T::MESSAGE_SIZE..len].copy_from_slice(tail);
        Some(Self {
            len: len as u8,
            data,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    pub fn message_type(&self) -> MessageType {
        let mut word = [0u8; 4];
        word.copy_from_slice(&self.data[..4]);
        MessageType(u32::from_le_bytes(word))
    }
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OutgoingMessage({:?}, {} bytes)",
            self.message_type(),
            self.len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn whole_message_sizes_match_linux() {
        // The table in shared/reference/hyperv.md, checked against Debian kernels.
        assert_eq!(OfferChannel::MESSAGE_SIZE, 196);
        assert_eq!(InitiateContact::MESSAGE_SIZE, 40);
        assert_eq!(VersionResponse::MESSAGE_SIZE, 16);
        assert_eq!(OpenChannel::MESSAGE_SIZE, 148);
        assert_eq!(OpenResult::MESSAGE_SIZE, 20);
        assert_eq!(GpadlHeader::MESSAGE_SIZE, 20);
        assert_eq!(GpadlBody::MESSAGE_SIZE, 16);
        assert_eq!(GpadlCreated::MESSAGE_SIZE, 20);
        assert_eq!(RescindChannelOffer::MESSAGE_SIZE, 12);
        assert_eq!(GpadlTorndown::MESSAGE_SIZE, 12);
        assert_eq!(ModifyChannelResponse::MESSAGE_SIZE, 16);
    }

    #[test]
    fn offer_fields_sit_at_linux_offsets() {
        let mut offer = OfferChannel::new_zeroed();
        offer.flags = OfferFlags(0xabcd);
        offer.child_relid = Relid(0x1122_3344);
        offer.connection_id = 0x5566_7788;
        let bytes = OutgoingMessage::new(&offer);
        let b = bytes.as_bytes();
        assert_eq!(&b[0..4], &1u32.to_le_bytes());
        // chn_flags follows two GUIDs and 16 reserved bytes after the header.
        assert_eq!(&b[8 + 48..8 + 50], &0xabcdu16.to_le_bytes());
        assert_eq!(&b[8 + 176..8 + 180], &0x1122_3344u32.to_le_bytes());
        assert_eq!(&b[8 + 184..8 + 188], &0x5566_7788u32.to_le_bytes());
    }

    #[test]
    fn target_info_round_trips() {
        let c = InitiateContact {
            version_requested: 0,
            target_vcpu: 0,
            interrupt_page_or_target_info: InitiateContact::target_info(5, 1, 0x10),
            monitor_page1: 0,
            monitor_page2: 0,
        };
        assert_eq!((c.msg_sint(), c.msg_vtl(), c.feature_flags()), (5, 1, 0x10));
    }

    #[test]
    fn oversized_tails_are_refused() {
        let hdr = GpadlHeader::new_zeroed();
        assert!(OutgoingMessage::with_tail(&hdr, &[0; GpadlHeader::MAX_DATA]).is_some());
        assert!(OutgoingMessage::with_tail(&hdr, &[0; GpadlHeader::MAX_DATA + 1]).is_none());
    }
}
