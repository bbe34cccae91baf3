//! The guest-facing side of the vTPM, pure and `no_std`:
//!
//! - [`crb`]: the Command Response Buffer interface of the TCG PC Client Platform
//!   TPM Profile (PTP) for TPM 2.0 — the locality, control and status registers at
//!   0xFED40000 and the start/cancel/idle protocol — as a register model fed MMIO
//!   accesses. Every access is bounded: a size, offset or locality the interface
//!   does not have is refused with an [`crb::AccessError`], never a panic.
//! - [`command`]: the TPM 2.0 command and response headers (tag, size, code) read
//!   from a buffer the guest wrote, and the error responses the TPM gives.
//! - [`api`]: the protected calls between the VMM PD and the tpm PD, and the guest
//!   physical layout both sides and the ACPI tables agree on.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod api;
pub mod command;
pub mod crb;
pub mod regs;
