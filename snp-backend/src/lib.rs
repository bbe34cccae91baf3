//! SEV-SNP backend of the isolation interface.
//!
//! The paravisor runs at VMPL0 and the guest at VMPL2 with the vTOM SEV feature:
//! GPAs below the vTOM are private, above it host-visible (see `isolation::gpa`).
//! The backend's only contact with the machine is [`cpu::SnpCpu`] (PVALIDATE,
//! RMPADJUST, the GHCB MSR and page, VMGEXIT). On hardware that is a thin `asm!`
//! layer; here it is [`model::SnpModel`], an RMP plus a model hypervisor that
//! enforces the architectural rules (AMD APM vol. 2 §15.36, GHCB spec 56421 v2) and
//! can be told to lie, so every rule the backend depends on is tested.
//!
//! Everything the host writes (GHCB MSR values, the GHCB page, PSC descriptors) is
//! decoded by the bounded parsers in [`ghcb_msr`], [`ghcb_page`] and [`psc`].
//! [`keys`] asks the firmware for the paravisor's sealing key (MSG_KEY_REQ).
#![no_std]

#[cfg(test)]
extern crate std;

pub mod backend;
pub mod cpu;
pub mod ghcb_host;
pub mod ghcb_msr;
pub mod ghcb_page;
pub mod keys;
mod le;
#[cfg(any(test, feature = "measure"))]
pub mod measure;
pub mod model;
pub mod psc;
pub mod rmp;
pub mod vmsa;

#[cfg(test)]
mod tests;
