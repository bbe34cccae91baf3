//! host-sim entry point of the tpm PD, with libtpms as its engine.
//!
//! Channel ids are this PD's build-time configuration: channel 0 is the VMM PD
//! (or the guest stand-in of a host-sim system), whose MMIO calls reach the CRB.
//! With a `sealed_state` region it starts from the state sealed there (refusing
//! to start from a blob that is not this image's or was changed) and keeps it
//! there, sealed under the svm development key. With a `measurements` region
//! (`tpm-measurements` output, e.g. `paravisor sim --region-file
//! measurements=FILE`) it measures the boot first and refuses to start if that
//! fails.

use ipc::{InitError, WithVariables};
use tpm::boot;
use tpm::measured_boot::MEASUREMENTS;
use tpm::pd::{self, TpmPd};
use tpm::seal::DevelopmentKey;
use tpm::state::SEALED_STATE;

const VMM: u64 = 0;

fn refuse(name: &'static str, why: impl std::fmt::Display) -> InitError {
    eprintln!("tpm: not starting: {why}");
    InitError::InvalidVariable { name, value: 0 }
}

fn main() {
    let variables = [(pd::VMM_CHANNEL, VMM)];
    hostsim::run(|init, kernel| {
        let init = WithVariables::new(init, &variables);
        let started = boot::start(&init, &DevelopmentKey).map_err(|e| refuse(SEALED_STATE, e))?;
        let mut pd = TpmPd::init(&init, started.engine)?;
        pd.measured_boot(kernel)
            .map_err(|e| refuse(MEASUREMENTS, format_args!("{e:?}")))?;
        Ok(match started.store {
            Some(store) => pd.with_store(kernel, store),
            None => pd,
        })
    })
}
