//! The storage VSP protection domain: it serves Linux's `hv_storvsc` (and any
//! storvsc client) over a VMBus channel, running SCSI commands against a disk
//! backend and moving data straight between the backend and the guest pages a
//! GPA-direct request names.
//!
//! The core is `no_std` (+ `alloc`) and sans-I/O: [`state_machine::Storvsp`]
//! takes a packet copied out of the ring and returns the completion's bytes. The
//! rings, GPADLs and PD glue are the shared device layer ([`vmbus_device`]);
//! [`device`] is this VSP's part of it. Guest memory is [`isolation::GuestMemory`],
//! request buffers [`data_buffer`], the disk a [`backend::Backend`]. The wire
//! format is the `storvsp-protocol` crate.
#![no_std]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;
pub mod config;
pub mod data_buffer;
pub mod device;
#[cfg(feature = "test-util")]
pub mod harness;
pub mod scsi;
pub mod srb;
pub mod state_machine;

#[cfg(feature = "std")]
pub use backend::FileBackend;
pub use backend::{Backend, BackendError, RegionBackend};
pub use device::{StorvspDevice, StorvspPd};
pub use state_machine::{Completion, ProtocolState, Storvsp, StorvspConfig, SubChannels};
