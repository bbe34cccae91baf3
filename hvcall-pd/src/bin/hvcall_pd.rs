//! host-sim entry point of hvcall-pd: the library PD with this image's build-time
//! configuration ([`hvcall_pd::config::build`]: channel ids, roles and the
//! partition's shape). Which of those channels and regions exist is the system
//! description's choice.

use hvcall_pd::config::build;
use hvcall_pd::pd::HvcallPd;
use ipc::WithVariables;

const MAX_VPS: usize = 8;
const MAX_ROUTES: usize = 64;

fn main() {
    hostsim::run(|init, _kernel| {
        let init = WithVariables::new(init, &build::VARIABLES);
        // Boxed: `hostsim::run` takes the handler by value, and the state is large.
        let pd: Box<HvcallPd<MAX_VPS, MAX_ROUTES>> = Box::new(HvcallPd::init(&init)?);
        Ok(ipc::Boxed(pd))
    })
}
