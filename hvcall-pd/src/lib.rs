//! hvcall-pd: the only PD that sees raw guest hypercalls.
//!
//! [`gateway::HvcallCore`] is the sans-IO gateway: control-word decoding, TLFS buffer
//! checks, HvPostMessage/HvSignalEvent routing by connection id, VTL enable/call/
//! return, Get/SetVpRegisters, the hypervisor CPUID leaves and the hypercall MSRs.
//! Its side effects go through [`effects::Effects`]; [`pd`] carries them out over
//! channels (synic-pd, service PDs, the host-forward PD) and [`api`] is the wire
//! contract the vCPU PD and the registering PDs use.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod config;
pub mod cpuid;
pub mod effects;
pub mod gateway;
pub mod guest;
pub mod msr;
pub mod pd;
pub mod route;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The contract moved to its own crate; this path stays for existing callers.
pub use hvcall_api as api;

pub use config::Config;
pub use effects::{Effects, HostCall, ServiceMessage};
pub use gateway::{HvcallCore, HypercallRequest, Outcome, PeerError};
pub use guest::GuestMemory;
pub use route::{Destination, Route, RouteError, RouteTable};

#[cfg(test)]
mod tests;
