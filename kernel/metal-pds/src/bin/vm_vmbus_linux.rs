//! vmbus-server for linux.xml: as `vm_vmbus`, but GPADLs may name all of the Linux
//! guest's RAM. (vmbus-server maps no guest memory, so the size of guest RAM is a
//! build-time constant of its image, generated from linux.xml.)
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
    system_constants::metal_linux::region_size::GUEST_RAM
));
