//! The storage VSP protection domain: it serves Linux's `hv_storvsc` (and any
//! storvsc client) over a VMBus channel, running SCSI commands against a disk
//! backend and moving data straight between the backend and the guest pages a
//! GPA-direct request names.
//!
//! The core is `no_std` (+ `alloc`) and sans-I/O: [`channel::Storvsp`] takes a
//! packet's bytes and returns the completion's bytes. The ring transport sits
//! behind [`transport::Transport`], guest memory behind
//! [`guest_mem::GuestMemory`], and the disk behind [`backend::Backend`].
#![no_std]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;
pub mod channel;
pub mod config;
pub mod guest_mem;
#[cfg(feature = "std")]
pub mod harness;
pub mod packet;
pub mod pd;
pub mod protocol;
pub mod ring_transport;
pub mod scsi;
pub mod srb;
pub mod transport;

#[cfg(feature = "std")]
pub use backend::FileBackend;
pub use backend::{Backend, BackendError, RegionBackend};
pub use channel::{Completion, ProtocolState, Storvsp, StorvspConfig, SubChannels};
pub use guest_mem::{GuestMemory, RegionGuestMemory};
