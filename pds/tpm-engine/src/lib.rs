//! libtpms (TPM 2.0) for the vTPM, on the host and in bare-metal PDs:
//!
//! - [`LibtpmsEngine`]: libtpms through its C API, its NV kept in memory. On the
//!   host (feature `system`) it is Debian's libtpms; in the PDs it is libtpms
//!   with OpenSSL's libcrypto cross-built freestanding by `build.sh` (from
//!   Debian's source packages) into `libtpm_engine.a`, linked when the PDs are
//!   built with `TPM_ENGINE_LIB` set (build.rs, `cfg(tpm_engine)`). Without
//!   either, [`LibtpmsEngine::start`] answers [`StartError::NotBuilt`].
//! - [`crt`]: the C runtime those libraries need in a PD, in Rust (heap,
//!   strings, ctype, time from the TSC, entropy from RDRAND, errno, stdio to a
//!   log sink, setjmp); the printf family is the one C file
//!   (`c/crt_variadic.c`, in the archive), as stable Rust cannot define
//!   variadic functions.
//!
//! `tpm::libtpms` puts [`LibtpmsEngine`] behind the tpm PD's `Engine` trait.
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

/// Why libtpms did not start.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// This build has no libtpms linked (neither `system` nor TPM_ENGINE_LIB).
    #[error("libtpms is not linked into this build")]
    NotBuilt,
    /// Another engine of this process is alive (libtpms has one global TPM).
    #[error("libtpms already runs a TPM in this process")]
    InUse,
    /// A libtpms call failed with this TPM result (state not loadable, ...).
    #[error("libtpms did not start: TPM result {0:#x}")]
    Libtpms(u32),
}

/// Why a command got no response at all (a TPM error code is a response).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProcessError {
    /// The response does not fit the caller's buffer.
    ResponseTooLarge,
    /// libtpms failed in a way only a restart recovers from.
    Fatal,
}
