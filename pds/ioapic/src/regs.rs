//! Register map (82093AA datasheet, plus the EOI register of version 0x20).

/// Where the guest finds the IOAPIC.
pub const MMIO_BASE: u64 = 0xFEC0_0000;
/// Size of the MMIO window.
pub const MMIO_SIZE: u64 = 0x1000;

/// Offsets from the base.
pub const IOREGSEL: u64 = 0x00;
pub const IOWIN: u64 = 0x10;
/// Directed EOI: write a vector (version 0x20 only).
pub const EOI: u64 = 0x40;

/// Indirect register indices.
pub const REG_ID: u8 = 0x00;
pub const REG_VERSION: u8 = 0x01;
pub const REG_ARBITRATION: u8 = 0x02;
pub const REG_REDIR_BASE: u8 = 0x10;
pub const REG_REDIR_LAST: u8 = REG_REDIR_BASE + 2 * NUM_PINS as u8 - 1;

pub const NUM_PINS: usize = 24;

/// The 82093AA.
pub const VERSION_82093AA: u8 = 0x11;
/// ICH-style IOAPIC with the EOI register.
pub const VERSION_WITH_EOI: u8 = 0x20;
