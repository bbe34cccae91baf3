//! Remote NDIS messages: what travels inside the NVSP buffers.
//!
//! Every message starts with an 8-byte [`Header`] (type, total length); the offsets
//! inside QUERY, SET, INDICATE_STATUS and PACKET count from the end of that header.
//! [`parse`] checks every length and offset against the bytes it was given and
//! returns slices into them, so the caller never indexes with a peer's number.

use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

use crate::oid::Oid;

/// An open RNDIS message type; completions are the request's type with bit 31 set.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageType(pub u32);

impl MessageType {
    pub const PACKET: Self = Self(1);
    pub const INITIALIZE: Self = Self(2);
    pub const HALT: Self = Self(3);
    pub const QUERY: Self = Self(4);
    pub const SET: Self = Self(5);
    pub const RESET: Self = Self(6);
    pub const INDICATE_STATUS: Self = Self(7);
    pub const KEEPALIVE: Self = Self(8);
    pub const INITIALIZE_COMPLETE: Self = Self(0x8000_0002);
    pub const QUERY_COMPLETE: Self = Self(0x8000_0004);
    pub const SET_COMPLETE: Self = Self(0x8000_0005);
    pub const RESET_COMPLETE: Self = Self(0x8000_0006);
    pub const KEEPALIVE_COMPLETE: Self = Self(0x8000_0008);
}

/// An open NDIS status.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

impl Status {
    pub const SUCCESS: Self = Self(0);
    pub const FAILURE: Self = Self(0xc000_0001);
    pub const NOT_SUPPORTED: Self = Self(0xc000_00bb);
    pub const INVALID_LENGTH: Self = Self(0xc001_0014);
    pub const INVALID_DATA: Self = Self(0xc001_0015);
    pub const BUFFER_TOO_SHORT: Self = Self(0xc001_0016);
    pub const MEDIA_CONNECT: Self = Self(0x4001_000b);
    pub const MEDIA_DISCONNECT: Self = Self(0x4001_000c);
    pub const NETWORK_CHANGE: Self = Self(0x4001_0018);
}

/// The RNDIS version netvsp answers INITIALIZE with (Linux asks for 1.0).
pub const MAJOR_VERSION: u32 = 1;
pub const MINOR_VERSION: u32 = 0;
/// `device_flags`: a connectionless (802.3) device.
pub const DF_CONNECTIONLESS: u32 = 1;
/// `medium`: 802.3.
pub const MEDIUM_802_3: u32 = 0;

wire_structs! {
    mod messages;

    pub struct Header {
        pub message_type: U32,
        pub message_length: U32,
    }

    pub struct InitializeRequest {
        pub request_id: U32,
        pub major_version: U32,
        pub minor_version: U32,
        pub max_transfer_size: U32,
    }

    pub struct InitializeComplete {
        pub request_id: U32,
        pub status: U32,
        pub major_version: U32,
        pub minor_version: U32,
        pub device_flags: U32,
        pub medium: U32,
        pub max_packets_per_message: U32,
        pub max_transfer_size: U32,
        /// log2 of the alignment of packets batched in one message.
        pub packet_alignment_factor: U32,
        pub af_list_offset: U32,
        pub af_list_size: U32,
    }

    /// HALT and KEEPALIVE carry only their id.
    pub struct RequestId {
        pub request_id: U32,
    }

    /// QUERY and SET share this shape; the information buffer follows.
    pub struct OidRequest {
        pub request_id: U32,
        pub oid: U32,
        pub info_buffer_length: U32,
        pub info_buffer_offset: U32,
        pub device_vc_handle: U32,
    }

    pub struct QueryComplete {
        pub request_id: U32,
        pub status: U32,
        pub info_buffer_length: U32,
        pub info_buffer_offset: U32,
    }

    /// SET_COMPLETE and KEEPALIVE_COMPLETE.
    pub struct RequestComplete {
        pub request_id: U32,
        pub status: U32,
    }

    pub struct ResetComplete {
        pub status: U32,
        pub addressing_reset: U32,
    }

    pub struct IndicateStatus {
        pub status: U32,
        pub status_buffer_length: U32,
        pub status_buffer_offset: U32,
    }

    pub struct Packet {
        pub data_offset: U32,
        pub data_length: U32,
        pub oob_data_offset: U32,
        pub oob_data_length: U32,
        pub oob_data_count: U32,
        pub per_packet_info_offset: U32,
        pub per_packet_info_length: U32,
        pub vc_handle: U32,
        pub reserved: U32,
    }

    /// One per-packet-info element; its data starts `offset` bytes into it.
    pub struct PerPacketInfo {
        pub size: U32,
        /// Bits 0..31 the type, bit 31 "internal" (RNDIS rather than NDIS types).
        pub type_internal: U32,
        pub offset: U32,
    }
}

pub const HEADER_SIZE: usize = size_of::<Header>();
/// Header plus [`Packet`]: where a frame with no per-packet info starts.
pub const PACKET_HEADER_SIZE: usize = HEADER_SIZE + size_of::<Packet>();
pub const PPI_HEADER_SIZE: usize = size_of::<PerPacketInfo>();

const _: () = {
    assert!(size_of::<InitializeComplete>() == 44);
    assert!(size_of::<OidRequest>() == 20);
    assert!(size_of::<QueryComplete>() == 16);
    assert!(size_of::<Packet>() == 36);
    assert!(PACKET_HEADER_SIZE == 44);
    assert!(PPI_HEADER_SIZE == 12);
};

/// An open per-packet-info type: bits 0..31 of an element's type word, whose bit
/// 31 says whether it is an NDIS type or an internal RNDIS one. All the named
/// values are NDIS types but [`PpiType::INTERNAL_PACKET_ID`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PpiType(pub u32);

impl PpiType {
    pub const TCPIP_CHECKSUM: Self = Self(0);
    pub const IPSEC: Self = Self(1);
    pub const TCP_LARGE_SEND: Self = Self(2);
    pub const CLASSIFICATION_HANDLE: Self = Self(3);
    pub const SG_LIST: Self = Self(5);
    pub const IEEE_8021Q: Self = Self(6);
    pub const ORIGINAL_PACKET: Self = Self(7);
    pub const HASH_VALUE: Self = Self(8);
    /// Internal type 1: Linux's packet id for fragmented receives.
    pub const INTERNAL_PACKET_ID: Self = Self(1);
}

/// What went wrong, and what of the message could still be read so the answer can
/// name the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// `None` when not even the header was there.
    pub message_type: Option<MessageType>,
    pub request_id: Option<u32>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fewer bytes than the 8-byte header.
    NoHeader,
    /// `message_length` is below the header or beyond the bytes given.
    BadLength,
    /// The fixed body of the type does not fit in `message_length`.
    Truncated,
    /// An offset/length pair points outside the message.
    BadRange,
    /// A data packet with no frame.
    EmptyFrame,
    /// A per-packet-info element with an impossible size or offset.
    BadPerPacketInfo,
}

/// A parsed RNDIS message, borrowing its variable parts from the input.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Packet(DataPacket<'a>),
    Initialize(InitializeRequest),
    Halt(RequestId),
    Query(OidRequest, &'a [u8]),
    Set(OidRequest, &'a [u8]),
    Reset,
    KeepAlive(RequestId),
    InitializeComplete(InitializeComplete),
    QueryComplete(QueryComplete, &'a [u8]),
    SetComplete(RequestComplete),
    ResetComplete(ResetComplete),
    KeepAliveComplete(RequestComplete),
    IndicateStatus(IndicateStatus, &'a [u8]),
    Unknown(MessageType),
}

/// A data packet: the frame and the raw per-packet-info area (walk it with
/// [`DataPacket::per_packet_info`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DataPacket<'a> {
    pub frame: &'a [u8],
    pub per_packet_info: &'a [u8],
}

/// `body[offset..offset + len]`, or `None` if any of it lies outside.
fn sub(body: &[u8], offset: u32, len: u32) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    body.get(start..end)
}

/// Like [`sub`], but an empty buffer is fine wherever its offset points: senders
/// leave the offset of an absent buffer at 0 (or anything).
fn optional_sub(body: &[u8], offset: u32, len: u32) -> Option<&[u8]> {
    if len == 0 {
        Some(&[])
    } else {
        sub(body, offset, len)
    }
}

fn fixed<T: FromBytes>(body: &[u8], err: impl Fn(ErrorKind) -> Error) -> Result<T, Error> {
    T::read_from_prefix(body)
        .map(|(v, _)| v)
        .map_err(|_| err(ErrorKind::Truncated))
}

/// Reads the message at the start of `bytes`. Returns it and its length, so a
/// buffer holding several (Linux batches data packets) can be walked.
pub fn parse(bytes: &[u8]) -> Result<(Message<'_>, usize), Error> {
    let (header, _) = Header::read_from_prefix(bytes).map_err(|_| Error {
        kind: ErrorKind::NoHeader,
        message_type: None,
        request_id: None,
    })?;
    let ty = MessageType(header.message_type.get());
    // The request id, where the type has one, is the first body word.
    let request_id = match ty {
        MessageType::PACKET | MessageType::RESET | MessageType::INDICATE_STATUS => None,
        _ => bytes
            .get(HEADER_SIZE..HEADER_SIZE + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    };
    let err = |kind| Error {
        kind,
        message_type: Some(ty),
        request_id,
    };
    let len =
        usize::try_from(header.message_length.get()).map_err(|_| err(ErrorKind::BadLength))?;
    if len < HEADER_SIZE || len > bytes.len() {
        return Err(err(ErrorKind::BadLength));
    }
    let body = &bytes[HEADER_SIZE..len];
    let info = |offset: U32, length: U32| {
        optional_sub(body, offset.get(), length.get()).ok_or(err(ErrorKind::BadRange))
    };
    let message = match ty {
        MessageType::PACKET => Message::Packet(parse_packet(body).map_err(err)?),
        MessageType::INITIALIZE => Message::Initialize(fixed(body, err)?),
        MessageType::HALT => Message::Halt(fixed(body, err)?),
        MessageType::QUERY | MessageType::SET => {
            let req: OidRequest = fixed(body, err)?;
            let buf = info(req.info_buffer_offset, req.info_buffer_length)?;
            if ty == MessageType::QUERY {
                Message::Query(req, buf)
            } else {
                Message::Set(req, buf)
            }
        }
        MessageType::RESET => Message::Reset,
        MessageType::KEEPALIVE => Message::KeepAlive(fixed(body, err)?),
        MessageType::INITIALIZE_COMPLETE => Message::InitializeComplete(fixed(body, err)?),
        MessageType::QUERY_COMPLETE => {
            let c: QueryComplete = fixed(body, err)?;
            let buf = info(c.info_buffer_offset, c.info_buffer_length)?;
            Message::QueryComplete(c, buf)
        }
        MessageType::SET_COMPLETE => Message::SetComplete(fixed(body, err)?),
        MessageType::RESET_COMPLETE => Message::ResetComplete(fixed(body, err)?),
        MessageType::KEEPALIVE_COMPLETE => Message::KeepAliveComplete(fixed(body, err)?),
        MessageType::INDICATE_STATUS => {
            let s: IndicateStatus = fixed(body, err)?;
            let buf = info(s.status_buffer_offset, s.status_buffer_length)?;
            Message::IndicateStatus(s, buf)
        }
        other => Message::Unknown(other),
    };
    Ok((message, len))
}

fn parse_packet(body: &[u8]) -> Result<DataPacket<'_>, ErrorKind> {
    let (p, _) = Packet::read_from_prefix(body).map_err(|_| ErrorKind::Truncated)?;
    let frame = sub(body, p.data_offset.get(), p.data_length.get()).ok_or(ErrorKind::BadRange)?;
    if frame.is_empty() {
        return Err(ErrorKind::EmptyFrame);
    }
    let per_packet_info = optional_sub(
        body,
        p.per_packet_info_offset.get(),
        p.per_packet_info_length.get(),
    )
    .ok_or(ErrorKind::BadRange)?;
    Ok(DataPacket {
        frame,
        per_packet_info,
    })
}

/// One per-packet-info element as found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketInfo<'a> {
    pub ty: PpiType,
    pub internal: bool,
    pub data: &'a [u8],
}

/// Walks the per-packet-info area; stops at the first malformed element (which it
/// yields as an error), so a hostile size cannot make it loop or overrun.
#[derive(Clone, Debug)]
pub struct PacketInfos<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PacketInfos<'a> {
    type Item = Result<PacketInfo<'a>, ErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = (|| {
            let (h, _) = PerPacketInfo::read_from_prefix(self.rest)
                .map_err(|_| ErrorKind::BadPerPacketInfo)?;
            let size = usize::try_from(h.size.get()).map_err(|_| ErrorKind::BadPerPacketInfo)?;
            let offset =
                usize::try_from(h.offset.get()).map_err(|_| ErrorKind::BadPerPacketInfo)?;
            if size < PPI_HEADER_SIZE
                || size > self.rest.len()
                || offset < PPI_HEADER_SIZE
                || offset > size
            {
                return Err(ErrorKind::BadPerPacketInfo);
            }
            let element = &self.rest[..size];
            self.rest = &self.rest[size..];
            let word = h.type_internal.get();
            Ok(PacketInfo {
                ty: PpiType(word & 0x7fff_ffff),
                internal: word & 0x8000_0000 != 0,
                data: &element[offset..],
            })
        })();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> DataPacket<'a> {
    pub fn per_packet_info(&self) -> PacketInfos<'a> {
        PacketInfos {
            rest: self.per_packet_info,
        }
    }

    /// The 802.1Q tag control word, if the sender moved the tag out of the frame.
    pub fn vlan_tci(&self) -> Result<Option<u16>, ErrorKind> {
        for info in self.per_packet_info() {
            let info = info?;
            if !info.internal && info.ty == PpiType::IEEE_8021Q {
                let word = info.data.get(..4).ok_or(ErrorKind::BadPerPacketInfo)?;
                let v = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                // pri:3 cfi:1 vlanid:12, as in `struct ndis_pkt_8021q_info`.
                let (pri, cfi, id) = (v & 7, (v >> 3) & 1, (v >> 4) & 0xfff);
                return Ok(Some(((pri << 13) | (cfi << 12) | id) as u16));
            }
        }
        Ok(None)
    }
}

/// Appends header + `body` + `tail`, with the header's length covering all three.
pub fn encode(ty: MessageType, body: &[u8], tail: &[u8], out: &mut Vec<u8>) {
    let len = HEADER_SIZE + body.len() + tail.len();
    let header = Header {
        message_type: U32::new(ty.0),
        message_length: U32::new(len as u32),
    };
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(tail);
}

/// A QUERY_COMPLETE. The info offset points just past the fixed body even when
/// empty: Linux rejects a smaller offset before looking at the status.
pub fn query_complete(request_id: u32, status: Status, info: &[u8], out: &mut Vec<u8>) {
    let c = QueryComplete {
        request_id: U32::new(request_id),
        status: U32::new(status.0),
        info_buffer_length: U32::new(info.len() as u32),
        info_buffer_offset: U32::new(size_of::<QueryComplete>() as u32),
    };
    encode(MessageType::QUERY_COMPLETE, c.as_bytes(), info, out);
}

/// A QUERY or SET request with its information buffer right after the body.
pub fn oid_request(ty: MessageType, request_id: u32, oid: Oid, info: &[u8], out: &mut Vec<u8>) {
    let r = OidRequest {
        request_id: U32::new(request_id),
        oid: U32::new(oid.0),
        info_buffer_length: U32::new(info.len() as u32),
        info_buffer_offset: U32::new(size_of::<OidRequest>() as u32),
        device_vc_handle: U32::new(0),
    };
    encode(ty, r.as_bytes(), info, out);
}

pub fn indicate_status(status: Status, buf: &[u8], out: &mut Vec<u8>) {
    let s = IndicateStatus {
        status: U32::new(status.0),
        status_buffer_length: U32::new(buf.len() as u32),
        status_buffer_offset: U32::new(if buf.is_empty() {
            0
        } else {
            size_of::<IndicateStatus>() as u32
        }),
    };
    encode(MessageType::INDICATE_STATUS, s.as_bytes(), buf, out);
}

/// The 44 bytes in front of a frame of `frame_len` bytes that follows `ppi_len`
/// bytes of per-packet info: lets a sender write the frame straight into a
/// buffer without assembling the message first.
pub fn packet_header(frame_len: usize, ppi_len: usize) -> [u8; PACKET_HEADER_SIZE] {
    let body = size_of::<Packet>();
    let p = Packet {
        data_offset: U32::new((body + ppi_len) as u32),
        data_length: U32::new(frame_len as u32),
        per_packet_info_offset: U32::new(if ppi_len == 0 { 0 } else { body as u32 }),
        per_packet_info_length: U32::new(ppi_len as u32),
        ..Packet::default()
    };
    let h = Header {
        message_type: U32::new(MessageType::PACKET.0),
        message_length: U32::new((PACKET_HEADER_SIZE + ppi_len + frame_len) as u32),
    };
    let mut out = [0u8; PACKET_HEADER_SIZE];
    out[..HEADER_SIZE].copy_from_slice(h.as_bytes());
    out[HEADER_SIZE..].copy_from_slice(p.as_bytes());
    out
}

/// A whole data packet: header, per-packet info (already encoded), frame.
pub fn data_packet(frame: &[u8], ppi: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&packet_header(frame.len(), ppi.len()));
    out.extend_from_slice(ppi);
    out.extend_from_slice(frame);
}

/// Appends the 802.1Q per-packet info carrying tag control word `tci` (what
/// [`DataPacket::vlan_tci`] reads back).
pub fn push_vlan(tci: u16, out: &mut Vec<u8>) {
    let tci = u32::from(tci);
    // `struct ndis_pkt_8021q_info`: pri:3 cfi:1 vlanid:12 from bit 0.
    let word = (tci >> 13) | ((tci >> 12) & 1) << 3 | (tci & 0xfff) << 4;
    push_ppi(PpiType::IEEE_8021Q, false, &word.to_le_bytes(), out);
}

/// Appends one per-packet-info element.
pub fn push_ppi(ty: PpiType, internal: bool, data: &[u8], out: &mut Vec<u8>) {
    let h = PerPacketInfo {
        size: U32::new((PPI_HEADER_SIZE + data.len()) as u32),
        type_internal: U32::new(ty.0 | if internal { 0x8000_0000 } else { 0 }),
        offset: U32::new(PPI_HEADER_SIZE as u32),
    };
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
}
