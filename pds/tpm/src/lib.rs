//! The vTPM PD: a TPM 2.0 for the guest behind the CRB interface at 0xFED40000.
//!
//! - [`pd`]: the PD — the CRB register model of `tpm-crb` fed by the VMM's
//!   calls, commands copied out of the shared buffer and run by an [`Engine`];
//! - [`engine`]: the engine trait and [`engine::Unsupported`], the bare-metal
//!   engine until libtpms is ported (every command TPM_RC_FAILURE);
//! - `libtpms` (feature `engine`): libtpms ([`tpm_engine`]) as the engine,
//!   Debian's on the host (feature `libtpms`), cross-built on bare metal;
//! - [`commands`]: the commands the PD and its tests issue, and a bounded reader
//!   of their responses;
//! - [`crb_client`]: the guest's side of the CRB (the host-sim guest stand-ins');
//! - [`measured_boot`], [`eventlog`]: every PD image's hash extended into PCR 0
//!   at start, in manifest order, and the TCG2 event log that replays it;
//! - [`seal`], [`state`]: the engine's permanent state sealed under the
//!   platform's key, bound to this image, in storage the host keeps;
//! - `boot` (features `engine` and `seal`): libtpms started from that state,
//!   the one start path of the host-sim and bare-metal entries.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(all(feature = "engine", feature = "seal"))]
pub mod boot;
pub mod commands;
pub mod crb_client;
pub mod engine;
pub mod eventlog;
#[cfg(feature = "engine")]
pub mod libtpms;
pub mod measure;
pub mod measured_boot;
pub mod pd;
#[cfg(feature = "seal")]
pub mod seal;
#[cfg(feature = "seal")]
pub mod state;

pub use engine::{Engine, EngineError, Executed, Unsupported};
