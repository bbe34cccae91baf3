//! The ioapic system (`tests/ioapic.rs`, tests/systems/ioapic.xml): the lines, vectors
//! and counts its guest stand-in and device PD agree on.

/// Granted to the device (channel 1 of the ioapic PD's build-time line map), and
/// programmed level-triggered by the guest.
pub const LEVEL_LINE: u8 = 4;
pub const LEVEL_VECTOR: u8 = 0x44;
/// Granted to the device, programmed edge-triggered.
pub const EDGE_LINE: u8 = 3;
pub const EDGE_VECTOR: u8 = 0x33;
/// Granted to channel 2 only: the device's attempt to drive it is refused.
pub const FOREIGN_LINE: u8 = 9;
pub const FOREIGN_VECTOR: u8 = 0x49;
/// The APIC id the guest routes everything to.
pub const DESTINATION: u8 = 1;
/// Edges the device sends in the flood step: more than the queue holds.
pub const FLOOD_PULSES: u32 = 100;
