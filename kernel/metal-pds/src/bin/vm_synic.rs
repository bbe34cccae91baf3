//! synic-pd on the bare-metal runtime: the library PD with its image's build-time
//! configuration, as its host-sim entry builds it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::WithVariables;
use metal_pds::Boxed;
use synic_pd::config::build;
use synic_pd::pd::SynicPd;

pd_rt::global_heap!(2 * 1024 * 1024);

/// Most VPs this build supports, and messages queued per SINT.
const MAX_VPS: usize = 8;
const QUEUE_DEPTH: usize = 4;

pd_rt::entry!(|init, _kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let pd: Box<SynicPd<MAX_VPS, QUEUE_DEPTH>> = Box::new(SynicPd::init(&init)?);
    Ok(Boxed(pd))
});
