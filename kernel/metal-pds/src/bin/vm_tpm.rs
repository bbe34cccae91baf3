//! The tpm PD on the bare-metal runtime, configured as in linux.xml: channel 0 is
//! the VMM PD, which forwards the guest's writes to the CRB registers; the
//! register page (`crb_regs`, read-only to the guest) and the command/response
//! buffer (`crb_buffer`) are shared with the VM. Before the guest runs it
//! extends PCR 0 with every PD image from `measurements` (laid out by `paravisor
//! build --measurements`) and writes the TCG2 event log to `event_log`, which the
//! guest reads at the TPM2 table's LASA. Its state lives in
//! `sealed_state`, BAR 2 of QEMU's file-backed ivshmem-plain function (channel 1,
//! `scripts/boot --tpm-state FILE`): sealed under the svm development key, read
//! at start and written after every command that changed libtpms's NV.
//!
//! The TPM 2.0 engine is libtpms with OpenSSL's libcrypto, cross-built by
//! pds/tpm-engine/build.sh and linked when this workspace is built with
//! TPM_ENGINE_LIB set. Without it, or when the host's blob is refused (another
//! image's, changed, not a blob), every command is answered TPM_RC_FAILURE
//! ("the TPM is in failure mode") and the blob is left as it was: a TPM is never
//! manufactured over state it could not open.
#![no_std]
#![no_main]

extern crate alloc;

use ipc::WithVariables;
use tpm::boot::{self, Origin};
use tpm::pd::{self, TpmPd};
use tpm::seal::DevelopmentKey;

// libtpms and OpenSSL allocate through the same heap as Rust: BN contexts, key
// objects, the marshalled NV state (up to ~128 KiB, twice while it is stored,
// and its sealed copy) and the command and response copies.
pd_rt::global_heap!(3 * 1024 * 1024);

const VARIABLES: [(&str, u64); 1] = [(pd::VMM_CHANNEL, 0)];

pd_rt::entry!(|init, kernel| {
    let init = WithVariables::new(init, &VARIABLES);
    tpm_engine::crt::set_log_sink(pd_rt::sys::debug_puts);
    let started = match boot::start(&init, &DevelopmentKey) {
        Ok(s) => s,
        Err(e) => {
            pd_rt::debug_fmt(format_args!(
                "tpm: CRB at 0xfed40000; FAILURE MODE: {e}; every command is answered TPM_RC_FAILURE and the stored state is left untouched\n"
            ));
            return TpmPd::init(&init, None);
        }
    };
    let origin = match started.origin {
        Origin::Volatile => "manufactured, not persisted (no sealed_state granted)",
        Origin::Manufactured => "manufactured into empty sealed storage",
        Origin::Restored(_) => "restored from sealed storage",
    };
    pd_rt::debug_fmt(format_args!(
        "tpm: CRB at 0xfed40000; libtpms TPM 2.0 {origin}\n"
    ));
    let mut pd = TpmPd::init(&init, Some(started.engine))?;
    // PCR 0 and the guest's event log from the builder's list (linux.xml
    // `tpm_measurements`, `tpm_log`); a TPM whose PCRs would not describe this
    // boot serves failure mode instead.
    match pd.measured_boot(kernel) {
        Ok(n) if n > 0 => {}
        Ok(_) => kernel.debug_puts("tpm: no measurement list granted: the boot is not measured\n"),
        Err(e) => {
            pd_rt::debug_fmt(format_args!(
                "tpm: FAILURE MODE: measured boot failed ({e:?}); every command is answered TPM_RC_FAILURE\n"
            ));
            return TpmPd::init(&init, None);
        }
    }
    Ok(match started.store {
        Some(store) => pd.with_store(kernel, store),
        None => pd,
    })
});
