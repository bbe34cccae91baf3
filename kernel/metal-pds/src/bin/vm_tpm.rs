//! The tpm PD on the bare-metal runtime, configured as in linux.xml: channel 0 is
//! the VMM PD, which forwards the guest's writes to the CRB registers; the
//! register page (`crb_regs`, read-only to the guest) and the command/response
//! buffer (`crb_buffer`) are shared with the VM.
//!
//! The TPM 2.0 engine is libtpms with OpenSSL's libcrypto, cross-built by
//! pds/tpm-engine/build.sh and linked when this workspace is built with
//! TPM_ENGINE_LIB set; without it (the default build) every command is answered
//! TPM_RC_FAILURE ("the TPM is in failure mode"). Either way the boot is not
//! measured yet and the state lives only as long as the PD (README, not
//! supported).
#![no_std]
#![no_main]

extern crate alloc;

use ipc::WithVariables;
use tpm::libtpms::LibtpmsEngine;
use tpm::pd::{self, TpmPd};

// libtpms and OpenSSL allocate through the same heap as Rust: BN contexts, key
// objects, the marshalled NV state (up to ~128 KiB, twice while it is stored)
// and the command and response copies.
pd_rt::global_heap!(2 * 1024 * 1024);

const VARIABLES: [(&str, u64); 1] = [(pd::VMM_CHANNEL, 0)];

pd_rt::entry!(|init, kernel| {
    let init = WithVariables::new(init, &VARIABLES);
    tpm_engine::crt::set_log_sink(pd_rt::sys::debug_puts);
    let started = LibtpmsEngine::start(None);
    match &started {
        Ok(_) => kernel.debug_puts(
            "tpm: CRB at 0xfed40000; libtpms TPM 2.0 manufactured (state not persisted)\n",
        ),
        Err(e) => pd_rt::debug_fmt(format_args!(
            "tpm: CRB at 0xfed40000; no TPM 2.0 engine ({e}): every command is answered TPM_RC_FAILURE\n"
        )),
    }
    // Without an engine (None) the PD still serves the CRB, in failure mode.
    TpmPd::init(&init, started.ok())
});
