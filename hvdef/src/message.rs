//! SynIC messages: the 256-byte `hv_message` that fills one message-page slot.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::hypercall::HV_MESSAGE_PAYLOAD_MAX;

/// Synthetic interrupt sources per VP.
pub const NUM_SINTS: usize = 16;
/// Bytes per message slot; a SIM page holds one slot per SINT.
pub const HV_MESSAGE_SIZE: usize = 256;
pub const HV_MESSAGE_HEADER_SIZE: usize = 16;
pub const HV_MESSAGE_PAYLOAD_SIZE: usize = HV_MESSAGE_PAYLOAD_MAX;
/// Bytes of event flags per SINT in the SIEF page (2048 flags).
pub const SINT_EVENT_FLAGS_BYTES: usize = 256;
pub const SINT_EVENT_FLAGS: u32 = SINT_EVENT_FLAGS_BYTES as u32 * 8;

/// `HV_MESSAGE_TYPE`. Zero marks a free slot; values with the top bit set are the
/// hypervisor's own, which a guest may not post.
#[repr(transparent)]
#[derive(
    Copy, Clone, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct HvMessageType(pub u32);

impl HvMessageType {
    pub const NONE: Self = Self(0);
    /// The type VMBus posts its channel messages with (Linux `vmbus_post_msg`).
    pub const VMBUS: Self = Self(1);
    pub const HYPERVISOR_MASK: u32 = 0x8000_0000;
    pub const TIMER_EXPIRED: Self = Self(0x8000_0010);

    /// Whether a guest may post this type with HvPostMessage.
    pub const fn guest_postable(self) -> bool {
        self.0 != 0 && self.0 & Self::HYPERVISOR_MASK == 0
    }
}

impl fmt::Debug for HvMessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HvMessageType({:#x})", self.0)
    }
}

/// The flags byte of a message header.
pub const HV_MESSAGE_FLAG_PENDING: u8 = 1;

/// The 16-byte header of a slot: type, payload size, flags, then the sender (port id
/// for guest messages).
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct HvMessageHeader {
    pub message_type: HvMessageType,
    pub payload_size: u8,
    pub flags: u8,
    pub reserved: u16,
    /// Sender partition id or, for posted messages, the port id.
    pub sender: u64,
}
const _: () = assert!(core::mem::size_of::<HvMessageHeader>() == HV_MESSAGE_HEADER_SIZE);

impl HvMessageHeader {
    /// Byte offsets inside a slot, for word-wise updates of a live slot.
    pub const TYPE_OFFSET: usize = 0;
    /// The u32 word holding `payload_size`, `flags` and `reserved`.
    pub const SIZE_FLAGS_WORD_OFFSET: usize = 4;
    /// Where `flags` sits inside that word (little-endian shift).
    pub const FLAGS_SHIFT_IN_WORD: u32 = 8;
}

/// `HV_MESSAGE`: one message slot.
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HvMessage {
    pub header: HvMessageHeader,
    pub payload: [u8; HV_MESSAGE_PAYLOAD_SIZE],
}
const _: () = assert!(core::mem::size_of::<HvMessage>() == HV_MESSAGE_SIZE);

impl HvMessage {
    /// A message carrying `payload`; `None` if it does not fit in 240 bytes.
    pub fn new(message_type: HvMessageType, sender: u64, payload: &[u8]) -> Option<Self> {
        if payload.len() > HV_MESSAGE_PAYLOAD_SIZE {
            return None;
        }
        let mut msg = Self {
            header: HvMessageHeader {
                message_type,
                payload_size: payload.len() as u8,
                flags: 0,
                reserved: 0,
                sender,
            },
            payload: [0; HV_MESSAGE_PAYLOAD_SIZE],
        };
        msg.payload[..payload.len()].copy_from_slice(payload);
        Some(msg)
    }

    /// The meaningful payload bytes; a header claiming more than 240 is clamped.
    pub fn payload(&self) -> &[u8] {
        let len = (self.header.payload_size as usize).min(HV_MESSAGE_PAYLOAD_SIZE);
        &self.payload[..len]
    }
}

impl Default for HvMessage {
    fn default() -> Self {
        Self {
            header: HvMessageHeader::default(),
            payload: [0; HV_MESSAGE_PAYLOAD_SIZE],
        }
    }
}

impl fmt::Debug for HvMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HvMessage")
            .field("header", &self.header)
            .field("payload", &self.payload())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_offsets_match_the_struct() {
        let h = HvMessageHeader {
            message_type: HvMessageType(0x11223344),
            payload_size: 0x55,
            flags: HV_MESSAGE_FLAG_PENDING,
            reserved: 0,
            sender: 9,
        };
        let b = h.as_bytes();
        assert_eq!(&b[0..4], &0x11223344u32.to_le_bytes());
        let word = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        assert_eq!(word & 0xFF, 0x55);
        assert_eq!(
            (word >> HvMessageHeader::FLAGS_SHIFT_IN_WORD) & 0xFF,
            HV_MESSAGE_FLAG_PENDING as u32
        );
        assert_eq!(&b[8..16], &9u64.to_le_bytes());
    }

    #[test]
    fn payloads_over_240_bytes_are_refused_and_claims_are_clamped() {
        assert!(HvMessage::new(HvMessageType::VMBUS, 0, &[0; 241]).is_none());
        let mut m = HvMessage::new(HvMessageType::VMBUS, 0, &[7; 3]).unwrap();
        assert_eq!(m.payload(), &[7, 7, 7]);
        m.header.payload_size = 255;
        assert_eq!(m.payload().len(), 240);
    }

    #[test]
    fn hypervisor_and_empty_types_are_not_postable() {
        assert!(!HvMessageType::NONE.guest_postable());
        assert!(!HvMessageType::TIMER_EXPIRED.guest_postable());
        assert!(HvMessageType::VMBUS.guest_postable());
        assert!(HvMessageType(0x7FFF_FFFF).guest_postable());
    }
}
