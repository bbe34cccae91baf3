//! vmbus-server for linux.xml: as `vm_vmbus`, but GPADLs may name all of the Linux
//! guest's RAM. (vmbus-server maps no guest memory, so the size of guest RAM is a
//! build-time constant of its image, generated from linux.xml.)
#![no_std]
#![no_main]

#[path = "../vmbus_start.rs"]
#[macro_use]
mod vmbus_start;

vmbus_image!(system_constants::metal_linux::region_size::GUEST_RAM);
