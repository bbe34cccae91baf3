//! The bare-metal vTPM engine: libtpms's TPM 2.0 and OpenSSL's libcrypto,
//! cross-built freestanding for the PDs by `build.sh` (from Debian's source
//! packages) into `libtpm_engine.a`, and what they need to run in a PD:
//!
//! - [`crt`]: the C runtime, in Rust (heap, strings, ctype, time from the TSC,
//!   entropy from RDRAND, errno, stdio to a log sink); the printf family is the
//!   one C file (`c/crt_variadic.c`, in the archive), as stable Rust cannot
//!   define variadic functions;
//! - [`LibtpmsEngine`]: libtpms behind [`tpm::Engine`], its NV in memory.
//!
//! The archive is linked only when building for the PDs with `TPM_ENGINE_LIB`
//! set (build.rs, `cfg(tpm_engine)`); otherwise [`LibtpmsEngine::start`] answers
//! [`StartError::NotBuilt`] and the PD falls back to [`tpm::Unsupported`]
//! through [`PdEngine`].
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod crt;
#[cfg(tpm_engine)]
mod libtpms;
#[cfg(not(tpm_engine))]
mod unlinked;

#[cfg(tpm_engine)]
pub use libtpms::LibtpmsEngine;
#[cfg(not(tpm_engine))]
pub use unlinked::LibtpmsEngine;

use tpm::{Engine, EngineError, Unsupported};
use tpm_crb::command::Command;

/// Why libtpms did not start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// This build has no libtpms linked (TPM_ENGINE_LIB was not set).
    NotBuilt,
    /// Another engine of this PD is alive (libtpms has one global TPM).
    InUse,
    /// A libtpms call failed with this TPM result.
    Libtpms(u32),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotBuilt => f.write_str("libtpms is not linked into this build"),
            Self::InUse => f.write_str("libtpms already runs a TPM in this PD"),
            Self::Libtpms(rc) => write!(f, "libtpms did not start: TPM result {rc:#x}"),
        }
    }
}

/// What the bare-metal tpm PD runs: libtpms when it started, else the
/// failure-mode engine (every command TPM_RC_FAILURE).
#[derive(Debug)]
pub enum PdEngine {
    Libtpms(LibtpmsEngine),
    Failure(Unsupported),
}

impl PdEngine {
    /// libtpms from `permanent` state (or freshly manufactured), or the
    /// failure-mode engine and the reason libtpms did not start.
    pub fn start(permanent: Option<alloc::vec::Vec<u8>>) -> (Self, Option<StartError>) {
        match LibtpmsEngine::start(permanent) {
            Ok(e) => (Self::Libtpms(e), None),
            Err(e) => (Self::Failure(Unsupported), Some(e)),
        }
    }
}

impl Engine for PdEngine {
    fn execute(
        &mut self,
        locality: u8,
        command: Command<'_>,
        response: &mut [u8],
    ) -> Result<usize, EngineError> {
        match self {
            Self::Libtpms(e) => e.execute(locality, command, response),
            Self::Failure(e) => e.execute(locality, command, response),
        }
    }

    fn take_dirty_state(&mut self) -> Option<alloc::vec::Vec<u8>> {
        match self {
            Self::Libtpms(e) => e.take_dirty_state(),
            Self::Failure(_) => None,
        }
    }

    fn has_dirty_state(&self) -> bool {
        match self {
            Self::Libtpms(e) => e.has_dirty_state(),
            Self::Failure(_) => false,
        }
    }
}
