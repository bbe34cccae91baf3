//! host-sim entry point of the network VSP: the library PD with this image's
//! build-time configuration ([`netvsp::config::build`]) on the frame queues
//! system.xml grants, or on a loopback when it grants none.

use ipc::{Init, WithVariables};
use netvsp::backend::select;
use netvsp::config::{build, identity};
use netvsp::vsp::{self, Setup};

fn main() {
    hostsim::run(|init, kernel| {
        let init = WithVariables::new(init, &build::VARIABLES);
        let (backend, backend_channel) = select::granted(&init, 256)?;
        let (mac, instance) = identity(init.pd_name());
        let pd = vsp::init(
            &init,
            Setup {
                instance,
                mac,
                backend,
                backend_channel,
            },
        )?;
        eprintln!(
            "netvsp: {}",
            select::Started {
                mac,
                backend_channel
            }
        );
        // vmbus-server may have asked for offers before this PD was up.
        if let Err(e) = pd.announce(kernel) {
            eprintln!("netvsp: announcing the offer: {e}");
        }
        Ok(pd)
    })
}
