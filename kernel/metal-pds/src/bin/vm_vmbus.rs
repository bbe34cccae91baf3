//! vmbus-server on the bare-metal runtime: the library PD with its image's
//! build-time configuration; a VSP slot exists only when the system description
//! grants its GPADL window (as in the host-sim entry).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use ipc::WithVariables;
use vmbus_server::config::build;
use vmbus_server::pd::{self, VmbusPd};

pd_rt::global_heap!(512 * 1024);

pd_rt::entry!(|init, kernel| {
    let mut variables: Vec<(&str, u64)> = build::VARIABLES.to_vec();
    for i in 0..pd::MAX_VSPS {
        if init.region(pd::VSP_GPADL_REGIONS[i]).is_ok() {
            variables.push(build::vsp_variable(i));
        }
    }
    let init = WithVariables::new(init, &variables);
    let mut pd = VmbusPd::init(&init)?;
    // A peer that misbehaves at start is reported; the PD keeps serving.
    if let Err(e) = pd.start(kernel) {
        pd_rt::println!("vmbus_server: start: {e}");
    }
    Ok(pd)
});
