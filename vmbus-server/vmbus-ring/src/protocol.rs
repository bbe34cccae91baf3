//! The ring buffer's wire format, as Linux (`include/linux/hyperv.h`) and Hyper-V lay
//! it out. Every struct here is read out of memory the peer can rewrite at any time,
//! so each is plain data: any byte pattern is a value, and meaning is checked later.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Ring buffers are built from 4 KiB pages whatever the guest's own page size.
pub const PAGE_SIZE: usize = vmbus_protocol::PAGE_SIZE as usize;

/// Byte offsets of the control page fields (`struct hv_ring_buffer`).
pub mod control_offsets {
    pub const WRITE_INDEX: usize = 0;
    pub const READ_INDEX: usize = 4;
    pub const INTERRUPT_MASK: usize = 8;
    pub const PENDING_SEND_SIZE: usize = 12;
    pub const FEATURE_BITS: usize = 64;
}

/// Feature bit: the reader honours `pending_send_size` (signals a writer waiting for
/// space). Linux sets it when it creates a ring and checks it before signalling.
pub const FEATURE_PENDING_SEND_SIZE: u32 = 1;

/// The packet's type field. Open: the peer can write any value, and unknown ones
/// must be representable so they can be reported.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PacketType(pub u16);

vmbus_protocol::open_enum! {
    PacketType {
        IN_BAND = 6,
        TRANSFER_PAGES = 7,
        GPA_DIRECT = 9,
        COMPLETION = 11,
    }
}

/// Descriptor flag: the sender wants a completion packet carrying the same
/// transaction id.
pub const FLAG_COMPLETION_REQUESTED: u16 = 1;

/// Every packet starts with this (`struct vmpacket_descriptor`).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PacketDescriptor {
    pub packet_type: PacketType,
    /// Header length (descriptor plus type-specific header) in 8-byte units.
    pub offset8: u16,
    /// Packet length without the trailer, in 8-byte units.
    pub len8: u16,
    pub flags: u16,
    pub transaction_id: u64,
}

/// Follows the descriptor of a GPA-direct packet.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpaDirectHeader {
    /// Senders leave garbage here; never interpreted.
    pub reserved: u32,
    pub range_count: u32,
}

/// Starts each range of a GPA-direct packet; `pfn_count(byte_offset, byte_count)`
/// page numbers follow it.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GpaRangeHeader {
    pub byte_count: u32,
    /// Offset into the first page; below `PAGE_SIZE`.
    pub byte_offset: u32,
}

/// Follows the descriptor of a transfer-page packet
/// (`struct vmtransfer_page_packet_header`).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TransferPageHeader {
    pub transfer_page_set_id: u16,
    pub sender_owns_set: u8,
    pub reserved: u8,
    pub range_count: u32,
}

/// One range of a transfer-page packet, relative to the transfer page set.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TransferPageRange {
    pub byte_count: u32,
    pub byte_offset: u32,
}

/// Ends every packet: the ring offset where the packet starts, in the upper half
/// (Linux writes `write_index << 32` as one u64).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PacketTrailer {
    pub reserved: u32,
    pub start_offset: u32,
}

pub const DESCRIPTOR_SIZE: usize = size_of::<PacketDescriptor>();
pub const TRAILER_SIZE: usize = size_of::<PacketTrailer>();

const _: () = {
    assert!(size_of::<PacketDescriptor>() == 16);
    assert!(core::mem::offset_of!(PacketDescriptor, offset8) == 2);
    assert!(core::mem::offset_of!(PacketDescriptor, len8) == 4);
    assert!(core::mem::offset_of!(PacketDescriptor, flags) == 6);
    assert!(core::mem::offset_of!(PacketDescriptor, transaction_id) == 8);
    assert!(size_of::<GpaDirectHeader>() == 8);
    assert!(size_of::<GpaRangeHeader>() == 8);
    assert!(size_of::<TransferPageHeader>() == 8);
    assert!(core::mem::offset_of!(TransferPageHeader, range_count) == 4);
    assert!(size_of::<TransferPageRange>() == 8);
    assert!(size_of::<PacketTrailer>() == 8);
    assert!(core::mem::offset_of!(PacketTrailer, start_offset) == 4);
};

/// Number of page numbers that describe `byte_count` bytes starting `byte_offset`
/// into the first page, or `None` on overflow.
pub fn pfn_count(byte_offset: u32, byte_count: u32) -> Option<u32> {
    let end = byte_offset.checked_add(byte_count)?;
    Some(end.div_ceil(PAGE_SIZE as u32))
}

/// Bytes a packet occupies in the ring: header, payload padded to 8, trailer.
pub const fn packet_ring_size(header_len: usize, payload_len: usize) -> usize {
    header_len + payload_len.next_multiple_of(8) + TRAILER_SIZE
}

/// Ring bytes of an in-band or completion packet with `payload_len` payload bytes,
/// e.g. for `OutgoingRing::set_pending_send_size`.
pub const fn in_band_packet_size(payload_len: usize) -> usize {
    packet_ring_size(DESCRIPTOR_SIZE, payload_len)
}
