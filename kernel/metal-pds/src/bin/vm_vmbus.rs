//! vmbus-server on the bare-metal runtime: the library PD with its image's
//! build-time configuration and vmbus.xml's guest RAM size; a VSP slot exists
//! only when the system description grants its GPADL window (as in the host-sim
//! entry).
#![no_std]
#![no_main]

extern crate alloc;

// Shared with the other vmbus-server image; not in the library, which every
// boot-test PD links (most have no heap).
#[path = "../vmbus_start.rs"]
mod vmbus_start;

pd_rt::global_heap!(512 * 1024);

pd_rt::entry!(|init, kernel| vmbus_start::start(
    init,
    kernel,
    system_constants::metal_vmbus::region_size::GUEST_RAM
));
