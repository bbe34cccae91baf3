//! boot_params, the "zero page" (zero-page.rst, arch/x86/include/uapi/asm/bootparam.h):
//! zeroed, the file's setup header copied in at 0x1F1, and the loader's fields set.

use alloc::boxed::Box;

use super::header::{off, HDR_START};
use super::layout::E820Entry;

pub(crate) const ZERO_PAGE_SIZE: usize = 4096;
const ACPI_RSDP_ADDR: usize = 0x070;
const EXT_RAMDISK_IMAGE: usize = 0x0C0;
const EXT_RAMDISK_SIZE: usize = 0x0C4;
const EXT_CMD_LINE_PTR: usize = 0x0C8;
const E820_ENTRIES: usize = 0x1E8;
const E820_TABLE: usize = 0x2D0;
const E820_ENTRY_SIZE: usize = 20;
/// E820_MAX_ENTRIES_ZEROPAGE.
pub const E820_MAX: usize = 128;
/// "Undefined" loader: we have no assigned boot loader id.
const LOADER_UNDEFINED: u8 = 0xFF;

/// A 4 KiB boot_params image.
#[derive(Clone, PartialEq, Eq)]
pub struct ZeroPage(Box<[u8; ZERO_PAGE_SIZE]>);

impl core::fmt::Debug for ZeroPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZeroPage").finish_non_exhaustive()
    }
}

impl ZeroPage {
    /// A zeroed page with `raw_header` (the file's bytes from 0x1F1, at most up to
    /// 0x290, as [`super::BzImage::raw_header`] guarantees) copied in place, which
    /// also leaves `sentinel` (0x1EF) zero so the kernel trusts the fields below.
    pub(crate) fn from_header(raw_header: &[u8]) -> Self {
        let mut page = Box::new([0u8; ZERO_PAGE_SIZE]);
        let end = (HDR_START + raw_header.len()).min(ZERO_PAGE_SIZE);
        page[HDR_START..end].copy_from_slice(&raw_header[..end - HDR_START]);
        let mut zp = Self(page);
        zp.put_u8(off::TYPE_OF_LOADER, LOADER_UNDEFINED);
        // We pass no setup_data list; a value in the file would make the kernel
        // chase a pointer into whatever lies there.
        zp.put_u64(off::SETUP_DATA, 0);
        zp
    }

    pub fn as_bytes(&self) -> &[u8; ZERO_PAGE_SIZE] {
        &self.0
    }

    pub(crate) fn into_vec(self) -> alloc::vec::Vec<u8> {
        (self.0 as Box<[u8]>).into_vec()
    }

    fn put_u8(&mut self, at: usize, v: u8) {
        self.0[at] = v;
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.0.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64_at(&self, at: usize) -> Option<u64> {
        let lo = self.u32_at(at)?;
        let hi = self.u32_at(at.checked_add(4)?)?;
        Some(u64::from(lo) | (u64::from(hi) << 32))
    }

    pub(crate) fn set_cmdline(&mut self, gpa: u64) {
        self.put_u32(off::CMD_LINE_PTR, gpa as u32);
        self.put_u32(EXT_CMD_LINE_PTR, (gpa >> 32) as u32);
    }

    pub(crate) fn set_ramdisk(&mut self, gpa: u64, len: u64) {
        self.put_u32(off::RAMDISK_IMAGE, gpa as u32);
        self.put_u32(EXT_RAMDISK_IMAGE, (gpa >> 32) as u32);
        self.put_u32(off::RAMDISK_SIZE, len as u32);
        self.put_u32(EXT_RAMDISK_SIZE, (len >> 32) as u32);
    }

    pub(crate) fn set_acpi_rsdp(&mut self, gpa: u64) {
        self.put_u64(ACPI_RSDP_ADDR, gpa);
    }

    /// Writes the map; more than [`E820_MAX`] entries are a caller bug, so the
    /// excess is dropped rather than written past the table.
    pub(crate) fn set_e820(&mut self, map: &[E820Entry]) {
        let n = map.len().min(E820_MAX);
        for (i, e) in map.iter().take(n).enumerate() {
            let at = E820_TABLE + i * E820_ENTRY_SIZE;
            self.put_u64(at, e.addr);
            self.put_u64(at + 8, e.size);
            self.put_u32(at + 16, e.kind as u32);
        }
        self.put_u8(E820_ENTRIES, n as u8);
    }

    /// The e820 table as written, for tests and the VMM's own checks.
    pub fn e820(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        let n = usize::from(self.0[E820_ENTRIES]).min(E820_MAX);
        (0..n).filter_map(move |i| {
            let at = E820_TABLE + i * E820_ENTRY_SIZE;
            Some((
                self.u64_at(at)?,
                self.u64_at(at + 8)?,
                self.u32_at(at + 16)?,
            ))
        })
    }

    pub fn acpi_rsdp_addr(&self) -> u64 {
        self.u64_at(ACPI_RSDP_ADDR).unwrap_or(0)
    }

    pub fn cmd_line_ptr(&self) -> u64 {
        let lo = self.u32_at(off::CMD_LINE_PTR).unwrap_or(0);
        let hi = self.u32_at(EXT_CMD_LINE_PTR).unwrap_or(0);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    pub fn ramdisk(&self) -> (u64, u64) {
        let image = u64::from(self.u32_at(off::RAMDISK_IMAGE).unwrap_or(0))
            | (u64::from(self.u32_at(EXT_RAMDISK_IMAGE).unwrap_or(0)) << 32);
        let size = u64::from(self.u32_at(off::RAMDISK_SIZE).unwrap_or(0))
            | (u64::from(self.u32_at(EXT_RAMDISK_SIZE).unwrap_or(0)) << 32);
        (image, size)
    }

    pub fn type_of_loader(&self) -> u8 {
        self.0[off::TYPE_OF_LOADER]
    }
}

const _: () = {
    assert!(E820_TABLE + E820_MAX * E820_ENTRY_SIZE == 0xCD0);
    assert!(off::SETUP_DATA + 8 <= ZERO_PAGE_SIZE);
};
