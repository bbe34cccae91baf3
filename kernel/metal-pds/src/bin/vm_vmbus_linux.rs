//! vmbus-server for linux.xml: as `vm_vmbus`, but GPADLs may name the Linux
//! guest's 256 MiB of RAM. (vmbus-server maps no guest memory, so the size of guest
//! RAM is a build-time constant of its image, like its other partition constants.)
#![no_std]
#![no_main]

extern crate alloc;

// Shared with the other vmbus-server image; not in the library, which every
// boot-test PD links (most have no heap).
#[path = "../vmbus_start.rs"]
mod vmbus_start;

pd_rt::global_heap!(512 * 1024);

/// linux.xml's `guest_ram`.
const GUEST_RAM_SIZE: u64 = 0x1000_0000;

pd_rt::entry!(|init, kernel| vmbus_start::start(init, kernel, GUEST_RAM_SIZE));
