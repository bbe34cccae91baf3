//! synic-pd: the synthetic interrupt controller as its own protection domain.
//!
//! [`synic::Synic`] is the pure state machine (unit-tested on the host); [`pd`] adapts
//! it to the `ipc` runtime: RDMSR/WRMSR from the vCPU PD, message posts and event
//! signals from hvcall-pd and paravisor services, interrupt requests out to the vCPU
//! PD. [`api`] is the wire contract those peers use.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod api;
pub mod config;
pub mod guest;
pub mod pd;
pub mod synic;

pub use guest::GuestMemory;
pub use synic::{
    ConfigError, Instance, InterruptRequest, InterruptSink, MsrError, PostOutcome, SintTarget,
    Synic,
};

#[cfg(test)]
mod pd_tests;
#[cfg(test)]
mod tests;
