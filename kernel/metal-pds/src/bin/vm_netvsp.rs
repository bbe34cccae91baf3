//! netvsp on the bare-metal runtime, with its image's build-time configuration
//! ([`netvsp::config::build`]). Its backend is what the system grants
//! (`netvsp::backend::select`): the frame queues to the virtio-net driver PD
//! (linux.xml: QEMU's user-mode network), else a loopback (scripts/boot --net
//! loopback), on which the guest's hv_netvsc binds, brings its link up and gets
//! its own frames back.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Init, WithVariables};
use metal_pds::Boxed;
use netvsp::backend::select;
use netvsp::config::{build, identity};
use netvsp::vsp::{self, Setup};

// Linux's GPADLs (a 16 MiB receive buffer is 4096 page numbers) and the loopback's
// frames live here.
pd_rt::global_heap!(2 * 1024 * 1024);

pd_rt::entry!(|init, kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let (mac, instance) = identity(init.pd_name());
    let (backend, backend_channel) = select::granted(&init, 64)?;
    let setup = Setup {
        instance,
        mac,
        backend,
        backend_channel,
    };
    let vsp = Box::new(vsp::init(&init, setup)?);
    pd_rt::println!(
        "netvsp: {}",
        select::Started {
            mac,
            backend_channel
        }
    );
    // vmbus-server may have asked for offers before this PD was up; tell it again.
    if let Err(e) = vsp.announce(kernel) {
        pd_rt::println!("netvsp: announcing the offer: {e}");
    }
    Ok(Boxed(vsp))
});
