//! storvsp on the bare-metal runtime, with its image's build-time configuration
//! ([`storvsp::config::build`]). There is no file system here: the disk is the
//! `disk` memory region itself (a RAM disk), served through the mapping by the
//! library's region backend.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Init, WithVariables};
use metal_pds::Boxed;
use storvsp::config::build;
use storvsp::device::{self, DISK};

pd_rt::global_heap!(1024 * 1024);

pd_rt::entry!(|init, _kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let disk = init.region(DISK)?;
    let vsp = Box::new(device::init(&init, None)?);
    pd_rt::println!(
        "storvsp: RAM disk of {} blocks of 512 bytes, through the mapping",
        disk.len() / 512
    );
    Ok(Boxed(vsp))
});
