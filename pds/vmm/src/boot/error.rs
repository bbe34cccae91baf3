/// Why a bzImage cannot be booted, or cannot be laid out in the guest's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BootError {
    /// The file ends before the field the loader needs (`needed` bytes).
    #[error("bzImage truncated: need {needed:#x} bytes, have {len:#x}")]
    Truncated { needed: u64, len: u64 },
    /// The boot sector signature 0xAA55 at 0x1FE is missing.
    #[error("boot flag {0:#06x} is not 0xaa55")]
    BadBootFlag(u16),
    /// "HdrS" at 0x202 is missing: not a bzImage (or a pre-2.00 kernel).
    #[error("no \"HdrS\" setup header magic")]
    BadMagic,
    /// The boot protocol is older than 2.12, the first with `xloadflags`.
    #[error("boot protocol {}.{:02} is older than 2.12", .0 >> 8, .0 & 0xff)]
    ProtocolTooOld(u16),
    /// The byte at 0x200 is not a short jump, so 0x201 does not give the header end.
    #[error("byte {0:#04x} at 0x200 is not a short jump")]
    BadJump(u8),
    /// The setup header (0x1F1 up to 0x202 + the jump offset) would end at `end`,
    /// before `init_size` or past the zero page's header space.
    #[error("setup header would end at {end:#x}")]
    BadHeaderLength { end: u64 },
    /// `loadflags` bit 0 (LOADED_HIGH) is clear: a zImage, loaded at 0x10000.
    #[error("loadflags.LOADED_HIGH clear: not a bzImage")]
    NotLoadedHigh,
    /// `xloadflags` bit 0 is clear: the kernel has no 64-bit entry point.
    #[error("xloadflags: no 64-bit entry point")]
    No64BitEntry,
    /// `syssize` is 0 or larger than what follows the setup sectors in the file.
    #[error("syssize says {syssize_bytes:#x} bytes, the file has {available:#x} after setup")]
    BadKernelSize { syssize_bytes: u64, available: u64 },
    /// `kernel_alignment` is not a power of two.
    #[error("kernel_alignment {0:#x} not a power of two")]
    BadKernelAlignment(u32),
    /// A relocatable kernel's `pref_address` is not `kernel_alignment`-aligned, is
    /// below 1 MiB, or its `init_size` region ends above 4 GiB.
    #[error("unusable pref_address {0:#x}")]
    BadPrefAddress(u64),
    /// `init_size` is smaller than the protected-mode image it must hold.
    #[error("init_size {init_size:#x} below the image size {kernel_len:#x}")]
    InitSizeTooSmall { init_size: u32, kernel_len: u64 },
    /// `ram_size` is not a multiple of 4 KiB, or reaches into the MMIO hole.
    #[error("unusable guest RAM size {0:#x}")]
    BadRamSize(u64),
    /// The kernel's `init_size` region [start, end) does not fit in RAM.
    #[error("kernel needs [{start:#x}, {end:#x}) but RAM ends at {ram_size:#x}")]
    KernelDoesNotFit { start: u64, end: u64, ram_size: u64 },
    /// The command line is longer than `max` bytes (the kernel's `cmdline_size`
    /// or the loader's buffer, whichever is smaller).
    #[error("command line of {len} bytes exceeds {max}")]
    CmdlineTooLong { len: u64, max: u64 },
    /// The command line contains a NUL byte (the kernel would see it cut short).
    #[error("command line contains a NUL byte")]
    CmdlineHasNul,
    /// No page-aligned place for the initrd between the kernel's reservation and
    /// min(`initrd_addr_max`, RAM end, 4 GiB).
    #[error("no room for an initrd of {len:#x} bytes")]
    InitrdDoesNotFit { len: u64 },
    /// The ACPI tables or the RSDP lie outside the ACPI window of the memory map, or
    /// the RSDP is not 16-byte aligned (the legacy scan only looks there).
    #[error("ACPI blob at {gpa:#x} (+{len:#x}) outside the ACPI window")]
    BadAcpiPlacement { gpa: u64, len: u64 },
    /// Firmware memory the tables point at is not page-aligned between the IOAPIC
    /// and local APIC pages (where the map can describe it apart from RAM).
    #[error("ACPI NVS range at {gpa:#x} (+{len:#x}) is not page-aligned between the IOAPIC and LAPIC pages")]
    BadNvsPlacement { gpa: u64, len: u64 },
}
