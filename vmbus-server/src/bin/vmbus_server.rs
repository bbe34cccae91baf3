//! host-sim entry point of vmbus-server: the library PD with this image's
//! build-time configuration ([`vmbus_server::config::build`]: channel ids, roles, the
//! partition's shape). A VSP slot is configured only when the system description
//! grants its GPADL window, so a system with one VSP grants one window and one
//! channel.

use ipc::WithVariables;
use vmbus_server::config::build;
use vmbus_server::pd::{self, VmbusPd};

fn main() {
    hostsim::run(|init, kernel| {
        let mut variables = build::VARIABLES.to_vec();
        for i in 0..pd::MAX_VSPS {
            if init.region(pd::VSP_GPADL_REGIONS[i]).is_ok() {
                variables.push(build::vsp_variable(i));
            }
        }
        let init = WithVariables::new(init, &variables);
        let mut pd = VmbusPd::init(&init)?;
        // A peer that misbehaves at start is reported; the PD keeps serving.
        if let Err(e) = pd.start(kernel) {
            eprintln!("vmbus_server: start: {e}");
        }
        Ok(pd)
    })
}
