//! VMBus ring buffers, shared by the vmbus-server, the VSPs and the test client.
//!
//! One ring carries packets in one direction through memory both endpoints map: a
//! 4 KiB control page (indices, interrupt mask, pending send size, feature bits) and
//! a data area of whole pages, laid out as Linux's `drivers/hv/ring_buffer.c` does.
//! [`IncomingRing`] and [`OutgoingRing`] are the two roles; each owns its index and
//! treats the other's, and every packet byte, as hostile: a lie marks the ring
//! [`Corruption`] for good instead of reading or writing out of bounds.
//!
//! Nothing here signals anyone. Commits and interrupt re-arming return whether the
//! peer needs a signal (Linux's rules), and the caller delivers it.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod control;
mod error;
mod geometry;
mod mem;
mod packet;
pub mod protocol;
mod reader;
mod writer;

pub use control::ControlPage;
pub use error::{AttachError, Corruption, InvalidPacket, ReadError, WriteError};
pub use geometry::RingRange;
pub use mem::{GpadlRingMem, RegionRingMem, RingMem};
pub use packet::{
    GpaDirect, GpaRange, GpaRangeRef, IncomingKind, IncomingPacket, OutgoingKind, OutgoingPacket,
    TransferPages,
};
pub use protocol::{in_band_packet_size, TransferPageRange, PAGE_SIZE};
pub use reader::{GpaRanges, IncomingRing, TransferRanges};
pub use writer::{OutgoingRing, PacketWriter};
