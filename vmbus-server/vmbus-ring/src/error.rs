//! Errors, kept in three kinds: flow control (empty, full) that callers wait out,
//! the peer breaking the protocol (sticky `Corrupt`), and our own caller's mistakes.

use ipc::RegionError;

use crate::protocol::PacketType;

/// What the peer did that broke the ring. Once seen, the ring stays broken: every
/// later call returns the same reason and nothing more is read or written.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// The peer's index lies outside the data area.
    #[error("peer index {index:#x} outside the ring")]
    IndexOutOfRange { index: u32 },
    /// The peer's index is not a multiple of 8.
    #[error("peer index {index:#x} not 8-aligned")]
    IndexMisaligned { index: u32 },
    /// The peer's index moved backwards or past ours, claiming more bytes than the
    /// ring can hold at this point.
    #[error("peer index {index:#x} inconsistent with the ring's state")]
    IndexImpossible { index: u32 },
    /// Fewer bytes are published than a descriptor and trailer need.
    #[error("only {available} bytes published, less than a packet")]
    TruncatedPacket { available: u32 },
    /// `offset8` is smaller than the descriptor or larger than `len8`.
    #[error("descriptor offset8 {offset8} / len8 {len8} invalid")]
    BadDescriptorLengths { offset8: u16, len8: u16 },
    /// The packet (with its trailer) runs past the published bytes.
    #[error("packet of {packet_len} bytes but only {available} bytes published")]
    PacketPastWriteIndex { packet_len: u32, available: u32 },
    /// The trailer does not name this packet's start offset.
    #[error("trailer names offset {found:#x}, packet starts at {expected:#x}")]
    BadTrailer { expected: u32, found: u32 },
    #[error("unknown packet type {0:?}")]
    UnknownPacketType(PacketType),
    #[error("unknown descriptor flags {0:#x}")]
    UnknownFlags(u16),
    /// The type-specific header is larger than `offset8` says.
    #[error("{packet_type:?} header longer than offset8 {offset8}")]
    HeaderTooShort {
        packet_type: PacketType,
        offset8: u16,
    },
    /// A GPA-direct packet with no ranges.
    #[error("GPA-direct packet without ranges")]
    NoGpaRanges,
    /// A GPA range with zero bytes or an in-page offset of a page or more.
    #[error("GPA range of {byte_count} bytes at page offset {byte_offset} invalid")]
    BadGpaRange { byte_count: u32, byte_offset: u32 },
    /// The ranges named by the range count do not fit in the header area.
    #[error("{range_count} ranges do not fit in the packet header")]
    RangesPastHeader { range_count: u32 },
    /// The ring memory refused an access (a page outside guest memory, say).
    #[error("ring memory: {0}")]
    Memory(RegionError),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// No packet published yet; wait for a signal.
    #[error("ring empty")]
    Empty,
    #[error("ring corrupt: {0}")]
    Corrupt(#[from] Corruption),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Not enough free space now; `needed` ring bytes (suitable for
    /// `set_pending_send_size`) must become free.
    #[error("ring full ({needed} bytes needed)")]
    Full { needed: u32 },
    /// The packet can never fit: larger than the ring allows or than the descriptor's
    /// 16-bit length fields can express, or its ranges are malformed.
    #[error("packet cannot be sent: {0}")]
    Invalid(InvalidPacket),
    #[error("ring corrupt: {0}")]
    Corrupt(#[from] Corruption),
}

/// Our own caller asked for something the format cannot carry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPacket {
    /// The packet needs more ring bytes than a packet may have.
    #[error("packet needs {ring_bytes} ring bytes, at most {max} fit")]
    TooLarge { ring_bytes: usize, max: usize },
    /// A GPA range whose page list does not match its byte offset and count.
    #[error("GPA range of {byte_count} bytes at offset {byte_offset} with {pages} pages")]
    GpaRangePages {
        byte_count: u32,
        byte_offset: u32,
        pages: usize,
    },
    /// More ranges than the 32-bit count holds.
    #[error("too many ranges")]
    TooManyRanges,
    /// A payload write outside the reserved payload.
    #[error("payload write {offset}+{len} outside {payload_len} reserved bytes")]
    PayloadOutOfRange {
        offset: usize,
        len: usize,
        payload_len: usize,
    },
}

/// Why a ring could not be attached to its memory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The data area must be a non-zero whole number of pages, below 2 GiB.
    #[error("ring data area of {len:#x} bytes invalid")]
    BadDataSize { len: usize },
    /// The indices found in the control page are already invalid.
    #[error("ring corrupt at attach: {0}")]
    Corrupt(Corruption),
}
