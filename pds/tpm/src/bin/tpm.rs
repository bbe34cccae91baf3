//! host-sim entry point of the tpm PD, with libtpms as its engine.
//!
//! Channel ids are this PD's build-time configuration: channel 0 is the VMM PD
//! (or the guest stand-in of a host-sim system), whose MMIO calls reach the CRB.
//! With a `measurements` region (`tpm-measurements` output, e.g. through
//! `paravisor sim --region-file measurements=FILE`) it measures the boot first
//! and refuses to start if that fails.

use ipc::{InitError, WithVariables};
use tpm::libtpms::LibtpmsEngine;
use tpm::measured_boot::MEASUREMENTS;
use tpm::pd::{self, TpmPd};

const VMM: u64 = 0;

fn main() {
    let variables = [(pd::VMM_CHANNEL, VMM)];
    hostsim::run(|init, kernel| {
        let engine = LibtpmsEngine::start(None).map_err(|e| {
            eprintln!("tpm: {e}");
            InitError::InvalidVariable {
                name: "libtpms",
                value: 0,
            }
        })?;
        let mut pd = TpmPd::init(&WithVariables::new(init, &variables), engine)?;
        if let Err(e) = pd.measured_boot(kernel) {
            eprintln!("tpm: measured boot failed, not serving: {e:?}");
            return Err(InitError::InvalidVariable {
                name: MEASUREMENTS,
                value: 0,
            });
        }
        Ok(pd)
    })
}
