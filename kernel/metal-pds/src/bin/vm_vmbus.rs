//! vmbus-server on the bare-metal runtime: the library PD with its image's
//! build-time configuration and vmbus.xml's guest RAM size; a VSP slot exists
//! only when the system description grants its GPADL window (as in the host-sim
//! entry).
#![no_std]
#![no_main]

#[path = "../vmbus_start.rs"]
#[macro_use]
mod vmbus_start;

vmbus_image!(system_constants::metal_vmbus::region_size::GUEST_RAM);
