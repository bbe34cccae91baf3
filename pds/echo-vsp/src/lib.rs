//! The echo VSP: the smallest real VMBus device. It offers one channel through
//! vmbus-server (the [`vmbus_server::vsp`] contract), maps the ring GPADL the guest
//! opens it with, and writes every in-band packet the guest sends back to it with the
//! same transaction id. The whole VMBus path (hvcall-pd, synic-pd, vmbus-server, the
//! rings, both SynIC instances) can then be exercised end to end without a device
//! model in the way.
//!
//! Everything it reads is a peer's word: the ring is guest memory, the GPADL window
//! and the calls are vmbus-server's. A ring that breaks the protocol is dropped and
//! logged (the channel stays dead until the guest closes and reopens it); nothing a
//! guest writes makes this PD panic.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod config;
mod memory;
pub mod pd;

pub use memory::{GuestWindows, RingPlacement};
pub use pd::EchoVsp;

#[cfg(test)]
mod tests;
