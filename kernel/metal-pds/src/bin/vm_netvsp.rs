//! netvsp on the bare-metal runtime, with its image's build-time configuration
//! ([`netvsp::config::build`]). No network reaches this system yet: the NIC sits
//! on a loopback, so the guest's hv_netvsc binds, brings its link up and gets its
//! own frames back.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Init, WithVariables};
use metal_pds::Boxed;
use netvsp::backend::Loopback;
use netvsp::config::{build, identity};
use netvsp::vsp::{self, Setup};

// Linux's GPADLs (a 16 MiB receive buffer is 4096 page numbers) and the loopback's
// frames live here.
pd_rt::global_heap!(2 * 1024 * 1024);

pd_rt::entry!(|init, kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let (mac, instance) = identity(init.pd_name());
    let setup = Setup {
        instance,
        mac,
        backend: Box::new(Loopback::new(64)),
        backend_channel: None,
    };
    let vsp = Box::new(vsp::init(&init, setup)?);
    pd_rt::println!(
        "netvsp: NIC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} on a loopback",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    // vmbus-server may have asked for offers before this PD was up; tell it again.
    if let Err(e) = vsp.announce(kernel) {
        pd_rt::println!("netvsp: announcing the offer: {e}");
    }
    Ok(Boxed(vsp))
});
