//! synic-pd as in-process tests and benches start it, next to the real hvcall-pd
//! and vmbus-server handlers or alone: one set of grants instead of one per test.

use ipc::testing::{leaked_region, FakeInit};
use ipc::{Channel, Queue, Region};

use crate::api::IrqEntry;
use crate::pd::*;

/// A fresh, empty interrupt queue region of synic-pd's capacity.
pub fn irq_queue() -> Region<'static> {
    let bytes = Queue::<IrqEntry>::layout_size(IRQ_QUEUE_CAPACITY);
    leaked_region(bytes.expect("the queue capacity is a valid layout"))
}

/// synic-pd's grants for two VPs: `ram` is guest RAM at GPA 0 and `irq` its
/// interrupt queue; the vCPU PD on `vcpu` alone reads and writes the SynIC MSRs,
/// and the channels in the bit mask `deliver` may post and signal into both
/// instances. A test changes or adds to them with `FakeInit::variable`.
pub fn init(ram: Region<'static>, irq: Region<'static>, vcpu: Channel, deliver: u64) -> FakeInit {
    FakeInit::new("synic")
        .region(GUEST_RAM, ram)
        .region(IRQ_QUEUE, irq)
        .variable(VP_COUNT, 2)
        .variable(GUEST_RAM_GPA, 0)
        .variable(VCPU_CHANNEL, vcpu.index().into())
        .variable(MSR_CHANNELS, vcpu.bit())
        .variable(DELIVER_PV_CHANNELS, deliver)
        .variable(DELIVER_HV_CHANNELS, deliver)
}
