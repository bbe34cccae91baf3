//! netvsp: the network VSP. A guest's `hv_netvsc` driver talks NVSP over one VMBus
//! channel and RNDIS inside the buffers NVSP sets up; netvsp answers as Hyper-V's
//! host does and moves Ethernet frames between the guest and a [`backend`].
//!
//! The core is sans-IO: [`Nic`] is the protocol state of one channel. Whoever owns
//! the channel (the PD on the VMBus device layer, or a test) hands it each packet
//! the guest wrote, a way to write packets back ([`Outbox`]) and the guest buffers
//! a GPADL names ([`GuestBuffer`]); the NIC never touches a ring or a page table.
//!
//! Everything the guest writes is hostile: NVSP messages, RNDIS lengths and
//! offsets, section indices and completions are checked, and a bad one gets the
//! protocol's failure status while the NIC keeps serving.
#![no_std]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;
pub mod config;
mod mem;
mod nic;
pub mod ring;
mod rndis_device;
pub mod rss;
mod sections;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vsp;

pub use mem::{GuestBuffer, MemError, PagedBuffer, SliceBuffer};
pub use nic::{Config, Incoming, IncomingKind, Nic, Outbox, OutboxFull, Stats};
pub use rndis_device::{RndisDevice, MAX_FRAME};
