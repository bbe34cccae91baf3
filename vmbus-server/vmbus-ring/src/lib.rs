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
//!
//! Memory comes through [`RingMem`]: [`RegionRingMem`] for a ring in one contiguous
//! region, [`GpadlRingMem`] for a ring scattered over guest pages named by a GPADL.
//!
//! ```
//! use std::sync::atomic::AtomicU64;
//! use ipc::{Perms, Region};
//! use vmbus_ring::*;
//!
//! // One control page and one data page, as the guest would allocate them.
//! let words: Vec<AtomicU64> = (0..2 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect();
//! let mem = RegionRingMem::new(Region::from_atomics(&words, Perms::RW)).unwrap();
//! mem.control().initialize();
//!
//! // Each endpoint attaches through its own mapping.
//! let mut tx = OutgoingRing::new(mem).unwrap();
//! let mut rx = IncomingRing::new(mem).unwrap();
//!
//! let packet = OutgoingPacket {
//!     transaction_id: 7,
//!     completion_requested: true,
//!     kind: OutgoingKind::InBand,
//! };
//! tx.write_packet(&packet, &[b"hello"]).unwrap();
//! let signal_reader = tx.commit().unwrap(); // empty -> non-empty, unmasked
//! assert!(signal_reader);
//!
//! let got = rx.read().unwrap();
//! let mut buf = [0u8; 8];
//! rx.copy_from(&got.payload, 0, &mut buf).unwrap();
//! assert_eq!(&buf[..5], b"hello");
//! let signal_writer = rx.commit().unwrap(); // nobody waits for space
//! assert!(!signal_writer);
//! assert_eq!(rx.read(), Err(ReadError::Empty));
//! ```
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
pub mod signal;
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
pub use reader::IncomingRing;
pub use writer::{OutgoingRing, PacketWriter};
