//! The echo VSP: the smallest real VMBus device. It offers one channel through
//! vmbus-server and writes every in-band packet the guest sends back to it with the
//! same transaction id, so the whole VMBus path (hvcall-pd, synic-pd, vmbus-server,
//! the rings, both SynIC instances) can be exercised end to end without a device
//! model in the way.
//!
//! All of it but the echo is the shared device layer ([`vmbus_device`]): a ring
//! that breaks the protocol is dropped and logged there (the channel stays dead
//! until the guest closes and reopens it); nothing a guest writes makes this PD
//! panic.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod config;
pub mod device;

pub use device::{init, EchoDevice, EchoVsp};

#[cfg(test)]
mod tests;
