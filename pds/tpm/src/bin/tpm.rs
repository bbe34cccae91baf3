//! host-sim entry point of the tpm PD, with libtpms as its engine.
//!
//! Channel ids are this PD's build-time configuration: channel 0 is the VMM PD
//! (or the guest stand-in of a host-sim system), whose MMIO calls reach the CRB.

use ipc::WithVariables;
use tpm::libtpms::LibtpmsEngine;
use tpm::pd::{self, TpmPd};

const VMM: u64 = 0;

fn main() {
    let variables = [(pd::VMM_CHANNEL, VMM)];
    hostsim::run(|init, _kernel| {
        let engine = LibtpmsEngine::start(None).map_err(|e| {
            eprintln!("tpm: {e}");
            ipc::InitError::InvalidVariable {
                name: "libtpms",
                value: 0,
            }
        })?;
        TpmPd::init(&WithVariables::new(init, &variables), engine)
    })
}
