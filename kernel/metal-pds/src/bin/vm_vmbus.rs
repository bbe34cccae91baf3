//! vmbus-server on the bare-metal runtime: the library PD with its image's
//! build-time configuration (vmbus.xml's 2 MiB of guest RAM); a VSP slot exists
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
    vmbus_server::config::build::GUEST_RAM_SIZE
));
