//! The VMBus device layer: everything a VSP PD does that is not its protocol.
//!
//! A device ([`VmbusDevice`]) says what it offers, how much of a packet it wants
//! copied, and answers packets. [`VspPd`] does the rest, once for every VSP:
//! it answers vmbus-server's VSP calls (GET_OFFER, MAP_GPADL, OPEN, CLOSE, MODIFY),
//! keeps the GPADLs (bounded, no duplicates), attaches the two rings of an OPEN in
//! guest memory (a confidential ring only in private memory), claims the channel's
//! signal connection at hvcall-pd, serves the rings when the guest signals
//! ([`serve`]), interrupts the guest through synic-pd, and tears a channel down
//! (giving its connection back) on CLOSE, on the unmap of its ring GPADL, or when
//! its ring breaks the protocol. A streaming device (a NIC) drives its rings
//! itself through [`VmbusDevice::serve_channel`] and is served again when its
//! backend notifies ([`VmbusDevice::owns_notification`]).
//!
//! The split follows OpenVMM's `vmbus_channel` (a device trait apart from the ring
//! and GPADL glue); the code is ours. Nothing is saved or restored implicitly: a
//! device's state is what it keeps itself, and a reopened channel starts afresh.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod device;
mod gpadl;
mod packet;
mod pd;
mod serve;
mod stream;
mod transport;

pub use device::{offer, Limits, Reply, ReplyKind, Request, VmbusDevice};
pub use gpadl::{Gpadl, GpadlTable, MAX_GPADLS, MAX_GPADL_PAGES};
pub use packet::{BufferError, Packet, PacketBuf};
pub use pd::{names, Channels, Stats, VspPd};
pub use serve::{serve, Served};
pub use stream::Serving;
pub use transport::{RingBroken, RingTransport, Room};
