//! Packets that cross between processes: PPC requests/replies in a channel's call
//! page (pd/call_page.rs), and the fault record a dying PD writes for the supervisor.
//! The sender of each is another PD (or a dying one), so decoding is bounded and
//! fails with `None` on anything that is not exactly well-formed.

use ipc::{MessageInfo, MessageRegisters, MAX_MESSAGE_REGISTERS};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Header of a PPC request; `count` registers follow.
#[repr(C)]
#[derive(Copy, Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct CallHeader {
    pub label: u64,
    pub count: u32,
    pub reserved: u32,
}

/// Header of a PPC reply; `count` registers follow.
#[repr(C)]
#[derive(Copy, Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ReplyHeader {
    pub label: u64,
    pub count: u32,
    pub status: ReplyStatus,
}

/// Whether the callee's handler accepted the call.
#[repr(transparent)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ReplyStatus(pub u32);

impl ReplyStatus {
    pub const OK: Self = Self(0);
    /// The callee's `protected` returned an error, or the request was malformed.
    pub const FAILED: Self = Self(1);
}

const _: () = assert!(size_of::<CallHeader>() == 16);
const _: () = assert!(size_of::<ReplyHeader>() == 16);

/// The largest packet either direction carries.
pub const MAX_PACKET: usize = 16 + 8 * MAX_MESSAGE_REGISTERS;

fn encode(header: &[u8], count: usize, mrs: &MessageRegisters, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(header);
    for r in mrs.0.iter().take(count) {
        out.extend_from_slice(&r.to_ne_bytes());
    }
}

/// Copies the registers that follow a header; `None` unless exactly `count` follow.
fn decode_registers(body: &[u8], count: u32, mrs: &mut MessageRegisters) -> Option<usize> {
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= MAX_MESSAGE_REGISTERS)?;
    if body.len() != count * 8 {
        return None;
    }
    for (slot, chunk) in mrs.0.iter_mut().zip(body.chunks_exact(8)) {
        *slot = u64::read_from_bytes(chunk).ok()?;
    }
    Some(count)
}

/// The length of the packet at the start of `bytes` by its header's register
/// count (both headers carry it at the same place), for a packet read out of a
/// call page; `None` when the count is out of range. The decoders check the rest.
pub fn packet_len(bytes: &[u8]) -> Option<usize> {
    let (header, _) = CallHeader::read_from_prefix(bytes).ok()?;
    let count = usize::try_from(header.count)
        .ok()
        .filter(|&c| c <= MAX_MESSAGE_REGISTERS)?;
    Some(size_of::<CallHeader>() + 8 * count)
}

pub fn encode_call(msg: MessageInfo, mrs: &MessageRegisters, out: &mut Vec<u8>) {
    let header = CallHeader {
        label: msg.label(),
        count: msg.count() as u32,
        reserved: 0,
    };
    encode(header.as_bytes(), msg.count(), mrs, out);
}

pub fn decode_call(packet: &[u8], mrs: &mut MessageRegisters) -> Option<MessageInfo> {
    let (header, body) = CallHeader::read_from_prefix(packet).ok()?;
    let count = decode_registers(body, header.count, mrs)?;
    Some(MessageInfo::new(header.label, count))
}

pub fn encode_reply(
    status: ReplyStatus,
    msg: MessageInfo,
    mrs: &MessageRegisters,
    out: &mut Vec<u8>,
) {
    let count = if status == ReplyStatus::OK {
        msg.count()
    } else {
        0
    };
    let header = ReplyHeader {
        label: msg.label(),
        count: count as u32,
        status,
    };
    encode(header.as_bytes(), count, mrs, out);
}

/// `Some(Err(()))` for a well-formed failure reply.
pub fn decode_reply(packet: &[u8], mrs: &mut MessageRegisters) -> Option<Result<MessageInfo, ()>> {
    let (header, body) = ReplyHeader::read_from_prefix(packet).ok()?;
    match header.status {
        ReplyStatus::OK => {
            let count = decode_registers(body, header.count, mrs)?;
            Some(Ok(MessageInfo::new(header.label, count)))
        }
        ReplyStatus::FAILED if body.is_empty() => Some(Err(())),
        _ => None,
    }
}

/// What a PD's fault handler writes to its fault pipe just before it exits.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FaultRecord {
    pub magic: u32,
    /// The signal number, or [`FaultRecord::PANIC`].
    pub kind: u32,
    pub address: u64,
    pub ip: u64,
}

const _: () = assert!(size_of::<FaultRecord>() == 24);

impl FaultRecord {
    pub const MAGIC: u32 = 0x4653_4448; // "HDSF"
    pub const PANIC: u32 = 0xffff_ffff;

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let rec = Self::read_from_bytes(bytes).ok()?;
        (rec.magic == Self::MAGIC).then_some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn call_round_trip_carries_only_count_registers() {
        let mut mrs = MessageRegisters::new();
        mrs.0[0] = 7;
        mrs.0[1] = 8;
        mrs.0[2] = 9;
        let mut buf = Vec::new();
        encode_call(MessageInfo::new(0x42, 2), &mrs, &mut buf);
        assert_eq!(buf.len(), 16 + 16);
        let mut out = MessageRegisters::new();
        let msg = decode_call(&buf, &mut out).unwrap();
        assert_eq!((msg.label(), msg.count()), (0x42, 2));
        assert_eq!(&out.0[..3], &[7, 8, 0]);
    }

    #[test]
    fn malformed_packets_are_refused() {
        let mut mrs = MessageRegisters::new();
        assert!(decode_call(&[0; 15], &mut mrs).is_none());
        let mut lying = CallHeader {
            label: 1,
            count: 3,
            reserved: 0,
        }
        .as_bytes()
        .to_vec();
        lying.extend_from_slice(&[0; 16]);
        assert!(
            decode_call(&lying, &mut mrs).is_none(),
            "count says 3, carries 2"
        );
        let huge = CallHeader {
            label: 1,
            count: u32::MAX,
            reserved: 0,
        };
        assert!(decode_call(huge.as_bytes(), &mut mrs).is_none());
        let bad_status = ReplyHeader {
            label: 0,
            count: 0,
            status: ReplyStatus(7),
        };
        assert!(decode_reply(bad_status.as_bytes(), &mut mrs).is_none());
        let mut failed_with_body = Vec::new();
        encode_reply(
            ReplyStatus::FAILED,
            MessageInfo::new(0, 0),
            &mrs,
            &mut failed_with_body,
        );
        assert_eq!(decode_reply(&failed_with_body, &mut mrs), Some(Err(())));
        failed_with_body.extend_from_slice(&[0; 8]);
        assert!(decode_reply(&failed_with_body, &mut mrs).is_none());
        assert!(FaultRecord::decode(&[0; 24]).is_none());
        assert!(FaultRecord::decode(&[0; 23]).is_none());
    }

    #[test]
    fn packet_len_follows_the_header_count_within_bounds() {
        let mut mrs = MessageRegisters::new();
        let mut buf = Vec::new();
        encode_call(MessageInfo::new(3, 5), &mrs, &mut buf);
        assert_eq!(packet_len(&buf), Some(buf.len()));
        encode_reply(ReplyStatus::OK, MessageInfo::new(3, 64), &mrs, &mut buf);
        assert_eq!(packet_len(&buf), Some(MAX_PACKET));
        assert_eq!(decode_reply(&buf, &mut mrs).map(|r| r.is_ok()), Some(true));
        let huge = CallHeader {
            label: 0,
            count: 65,
            reserved: 0,
        };
        assert_eq!(packet_len(huge.as_bytes()), None);
        assert_eq!(packet_len(&[0; 15]), None);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let mut mrs = MessageRegisters::new();
            if let Some(len) = packet_len(&bytes) {
                prop_assert!(len <= MAX_PACKET);
            }
            if let Some(msg) = decode_call(&bytes, &mut mrs) {
                prop_assert!(msg.count() <= MAX_MESSAGE_REGISTERS);
            }
            let _ = decode_reply(&bytes, &mut mrs);
            let _ = FaultRecord::decode(&bytes);
        }
    }
}
