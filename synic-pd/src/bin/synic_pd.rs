//! host-sim entry point of synic-pd: the library PD with this image's build-time
//! configuration ([`synic_pd::config::build`]: channel ids, roles, the partition's
//! shape).

use synic_pd::config::build;

fn main() {
    // Boxed: the per-SINT message queues make the state a few hundred KiB.
    hostsim::run(|init, _kernel| Ok(ipc::Boxed(Box::new(build::init(init)?))))
}
