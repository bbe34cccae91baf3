//! The loader plan: what goes where in guest RAM and how the vCPU starts.

use alloc::vec::Vec;

use super::cpu::{gdt_bytes, identity_page_tables, VcpuState};
use super::error::BootError;
use super::header::BzImage;
use super::layout::{
    align_down, e820_map, nvs_fits, E820Entry, ACPI_WINDOW_END, ACPI_WINDOW_START, BOOT_PARAMS_GPA,
    CMDLINE_GPA, CMDLINE_MAX, FOUR_GIB, GDT_GPA, KERNEL_LEGACY_GPA, PAGE_SIZE, PML4_GPA, RAM_LIMIT,
};
use super::zero_page::ZeroPage;

/// The 64-bit entry point's offset from the load address (boot.rst).
const ENTRY_64_OFFSET: u64 = 0x200;

/// ACPI tables the caller built for the guest (see [`crate::acpi`]).
#[derive(Clone, Copy, Debug)]
pub struct AcpiBlob<'a> {
    /// Where `bytes` go; inside [`ACPI_WINDOW_START`, `ACPI_WINDOW_END`).
    pub gpa: u64,
    pub bytes: &'a [u8],
    /// The RSDP's address, inside the blob and 16-byte aligned.
    pub rsdp_gpa: u64,
    /// Firmware memory the tables point at (gpa, len), described to the guest as
    /// ACPI NVS: the vTPM's event log (the TPM2 table's LASA/LAML).
    pub nvs: Option<(u64, u64)>,
}

/// What the loader is asked to place.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Guest RAM is [0, ram_size): page-aligned, at most [`RAM_LIMIT`].
    pub ram_size: u64,
    /// 0 for no initrd.
    pub initrd_len: u64,
    /// Without the terminating NUL, which the loader adds.
    pub cmdline: &'a [u8],
    pub acpi: Option<AcpiBlob<'a>>,
}

/// Where a write's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteSource {
    /// [`BzImage::kernel`].
    Kernel,
    /// The initrd the plan was made for (`initrd_len` bytes).
    Initrd,
    /// Bytes the loader made (boot_params, page tables, GDT, command line, ACPI).
    Bytes(Vec<u8>),
}

/// One guest-physical write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestWrite {
    pub gpa: u64,
    pub len: u64,
    pub source: WriteSource,
}

impl GuestWrite {
    /// The bytes to write, given the kernel and initrd the plan was made for;
    /// `None` if the slice passed is not the length the plan placed.
    pub fn data<'a>(&'a self, kernel: &'a [u8], initrd: &'a [u8]) -> Option<&'a [u8]> {
        let bytes = match &self.source {
            WriteSource::Kernel => kernel,
            WriteSource::Initrd => initrd,
            WriteSource::Bytes(b) => b.as_slice(),
        };
        (bytes.len() as u64 == self.len).then_some(bytes)
    }

    pub fn end(&self) -> u64 {
        self.gpa + self.len
    }
}

/// Everything the VMM does to start the kernel.
#[derive(Clone, Debug)]
pub struct BootPlan {
    /// Non-overlapping, each inside RAM or the ACPI window; guest memory outside
    /// them is expected to read as zero.
    pub writes: Vec<GuestWrite>,
    pub vcpu: VcpuState,
    pub zero_page: ZeroPage,
    pub e820: Vec<E820Entry>,
    pub kernel_gpa: u64,
    /// [start, end) the kernel may use until it has its own memory map.
    pub kernel_reserved: (u64, u64),
    /// 0 when there is no initrd.
    pub initrd_gpa: u64,
}

fn check_ram(ram_size: u64) -> Result<(), BootError> {
    if !ram_size.is_multiple_of(PAGE_SIZE) || ram_size <= KERNEL_LEGACY_GPA || ram_size > RAM_LIMIT
    {
        return Err(BootError::BadRamSize(ram_size));
    }
    Ok(())
}

fn check_cmdline(bz: &BzImage<'_>, cmdline: &[u8]) -> Result<(), BootError> {
    let max = u64::from(bz.header().cmdline_size).min(CMDLINE_MAX - 1);
    if cmdline.len() as u64 > max {
        return Err(BootError::CmdlineTooLong {
            len: cmdline.len() as u64,
            max,
        });
    }
    if cmdline.contains(&0) {
        return Err(BootError::CmdlineHasNul);
    }
    Ok(())
}

fn check_acpi(acpi: &AcpiBlob<'_>) -> Result<(), BootError> {
    let len = acpi.bytes.len() as u64;
    let bad = BootError::BadAcpiPlacement { gpa: acpi.gpa, len };
    let end = acpi.gpa.checked_add(len).ok_or(bad)?;
    let inside = acpi.gpa >= ACPI_WINDOW_START && end <= ACPI_WINDOW_END;
    // The RSDP is 36 bytes; it must lie wholly inside the blob.
    let rsdp_inside = acpi.rsdp_gpa >= acpi.gpa && acpi.rsdp_gpa.saturating_add(36) <= end;
    if !inside || !rsdp_inside || !acpi.rsdp_gpa.is_multiple_of(16) {
        return Err(bad);
    }
    match acpi.nvs {
        Some((gpa, len)) if !nvs_fits(gpa, len) => Err(BootError::BadNvsPlacement { gpa, len }),
        _ => Ok(()),
    }
}

/// The highest page-aligned place for `len` bytes of initrd: below
/// `initrd_addr_max` (its last byte's limit), RAM's end and 4 GiB (the 32-bit
/// boot_params fields and the identity map), above the kernel's reservation.
fn place_initrd(bz: &BzImage<'_>, ram_size: u64, len: u64, floor: u64) -> Result<u64, BootError> {
    let err = BootError::InitrdDoesNotFit { len };
    let limit = (u64::from(bz.header().initrd_addr_max) + 1)
        .min(ram_size)
        .min(FOUR_GIB);
    let start = align_down(limit.checked_sub(len).ok_or(err)?, PAGE_SIZE);
    if start < floor {
        return Err(err);
    }
    Ok(start)
}

/// Lays the kernel out for a guest with `input.ram_size` bytes of RAM.
pub fn plan(bz: &BzImage<'_>, input: &PlanInput<'_>) -> Result<BootPlan, BootError> {
    check_ram(input.ram_size)?;
    check_cmdline(bz, input.cmdline)?;
    if let Some(acpi) = &input.acpi {
        check_acpi(acpi)?;
    }
    let (res_start, res_end) = bz.reserved_range();
    if res_end > input.ram_size {
        return Err(BootError::KernelDoesNotFit {
            start: res_start,
            end: res_end,
            ram_size: input.ram_size,
        });
    }
    let initrd_gpa = match input.initrd_len {
        0 => 0,
        len => place_initrd(bz, input.ram_size, len, res_end)?,
    };

    let e820 = e820_map(input.ram_size, input.acpi.and_then(|a| a.nvs));
    let mut zp = ZeroPage::from_header(bz.raw_header());
    zp.set_cmdline(CMDLINE_GPA);
    zp.set_ramdisk(initrd_gpa, input.initrd_len);
    zp.set_e820(&e820);
    if let Some(acpi) = &input.acpi {
        zp.set_acpi_rsdp(acpi.rsdp_gpa);
    }

    let kernel_gpa = bz.load_address();
    let mut cmdline = Vec::with_capacity(input.cmdline.len() + 1);
    cmdline.extend_from_slice(input.cmdline);
    cmdline.push(0);

    let mut writes = Vec::with_capacity(7);
    let mut bytes = |gpa: u64, b: Vec<u8>| {
        writes.push(GuestWrite {
            gpa,
            len: b.len() as u64,
            source: WriteSource::Bytes(b),
        });
    };
    bytes(GDT_GPA, gdt_bytes());
    bytes(PML4_GPA, identity_page_tables());
    bytes(BOOT_PARAMS_GPA, zp.clone().into_vec());
    bytes(CMDLINE_GPA, cmdline);
    if let Some(acpi) = &input.acpi {
        bytes(acpi.gpa, acpi.bytes.to_vec());
    }
    writes.push(GuestWrite {
        gpa: kernel_gpa,
        len: bz.kernel().len() as u64,
        source: WriteSource::Kernel,
    });
    if input.initrd_len != 0 {
        writes.push(GuestWrite {
            gpa: initrd_gpa,
            len: input.initrd_len,
            source: WriteSource::Initrd,
        });
    }

    Ok(BootPlan {
        writes,
        vcpu: VcpuState::long_mode_entry(kernel_gpa + ENTRY_64_OFFSET),
        zero_page: zp,
        e820: e820.to_vec(),
        kernel_gpa,
        kernel_reserved: (res_start, res_end),
        initrd_gpa,
    })
}
