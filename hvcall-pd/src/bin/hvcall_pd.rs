//! host-sim entry point of hvcall-pd: the library PD with this image's build-time
//! configuration ([`hvcall_pd::config::build`]: channel ids, roles and the
//! partition's shape). Which of those channels and regions exist is the system
//! description's choice.

use hvcall_pd::config::build;

fn main() {
    // Boxed: `hostsim::run` takes the handler by value, and the state is large.
    hostsim::run(|init, _kernel| Ok(ipc::Boxed(Box::new(build::init(init)?))))
}
