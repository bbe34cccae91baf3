//! host-sim entry point of the echo VSP: the library PD with this image's
//! build-time configuration ([`echo_vsp::config::build`]).

use echo_vsp::config::build;
use ipc::WithVariables;

fn main() {
    hostsim::run(|init, kernel| {
        let init = WithVariables::new(init, &build::VARIABLES);
        let pd = echo_vsp::init(&init)?;
        // vmbus-server may have asked for offers before this PD was up; tell it
        // again. A vmbus-server that is gone just leaves the offer unasked.
        if let Err(e) = pd.announce(kernel) {
            eprintln!("echo_vsp: announcing the offer: {e}");
        }
        Ok(pd)
    })
}
