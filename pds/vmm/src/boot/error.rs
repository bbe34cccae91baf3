use core::fmt;

/// Why a bzImage cannot be booted, or cannot be laid out in the guest's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The file ends before the field the loader needs (`needed` bytes).
    Truncated { needed: u64, len: u64 },
    /// The boot sector signature 0xAA55 at 0x1FE is missing.
    BadBootFlag(u16),
    /// "HdrS" at 0x202 is missing: not a bzImage (or a pre-2.00 kernel).
    BadMagic,
    /// The boot protocol is older than 2.12, the first with `xloadflags`.
    ProtocolTooOld(u16),
    /// The byte at 0x200 is not a short jump, so 0x201 does not give the header end.
    BadJump(u8),
    /// The setup header (0x1F1 up to 0x202 + the jump offset) would end at `end`,
    /// before `init_size` or past the zero page's header space.
    BadHeaderLength { end: u64 },
    /// `loadflags` bit 0 (LOADED_HIGH) is clear: a zImage, loaded at 0x10000.
    NotLoadedHigh,
    /// `xloadflags` bit 0 is clear: the kernel has no 64-bit entry point.
    No64BitEntry,
    /// `syssize` is 0 or larger than what follows the setup sectors in the file.
    BadKernelSize { syssize_bytes: u64, available: u64 },
    /// `kernel_alignment` is not a power of two.
    BadKernelAlignment(u32),
    /// A relocatable kernel's `pref_address` is not `kernel_alignment`-aligned, is
    /// below 1 MiB, or its `init_size` region ends above 4 GiB.
    BadPrefAddress(u64),
    /// `init_size` is smaller than the protected-mode image it must hold.
    InitSizeTooSmall { init_size: u32, kernel_len: u64 },
    /// `ram_size` is not a multiple of 4 KiB, or reaches into the MMIO hole.
    BadRamSize(u64),
    /// The kernel's `init_size` region [start, end) does not fit in RAM.
    KernelDoesNotFit { start: u64, end: u64, ram_size: u64 },
    /// The command line is longer than `max` bytes (the kernel's `cmdline_size`
    /// or the loader's buffer, whichever is smaller).
    CmdlineTooLong { len: u64, max: u64 },
    /// The command line contains a NUL byte (the kernel would see it cut short).
    CmdlineHasNul,
    /// No page-aligned place for the initrd between the kernel's reservation and
    /// min(`initrd_addr_max`, RAM end, 4 GiB).
    InitrdDoesNotFit { len: u64 },
    /// The ACPI tables or the RSDP lie outside the ACPI window of the memory map, or
    /// the RSDP is not 16-byte aligned (the legacy scan only looks there).
    BadAcpiPlacement { gpa: u64, len: u64 },
    /// Firmware memory the tables point at is not page-aligned between the IOAPIC
    /// and local APIC pages (where the map can describe it apart from RAM).
    BadNvsPlacement { gpa: u64, len: u64 },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, len } => {
                write!(
                    f,
                    "bzImage truncated: need {needed:#x} bytes, have {len:#x}"
                )
            }
            Self::BadBootFlag(v) => write!(f, "boot flag {v:#06x} is not 0xaa55"),
            Self::BadMagic => write!(f, "no \"HdrS\" setup header magic"),
            Self::ProtocolTooOld(v) => {
                write!(
                    f,
                    "boot protocol {}.{:02} is older than 2.12",
                    v >> 8,
                    v & 0xff
                )
            }
            Self::BadJump(b) => write!(f, "byte {b:#04x} at 0x200 is not a short jump"),
            Self::BadHeaderLength { end } => write!(f, "setup header would end at {end:#x}"),
            Self::NotLoadedHigh => write!(f, "loadflags.LOADED_HIGH clear: not a bzImage"),
            Self::No64BitEntry => write!(f, "xloadflags: no 64-bit entry point"),
            Self::BadKernelSize {
                syssize_bytes,
                available,
            } => write!(
                f,
                "syssize says {syssize_bytes:#x} bytes, the file has {available:#x} after setup"
            ),
            Self::BadKernelAlignment(a) => write!(f, "kernel_alignment {a:#x} not a power of two"),
            Self::BadPrefAddress(a) => write!(f, "unusable pref_address {a:#x}"),
            Self::InitSizeTooSmall {
                init_size,
                kernel_len,
            } => {
                write!(
                    f,
                    "init_size {init_size:#x} below the image size {kernel_len:#x}"
                )
            }
            Self::BadRamSize(s) => write!(f, "unusable guest RAM size {s:#x}"),
            Self::KernelDoesNotFit {
                start,
                end,
                ram_size,
            } => write!(
                f,
                "kernel needs [{start:#x}, {end:#x}) but RAM ends at {ram_size:#x}"
            ),
            Self::CmdlineTooLong { len, max } => {
                write!(f, "command line of {len} bytes exceeds {max}")
            }
            Self::CmdlineHasNul => write!(f, "command line contains a NUL byte"),
            Self::InitrdDoesNotFit { len } => write!(f, "no room for an initrd of {len:#x} bytes"),
            Self::BadNvsPlacement { gpa, len } => write!(
                f,
                "ACPI NVS range at {gpa:#x} (+{len:#x}) is not page-aligned between the IOAPIC and LAPIC pages"
            ),
            Self::BadAcpiPlacement { gpa, len } => {
                write!(
                    f,
                    "ACPI blob at {gpa:#x} (+{len:#x}) outside the ACPI window"
                )
            }
        }
    }
}
