//! hvcall-pd on the bare-metal runtime: the library PD with its image's build-time
//! configuration, as its host-sim entry builds it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use hvcall_pd::config::build;
use metal_pds::Boxed;

pd_rt::global_heap!(512 * 1024);

pd_rt::entry!(|init, _kernel| Ok(Boxed(Box::new(build::init(init)?))));
