//! The ioapic PD on the bare-metal runtime, configured as in linux.xml: channel 0
//! is the vCPU (the VMM PD: MMIO, EOIs, the interrupt queue), channel 1 the VMM's
//! emulated devices, which may drive ISA lines 3 and 4 (the serial ports).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ioapic::pd::{self, IoapicPd};
use ipc::WithVariables;
use metal_pds::Boxed;

pd_rt::global_heap!(64 * 1024);

const VARIABLES: [(&str, u64); 2] = [(pd::VCPU_CHANNEL, 0), ("lines_1", 0x18)];

pd_rt::entry!(|init, _kernel| {
    let init = WithVariables::new(init, &VARIABLES);
    let pd = Box::new(IoapicPd::init(&init)?);
    Ok(Boxed(pd))
});
