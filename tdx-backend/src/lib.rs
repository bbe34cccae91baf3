//! TDX backend of the isolation interface.
//!
//! The paravisor is the L1 VMM of a partitioned TD and the guest its L2 VM 1.
//! Private GPAs have the shared bit (GPAW - 1) clear, host-visible ones have it
//! set (see `isolation::gpa`). The backend's only contact with the machine is
//! [`cpu::TdxCpu::tdcall`]; on hardware that is the TDCALL instruction, in tests
//! [`model::TdxModel`], a model of the TDX module's page states, L2 attributes and a
//! host VMM answering TDG.VP.VMCALL as the GHCI says, or lying on request.
//!
//! [`keys`] obtains the paravisor's sealing key (TDG.MR.REPORT traded at a key
//! broker for an MRTD-bound key: TDX itself derives none).
//!
//! Sources: Intel TDX Module ABI (TDCALL leaves, completion status codes), the TD
//! partitioning spec (TDG.VP.ENTER, TDG.MEM.PAGE.ATTR.WR), GHCI 1.5 (TDG.VP.VMCALL
//! sub-functions and status codes).
#![no_std]

#[cfg(test)]
extern crate std;

pub mod backend;
pub mod cpu;
pub mod exit;
pub mod keys;
#[cfg(any(test, feature = "measure"))]
pub mod measure;
pub mod model;
pub mod status;
pub mod vmcall;

#[cfg(test)]
mod tests;
