//! Where the loader puts things in guest-physical memory, and the e820 map that
//! tells the guest so.
//!
//! Low RAM (below the EBDA at 0x9FC00) holds the boot-time structures; Linux
//! copies boot_params and the command line and builds its own page tables before
//! it reuses that memory. They stay below 1 MiB, where physical KASLR never
//! places the decompressed kernel.

use alloc::vec::Vec;

/// 4 GiB: the identity map's reach and the limit of 32-bit boot_params fields.
pub const FOUR_GIB: u64 = 1 << 32;
pub const PAGE_SIZE: u64 = 0x1000;

/// The GDT: null, null, code64 at 0x10, data at 0x18 (boot.rst's __BOOT_CS/DS).
pub const GDT_GPA: u64 = 0x1000;
/// PML4, then one PDPT, then [`PD_COUNT`] page directories of 2 MiB pages.
pub const PML4_GPA: u64 = 0x2000;
pub const PDPT_GPA: u64 = 0x3000;
pub const PD_GPA: u64 = 0x4000;
/// Page directories: 4 × 1 GiB identity-maps [0, 4 GiB).
pub const PD_COUNT: u64 = 4;
/// The entry stack (grows down from here; Linux switches to its own at once).
pub const STACK_TOP: u64 = 0x9000;
/// boot_params (the zero page), RSI at entry.
pub const BOOT_PARAMS_GPA: u64 = 0x9000;
/// The command line and its buffer.
pub const CMDLINE_GPA: u64 = 0x2_0000;
pub const CMDLINE_MAX: u64 = 0x1_0000;

/// End of conventional low RAM; the EBDA and the BIOS area follow.
pub const LOW_RAM_END: u64 = 0x9_FC00;
/// The ACPI tables' window (the BIOS area Linux scans for the RSDP when
/// `acpi_rsdp_addr` is not honoured).
pub const ACPI_WINDOW_START: u64 = 0xE_0000;
pub const ACPI_WINDOW_END: u64 = 0x10_0000;
/// Where a bzImage's protected-mode code goes unless it is relocatable.
pub const KERNEL_LEGACY_GPA: u64 = 0x10_0000;
/// Guest RAM may not reach past here: it leaves Linux a gap below 4 GiB for PCI
/// and VMBus MMIO, and keeps the IOAPIC/LAPIC pages clear of RAM.
pub const RAM_LIMIT: u64 = 0xC000_0000;
/// Where the ioapic PD serves the IOAPIC's registers.
pub const IOAPIC_GPA: u64 = ioapic::MMIO_BASE;
/// The local APIC page, at its reset address (the MADT and the e820 map give it).
pub const LAPIC_GPA: u64 = crate::devices::lapic::APIC_BASE_DEFAULT;

/// An e820 entry type (zero-page.rst / the ACPI address-range types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Type {
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    /// ACPI NVS: firmware memory the OS must not use. The vTPM's event log is
    /// here rather than in a type-2 range because a memory-encrypting guest
    /// (Linux's ioremap under SNP/vTOM) maps NVS private and type 2 shared: the
    /// log is private to the guest, at its GPA below the vTOM.
    Nvs = 4,
}

/// One e820 range, [addr, addr + size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Type,
}

impl E820Entry {
    pub const fn end(&self) -> u64 {
        self.addr + self.size
    }
}

/// Where firmware memory the ACPI tables point at (an [`E820Type::Nvs`] range)
/// may lie: page-aligned, between the IOAPIC and the local APIC pages, clear of
/// both (and so of RAM, below [`RAM_LIMIT`]).
pub fn nvs_fits(gpa: u64, len: u64) -> bool {
    let end = gpa.checked_add(len);
    len != 0
        && gpa.is_multiple_of(PAGE_SIZE)
        && len.is_multiple_of(PAGE_SIZE)
        && gpa >= IOAPIC_GPA + PAGE_SIZE
        && end.is_some_and(|e| e <= LAPIC_GPA)
}

/// The guest's memory map for `ram_size` bytes of RAM at [0, ram_size), with
/// `ram_size` already validated (page-aligned, above 1 MiB, at most [`RAM_LIMIT`]),
/// and `nvs` (gpa, len), already checked by [`nvs_fits`], as ACPI NVS. Nothing
/// else is described: the rest is unbacked or trapped by the VMM. In address order.
pub fn e820_map(ram_size: u64, nvs: Option<(u64, u64)>) -> Vec<E820Entry> {
    use E820Type::*;
    let mut map = alloc::vec![
        E820Entry {
            addr: 0,
            size: LOW_RAM_END,
            kind: Ram,
        },
        E820Entry {
            addr: LOW_RAM_END,
            size: ACPI_WINDOW_START - LOW_RAM_END,
            kind: Reserved,
        },
        E820Entry {
            addr: ACPI_WINDOW_START,
            size: ACPI_WINDOW_END - ACPI_WINDOW_START,
            kind: Acpi,
        },
        E820Entry {
            addr: KERNEL_LEGACY_GPA,
            size: ram_size - KERNEL_LEGACY_GPA,
            kind: Ram,
        },
        E820Entry {
            addr: IOAPIC_GPA,
            size: PAGE_SIZE,
            kind: Reserved,
        },
        E820Entry {
            addr: LAPIC_GPA,
            size: PAGE_SIZE,
            kind: Reserved,
        },
    ];
    if let Some((addr, size)) = nvs {
        // Between the IOAPIC page and the LAPIC page (nvs_fits).
        map.insert(
            map.len() - 1,
            E820Entry {
                addr,
                size,
                kind: Nvs,
            },
        );
    }
    map
}

pub(crate) const fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

const _: () = {
    assert!(PD_GPA + PD_COUNT * PAGE_SIZE <= STACK_TOP - PAGE_SIZE);
    assert!(BOOT_PARAMS_GPA + PAGE_SIZE <= CMDLINE_GPA);
    assert!(CMDLINE_GPA + CMDLINE_MAX <= LOW_RAM_END);
    assert!(PD_COUNT << 30 == FOUR_GIB);
};
