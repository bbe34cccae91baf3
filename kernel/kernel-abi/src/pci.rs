//! PCI device grants: system.xml's `<pci_device>` gives one PD one PCI function,
//! and nothing else of the bus. The kernel finds the function at boot by its
//! bus:device.function through configuration mechanism #1 (ports 0xCF8/0xCFC,
//! which only the kernel holds), checks that it is the vendor/device the grant
//! names, maps the memory BARs the grant lists (uncached) at the declared user
//! addresses, and puts the function's INTx line (as firmware routed it to the
//! legacy PIC) into the grant's channel slot as an irq capability. The PD reads
//! and writes that one function's configuration space with [`crate::syscall::Sys::PCI_CONFIG`]
//! on the same channel id; [`check_access`] is the kernel's whole policy for it.
//!
//! Without an IOMMU a device the PD programs can DMA anywhere in RAM: a driver PD is
//! trusted with memory as a whole, only its CPU accesses are confined.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Device grants per system.
pub const MAX_DEVICES: usize = 16;
/// Type 0 header: BARs 0..=5.
pub const MAX_BARS: usize = 6;
/// Mechanism #1 reaches the first 256 bytes of each function.
pub const CONFIG_LEN: u64 = 256;

/// Configuration space offsets the kernel reads at boot.
pub mod reg {
    pub const VENDOR_ID: u16 = 0x00;
    pub const COMMAND: u16 = 0x04;
    pub const HEADER_TYPE: u16 = 0x0e;
    pub const BAR0: u16 = 0x10;
    pub const INTERRUPT_LINE: u16 = 0x3c;
    pub const INTERRUPT_PIN: u16 = 0x3d;
    /// Command register: memory space decoding.
    pub const COMMAND_MEMORY: u16 = 1 << 1;
}

/// One BAR to map: BAR `index` of the function at `vaddr`, with room for `size`
/// bytes there (a power of two, at least a page); the kernel refuses the grant if
/// the BAR is larger.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PciBarDesc {
    pub vaddr: u64,
    pub size: u64,
    pub index: u8,
    pub _reserved: [u8; 7],
}

/// One granted function.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct PciDesc {
    /// The PD index the function belongs to.
    pub owner_pd: u8,
    /// The owner's channel id naming the function (config access and its irq).
    pub channel: u8,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
    /// How many entries of `bars` are used.
    pub bar_count: u8,
    pub _reserved: [u8; 2],
    /// What the function must identify as, or the kernel refuses to boot.
    pub vendor_id: u16,
    pub device_id: u16,
    pub _reserved2: u32,
    pub bars: [PciBarDesc; MAX_BARS],
}

const _: () = {
    assert!(core::mem::size_of::<PciBarDesc>() == 24);
    assert!(core::mem::size_of::<PciDesc>() == 16 + MAX_BARS * 24);
};

impl PciDesc {
    /// The BARs in use.
    pub fn bars(&self) -> &[PciBarDesc] {
        &self.bars[..usize::from(self.bar_count).min(MAX_BARS)]
    }

    pub fn bdf(&self) -> Bdf {
        Bdf {
            bus: self.bus,
            device: self.device,
            function: self.function,
        }
    }
}

/// A bus:device.function.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bdf {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl Bdf {
    pub fn is_valid(&self) -> bool {
        self.device < 32 && self.function < 8
    }

    /// The value for port 0xCF8 that selects the dword holding `offset`.
    pub fn config_address(&self, offset: u16) -> u32 {
        0x8000_0000
            | u32::from(self.bus) << 16
            | u32::from(self.device & 0x1f) << 11
            | u32::from(self.function & 7) << 8
            | u32::from(offset & 0xfc)
    }
}

/// `PCI_CONFIG`'s flags: the access width in bytes (1, 2 or 4), and [`WRITE`].
pub const WRITE: u64 = 1 << 8;

/// A config access the kernel will make on the PD's behalf.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub offset: u16,
    pub width: u8,
    pub write: bool,
}

/// Why `PCI_CONFIG` refuses an access to the PD's own function.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Width not 1/2/4, unaligned, past 256 bytes, unknown flag bits.
    BadArgument,
    /// A write to a register that decides where or what the function is: its ids,
    /// BARs, expansion ROM, interrupt routing (the kernel decided those at boot).
    Protected,
}

/// The one policy for a PD's config accesses: any aligned read of its function's
/// 256 bytes; writes only to the command register (to enable memory decoding and
/// bus mastering) and to the capability area from 0x40 (virtio's and MSI's
/// registers live there). A write to a BAR could move the device's registers onto
/// RAM or another device's; to the interrupt line, steal another PD's irq.
pub fn check_access(offset: u64, flags: u64) -> Result<Access, Refusal> {
    if flags & !(WRITE | 0xff) != 0 {
        return Err(Refusal::BadArgument);
    }
    let width = flags & 0xff;
    if !matches!(width, 1 | 2 | 4) || offset >= CONFIG_LEN || !offset.is_multiple_of(width) {
        return Err(Refusal::BadArgument);
    }
    let write = flags & WRITE != 0;
    let end = offset + width;
    let writable = (0x04..0x06).contains(&offset) && end <= 0x06 || offset >= 0x40;
    if write && !writable {
        return Err(Refusal::Protected);
    }
    Ok(Access {
        offset: offset as u16,
        width: width as u8,
        write,
    })
}

/// A memory BAR as firmware placed it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub addr: u64,
    pub size: u64,
    /// Takes the next BAR slot as its upper half.
    pub is_64: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BarError {
    /// An I/O port BAR (the PD gets no ports).
    NotMemory,
    /// A reserved type, no size (not implemented) or not placed by firmware.
    Unusable,
    /// Smaller than a page or not page aligned: a page map would expose whatever
    /// shares the page.
    SubPage,
}

/// Decodes a BAR from its value (`lo`, `hi` = the next BAR for a 64-bit one) and
/// what reads back after writing all ones (`size_lo`, `size_hi`).
pub fn decode_bar(lo: u32, hi: u32, size_lo: u32, size_hi: u32) -> Result<Bar, BarError> {
    if lo & 1 != 0 {
        return Err(BarError::NotMemory);
    }
    let is_64 = match (lo >> 1) & 3 {
        0 => false,
        2 => true,
        _ => return Err(BarError::Unusable),
    };
    let (addr, mask) = if is_64 {
        (
            u64::from(hi) << 32 | u64::from(lo & !0xf),
            u64::from(size_hi) << 32 | u64::from(size_lo & !0xf),
        )
    } else {
        (
            u64::from(lo & !0xf),
            0xffff_ffff_0000_0000 | u64::from(size_lo & !0xf),
        )
    };
    if mask & 0xffff_ffff == 0 && (!is_64 || mask == 0) {
        return Err(BarError::Unusable);
    }
    let size = (!mask).wrapping_add(1);
    if size == 0 || !size.is_power_of_two() || addr == 0 || addr.checked_add(size).is_none() {
        return Err(BarError::Unusable);
    }
    if size < crate::layout::PAGE_SIZE || !addr.is_multiple_of(crate::layout::PAGE_SIZE) {
        return Err(BarError::SubPage);
    }
    Ok(Bar { addr, size, is_64 })
}

#[cfg(test)]
mod tests;
