//! hvcall-pd as in-process tests and benches start it next to the real synic-pd
//! (and vmbus-server) handlers: one set of grants instead of one per test.

use ipc::testing::{leaked_region, FakeInit};
use ipc::{Channel, Queue, Region};

use crate::pd::*;
use crate::ServiceMessage;

/// The vCPU PD's channel in [`init`]'s grants.
pub const VCPU: Channel = Channel::new(0);
/// synic-pd's channel in [`init`]'s grants.
pub const SYNIC: Channel = Channel::new(1);
/// Service 0's channel in [`init`]'s grants.
pub const SERVICE: Channel = Channel::new(3);

/// A fresh, empty service queue region of hvcall-pd's capacity.
pub fn service_queue() -> Region<'static> {
    let bytes = Queue::<ServiceMessage>::layout_size(SERVICE_QUEUE_CAPACITY);
    leaked_region(bytes.expect("the queue capacity is a valid layout"))
}

/// hvcall-pd's grants for two VPs of an SNP-isolated partition (isolation 2) with
/// Confidential VMBus and guest VTLs 0 and 1: `ram` is guest RAM at GPA 0, GPAs from
/// `shared_boundary` up are host-visible; the vCPU PD is on [`VCPU`], synic-pd on
/// [`SYNIC`], and service 0 on [`SERVICE`] with `service` as its queue. No SynIC
/// ports, no host routes, no host channel: a test adds them with
/// `FakeInit::variable`/`region`.
pub fn init(ram: Region<'static>, service: Region<'static>, shared_boundary: u64) -> FakeInit {
    FakeInit::new("hvcall")
        .region(GUEST_RAM, ram)
        .region(SERVICE_QUEUE_REGIONS[0], service)
        .variable(GUEST_RAM_GPA, 0)
        .variable(VP_COUNT, 2)
        .variable(ISOLATION, 2)
        .variable(SHARED_GPA_BOUNDARY, shared_boundary)
        .variable(CONFIDENTIAL_VMBUS, 1)
        .variable(MAX_GUEST_VTL, 1)
        .variable(SYNIC_CHANNEL, SYNIC.index().into())
        .variable(VCPU_CHANNELS, VCPU.bit())
        .variable(SYNIC_PORT_CHANNELS, 0)
        .variable(HOST_ROUTE_CHANNELS, 0)
        .variable(SERVICE_CHANNEL_VARS[0], SERVICE.index().into())
}
