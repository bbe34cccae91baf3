//! synic-pd: the synthetic interrupt controller as its own protection domain.
//!
//! [`synic::Synic`] is the pure state machine (unit-tested on the host); [`pd`] adapts
//! it to the `ipc` runtime: RDMSR/WRMSR from the vCPU PD, message posts and event
//! signals from hvcall-pd and paravisor services, interrupt requests out to the vCPU
//! PD. [`api`] is the wire contract those peers use.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod config;
pub mod pd;
pub mod synic;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The contract moved to its own crate; this path stays for existing callers.
pub use synic_api as api;
pub use synic_api::{Instance, PostOutcome, SintTarget};

/// The one guest-memory window lookup every PD shares.
pub use isolation::GuestMemory;
pub use synic::{ConfigError, InterruptRequest, InterruptSink, MsrError, Synic};

#[cfg(test)]
mod pd_tests;
#[cfg(test)]
mod tests;
