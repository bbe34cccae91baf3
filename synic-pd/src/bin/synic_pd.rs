//! host-sim entry point of synic-pd: the library PD with this image's build-time
//! configuration ([`synic_pd::config::build`]: channel ids, roles, the partition's
//! shape).

use ipc::WithVariables;
use synic_pd::config::build;
use synic_pd::pd::SynicPd;

/// Most VPs this build supports, and messages queued per SINT.
const MAX_VPS: usize = 8;
const QUEUE_DEPTH: usize = 4;

fn main() {
    hostsim::run(|init, _kernel| {
        let init = WithVariables::new(init, &build::VARIABLES);
        // Boxed: the per-SINT message queues make the state a few hundred KiB.
        let pd: Box<SynicPd<MAX_VPS, QUEUE_DEPTH>> = Box::new(SynicPd::init(&init)?);
        Ok(ipc::Boxed(pd))
    })
}
