//! hvcall-pd on the bare-metal runtime: the library PD with its image's build-time
//! configuration, as its host-sim entry builds it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use hvcall_pd::config::build;
use hvcall_pd::pd::HvcallPd;
use ipc::WithVariables;
use metal_pds::Boxed;

pd_rt::global_heap!(512 * 1024);

const MAX_VPS: usize = 8;
const MAX_ROUTES: usize = 64;

pd_rt::entry!(|init, _kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let pd: Box<HvcallPd<MAX_VPS, MAX_ROUTES>> = Box::new(HvcallPd::init(&init)?);
    Ok(Boxed(pd))
});
