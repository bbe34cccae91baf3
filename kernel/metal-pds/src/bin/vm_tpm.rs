//! The tpm PD on the bare-metal runtime, configured as in linux.xml: channel 0 is
//! the VMM PD, which forwards the guest's writes to the CRB registers; the
//! register page (`crb_regs`, read-only to the guest) and the command/response
//! buffer (`crb_buffer`) are shared with the VM.
//!
//! No TPM 2.0 engine runs here yet: libtpms and its crypto library are not built
//! for x86_64-unknown-none, so every command is answered TPM_RC_FAILURE ("the
//! TPM is in failure mode") and the boot is not measured (README, not
//! supported). The CRB interface itself is the one host-sim runs with libtpms.
#![no_std]
#![no_main]

extern crate alloc;

use ipc::WithVariables;
use tpm::pd::{self, TpmPd};
use tpm::Unsupported;

// The command and response copies (4 KiB each) and the PD itself.
pd_rt::global_heap!(64 * 1024);

const VARIABLES: [(&str, u64); 1] = [(pd::VMM_CHANNEL, 0)];

pd_rt::entry!(|init, kernel| {
    let init = WithVariables::new(init, &VARIABLES);
    let pd = TpmPd::init(&init, Unsupported)?;
    kernel.debug_puts(
        "tpm: CRB at 0xfed40000; no TPM 2.0 engine on bare metal yet: every command is answered TPM_RC_FAILURE\n",
    );
    Ok(pd)
});
