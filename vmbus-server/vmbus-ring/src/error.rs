//! Errors, kept in three kinds: flow control (empty, full) that callers wait out,
//! the peer breaking the protocol (sticky `Corrupt`), and our own caller's mistakes.

use core::fmt;

use ipc::RegionError;

use crate::protocol::PacketType;

/// What the peer did that broke the ring. Once seen, the ring stays broken: every
/// later call returns the same reason and nothing more is read or written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The peer's index lies outside the data area.
    IndexOutOfRange {
        index: u32,
    },
    /// The peer's index is not a multiple of 8.
    IndexMisaligned {
        index: u32,
    },
    /// The peer's index moved backwards or past ours, claiming more bytes than the
    /// ring can hold at this point.
    IndexImpossible {
        index: u32,
    },
    /// Fewer bytes are published than a descriptor and trailer need.
    TruncatedPacket {
        available: u32,
    },
    /// `offset8` is smaller than the descriptor or larger than `len8`.
    BadDescriptorLengths {
        offset8: u16,
        len8: u16,
    },
    /// The packet (with its trailer) runs past the published bytes.
    PacketPastWriteIndex {
        packet_len: u32,
        available: u32,
    },
    /// The trailer does not name this packet's start offset.
    BadTrailer {
        expected: u32,
        found: u32,
    },
    UnknownPacketType(PacketType),
    UnknownFlags(u16),
    /// The type-specific header is larger than `offset8` says.
    HeaderTooShort {
        packet_type: PacketType,
        offset8: u16,
    },
    /// A GPA-direct packet with no ranges.
    NoGpaRanges,
    /// A GPA range with zero bytes or an in-page offset of a page or more.
    BadGpaRange {
        byte_count: u32,
        byte_offset: u32,
    },
    /// The ranges named by the range count do not fit in the header area.
    RangesPastHeader {
        range_count: u32,
    },
    /// The ring memory refused an access (a page outside guest memory, say).
    Memory(RegionError),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IndexOutOfRange { index } => write!(f, "peer index {index:#x} outside the ring"),
            Self::IndexMisaligned { index } => write!(f, "peer index {index:#x} not 8-aligned"),
            Self::IndexImpossible { index } => {
                write!(
                    f,
                    "peer index {index:#x} inconsistent with the ring's state"
                )
            }
            Self::TruncatedPacket { available } => {
                write!(f, "only {available} bytes published, less than a packet")
            }
            Self::BadDescriptorLengths { offset8, len8 } => {
                write!(f, "descriptor offset8 {offset8} / len8 {len8} invalid")
            }
            Self::PacketPastWriteIndex {
                packet_len,
                available,
            } => write!(
                f,
                "packet of {packet_len} bytes but only {available} bytes published"
            ),
            Self::BadTrailer { expected, found } => write!(
                f,
                "trailer names offset {found:#x}, packet starts at {expected:#x}"
            ),
            Self::UnknownPacketType(t) => write!(f, "unknown packet type {t:?}"),
            Self::UnknownFlags(flags) => write!(f, "unknown descriptor flags {flags:#x}"),
            Self::HeaderTooShort {
                packet_type,
                offset8,
            } => write!(f, "{packet_type:?} header longer than offset8 {offset8}"),
            Self::NoGpaRanges => write!(f, "GPA-direct packet without ranges"),
            Self::BadGpaRange {
                byte_count,
                byte_offset,
            } => write!(
                f,
                "GPA range of {byte_count} bytes at page offset {byte_offset} invalid"
            ),
            Self::RangesPastHeader { range_count } => {
                write!(f, "{range_count} ranges do not fit in the packet header")
            }
            Self::Memory(e) => write!(f, "ring memory: {e}"),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// No packet published yet; wait for a signal.
    Empty,
    Corrupt(Corruption),
}

impl From<Corruption> for ReadError {
    fn from(c: Corruption) -> Self {
        Self::Corrupt(c)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "ring empty"),
            Self::Corrupt(c) => write!(f, "ring corrupt: {c}"),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Not enough free space now; `needed` ring bytes (suitable for
    /// `set_pending_send_size`) must become free.
    Full {
        needed: u32,
    },
    /// The packet can never fit: larger than the ring allows or than the descriptor's
    /// 16-bit length fields can express, or its ranges are malformed.
    Invalid(InvalidPacket),
    Corrupt(Corruption),
}

impl From<Corruption> for WriteError {
    fn from(c: Corruption) -> Self {
        Self::Corrupt(c)
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { needed } => write!(f, "ring full ({needed} bytes needed)"),
            Self::Invalid(e) => write!(f, "packet cannot be sent: {e}"),
            Self::Corrupt(c) => write!(f, "ring corrupt: {c}"),
        }
    }
}

/// Our own caller asked for something the format cannot carry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvalidPacket {
    /// The packet needs more ring bytes than a packet may have.
    TooLarge { ring_bytes: usize, max: usize },
    /// A GPA range whose page list does not match its byte offset and count.
    GpaRangePages {
        byte_count: u32,
        byte_offset: u32,
        pages: usize,
    },
    /// More ranges than the 32-bit count holds.
    TooManyRanges,
    /// A payload write outside the reserved payload.
    PayloadOutOfRange {
        offset: usize,
        len: usize,
        payload_len: usize,
    },
}

impl fmt::Display for InvalidPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { ring_bytes, max } => {
                write!(f, "packet needs {ring_bytes} ring bytes, at most {max} fit")
            }
            Self::GpaRangePages {
                byte_count,
                byte_offset,
                pages,
            } => write!(
                f,
                "GPA range of {byte_count} bytes at offset {byte_offset} with {pages} pages"
            ),
            Self::TooManyRanges => write!(f, "too many ranges"),
            Self::PayloadOutOfRange {
                offset,
                len,
                payload_len,
            } => write!(
                f,
                "payload write {offset}+{len} outside {payload_len} reserved bytes"
            ),
        }
    }
}

/// Why a ring could not be attached to its memory.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// The data area must be a non-zero whole number of pages, below 2 GiB.
    BadDataSize { len: usize },
    /// The indices found in the control page are already invalid.
    Corrupt(Corruption),
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDataSize { len } => write!(f, "ring data area of {len:#x} bytes invalid"),
            Self::Corrupt(c) => write!(f, "ring corrupt at attach: {c}"),
        }
    }
}
