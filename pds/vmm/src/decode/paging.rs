//! The guest's page-table walk: guest-virtual to guest-physical, with the checks the
//! CPU would make, so the VMM can inject the same #PF (error code and CR2) the guest
//! would have taken had the instruction not exited.
//!
//! Covers paging off, 32-bit (with PSE 4 MiB pages), legacy PAE, and long mode with
//! 4- and 5-level tables and 2 MiB/1 GiB pages. Accessed/dirty bits are not set: the
//! VMM reads on the guest's behalf, and the instruction it emulates either already
//! set them while faulting or is an MMIO access whose data never goes through the
//! guest's tables from here.
//!
//! Not modelled: protection keys (CR4.PKE), shadow-stack accesses, segment limits,
//! and PAE's PDPTE registers (the four PDPTEs are read from memory at walk time
//! rather than cached at the CR3 load; only a guest that rewrites its PDPT without
//! reloading CR3 could tell).

use super::bits::*;
use super::memory::{GuestMemory, MemError};

/// Which kind of access a translation is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccessKind {
    Read,
    Write,
    Execute,
}

/// An access to translate: its kind and privilege.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub kind: AccessKind,
    /// CPL 3.
    pub user: bool,
    /// RFLAGS.AC for an explicit supervisor data access (lifts SMAP).
    pub ac: bool,
}

impl Access {
    /// An instruction fetch at privilege `cpl`.
    pub const fn fetch(cpl: u8) -> Self {
        Self {
            kind: AccessKind::Execute,
            user: cpl == 3,
            ac: false,
        }
    }
}

/// The page fault the guest takes: inject #PF with this error code, CR2 = address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PageFault {
    pub address: u64,
    pub error_code: u32,
}

impl PageFault {
    pub const PRESENT: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const USER: u32 = 1 << 2;
    pub const RESERVED: u32 = 1 << 3;
    pub const FETCH: u32 = 1 << 4;
}

/// Why a translation failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TranslateError {
    /// The guest's tables deny it: inject this #PF.
    PageFault(PageFault),
    /// Not canonical in the current paging mode: the guest takes #GP(0).
    NonCanonical,
    /// A table lies outside RAM the VMM can read.
    Memory(MemError),
}

impl From<MemError> for TranslateError {
    fn from(e: MemError) -> Self {
        TranslateError::Memory(e)
    }
}

/// The paging structure in force.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PagingMode {
    Off,
    Bits32,
    Pae,
    Level4,
    Level5,
}

/// The paging-relevant part of the guest's control registers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Paging {
    pub mode: PagingMode,
    pub cr3: u64,
    pub wp: bool,
    pub nxe: bool,
    pub pse: bool,
    pub smep: bool,
    pub smap: bool,
    /// MAXPHYADDR as the guest's CPUID reports it: entry bits from here to 51 are
    /// reserved. 52 (the default) checks nothing there.
    pub phys_bits: u8,
}

impl Paging {
    pub const fn from_registers(cr0: u64, cr3: u64, cr4: u64, efer: u64) -> Self {
        let mode = if cr0 & CR0_PG == 0 {
            PagingMode::Off
        } else if cr4 & CR4_PAE == 0 {
            PagingMode::Bits32
        } else if efer & EFER_LMA == 0 {
            PagingMode::Pae
        } else if cr4 & CR4_LA57 != 0 {
            PagingMode::Level5
        } else {
            PagingMode::Level4
        };
        Self {
            mode,
            cr3,
            wp: cr0 & CR0_WP != 0,
            nxe: efer & EFER_NXE != 0,
            pse: cr4 & CR4_PSE != 0,
            smep: cr4 & CR4_SMEP != 0,
            smap: cr4 & CR4_SMAP != 0,
            phys_bits: 52,
        }
    }

    pub const fn with_phys_bits(mut self, bits: u8) -> Self {
        self.phys_bits = if bits < 32 {
            32
        } else if bits > 52 {
            52
        } else {
            bits
        };
        self
    }

    /// Entry bits [phys_bits, 52): reserved.
    const fn high_reserved(&self) -> u64 {
        let low = (1u64 << self.phys_bits) - 1;
        !low & ((1u64 << 52) - 1)
    }
}

/// The page frame bits of a 64-bit entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Rights accumulated down the walk (the most restrictive level wins).
#[derive(Copy, Clone)]
struct Rights {
    write: bool,
    user: bool,
    exec: bool,
}

impl Rights {
    const ALL: Self = Self {
        write: true,
        user: true,
        exec: true,
    };

    fn and(self, entry: u64, nxe: bool) -> Self {
        Self {
            write: self.write && entry & PTE_RW != 0,
            user: self.user && entry & PTE_US != 0,
            exec: self.exec && !(nxe && entry & PTE_XD != 0),
        }
    }
}

/// Translates `gva` for `access` under `paging`.
pub fn translate<M: GuestMemory + ?Sized>(
    mem: &M,
    paging: &Paging,
    gva: u64,
    access: Access,
) -> Result<u64, TranslateError> {
    let walk = Walk {
        mem,
        paging,
        gva,
        access,
    };
    let (gpa, rights) = match paging.mode {
        PagingMode::Off => return Ok(gva & 0xffff_ffff),
        PagingMode::Bits32 => walk.bits32(gva & 0xffff_ffff)?,
        PagingMode::Pae => walk.pae(gva & 0xffff_ffff)?,
        PagingMode::Level4 | PagingMode::Level5 => walk.long()?,
    };
    check_rights(paging, rights, access).map_err(|()| walk.fault(PageFault::PRESENT))?;
    Ok(gpa)
}

fn check_rights(paging: &Paging, r: Rights, access: Access) -> Result<(), ()> {
    if access.user && !r.user {
        return Err(());
    }
    if !access.user && r.user {
        match access.kind {
            AccessKind::Execute if paging.smep => return Err(()),
            AccessKind::Read | AccessKind::Write if paging.smap && !access.ac => return Err(()),
            _ => {}
        }
    }
    if access.kind == AccessKind::Write && !r.write && (access.user || paging.wp) {
        return Err(());
    }
    if access.kind == AccessKind::Execute && !r.exec {
        return Err(());
    }
    Ok(())
}

/// One translation: what every level of the walk reads and how it faults.
struct Walk<'a, M: ?Sized> {
    mem: &'a M,
    paging: &'a Paging,
    /// As the access gave it: the fault reports this address, not the truncated one.
    gva: u64,
    access: Access,
}

impl<M: GuestMemory + ?Sized> Walk<'_, M> {
    /// The #PF for this access, with the I/D, U/S and W/R bits it implies.
    fn fault(&self, bits: u32) -> TranslateError {
        let mut code = bits;
        if self.access.kind == AccessKind::Write {
            code |= PageFault::WRITE;
        }
        if self.access.user {
            code |= PageFault::USER;
        }
        // The CPU reports I/D only when it could matter: NX or SMEP in force.
        if self.access.kind == AccessKind::Execute && (self.paging.nxe || self.paging.smep) {
            code |= PageFault::FETCH;
        }
        TranslateError::PageFault(PageFault {
            address: self.gva,
            error_code: code,
        })
    }

    /// `entry`, if its present bit is set and none of `reserved` is.
    fn usable(&self, entry: u64, reserved: u64) -> Result<u64, TranslateError> {
        if entry & PTE_P == 0 {
            Err(self.fault(0))
        } else if entry & reserved != 0 {
            Err(self.fault(PageFault::PRESENT | PageFault::RESERVED))
        } else {
            Ok(entry)
        }
    }

    fn read_u64(&self, gpa: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.mem.read_gpa(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_u32(&self, gpa: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 4];
        self.mem.read_gpa(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b).into())
    }

    /// 4- or 5-level paging.
    fn long(&self) -> Result<(u64, Rights), TranslateError> {
        let (paging, gva) = (self.paging, self.gva);
        let levels: u32 = if paging.mode == PagingMode::Level5 {
            5
        } else {
            4
        };
        let va_bits = 12 + 9 * levels;
        // Canonical: bits [va_bits-1, 64) all equal.
        let shift = 64 - va_bits;
        if (((gva << shift) as i64) >> shift) as u64 != gva {
            return Err(TranslateError::NonCanonical);
        }
        let common_reserved = paging.high_reserved() | if paging.nxe { 0 } else { PTE_XD };
        let mut table = paging.cr3 & ADDR_MASK & !paging.high_reserved();
        let mut rights = Rights::ALL;
        for level in (0..levels).rev() {
            let index = (gva >> (12 + 9 * level)) & 0x1ff;
            let entry = self.read_u64(table + index * 8)?;
            let page_bits = 12 + 9 * level;
            let large = entry & PTE_PS != 0;
            let reserved = common_reserved
                | match level {
                    // PML5E/PML4E: PS must be 0.
                    3 | 4 => PTE_PS,
                    // A large leaf's frame must be aligned to its size (PAT is bit 12).
                    1 | 2 if large => ((1u64 << page_bits) - 1) & !0x1fff,
                    _ => 0,
                };
            let entry = self.usable(entry, reserved)?;
            rights = rights.and(entry, paging.nxe);
            if level == 0 || (large && level <= 2) {
                let frame = entry & ADDR_MASK & !((1u64 << page_bits) - 1);
                return Ok((frame | (gva & ((1u64 << page_bits) - 1)), rights));
            }
            table = entry & ADDR_MASK;
        }
        // The loop returns at level 0.
        Err(self.fault(0))
    }

    /// PAE paging of the 32-bit address `va`.
    fn pae(&self, va: u64) -> Result<(u64, Rights), TranslateError> {
        let paging = self.paging;
        let pdpte = self.read_u64((paging.cr3 & 0xffff_ffe0) + ((va >> 30) & 3) * 8)?;
        let pdpte = self.usable(pdpte, paging.high_reserved() | 0x1e6 | (0xfff << 52))?;
        let reserved = paging.high_reserved() | if paging.nxe { 0 } else { PTE_XD };
        let pde = self.read_u64((pdpte & ADDR_MASK) + ((va >> 21) & 0x1ff) * 8)?;
        let large = pde & PTE_PS != 0;
        let pde = self.usable(pde, reserved | if large { 0x1f_e000 } else { 0 })?;
        let rights = Rights::ALL.and(pde, paging.nxe);
        if large {
            return Ok(((pde & ADDR_MASK & !0x1f_ffff) | (va & 0x1f_ffff), rights));
        }
        let pte = self.read_u64((pde & ADDR_MASK) + ((va >> 12) & 0x1ff) * 8)?;
        let pte = self.usable(pte, reserved)?;
        let rights = rights.and(pte, paging.nxe);
        Ok(((pte & ADDR_MASK) | (va & 0xfff), rights))
    }

    /// 32-bit paging (with PSE-36 large pages when CR4.PSE is set) of `va`.
    fn bits32(&self, va: u64) -> Result<(u64, Rights), TranslateError> {
        let paging = self.paging;
        let pde = self.read_u32((paging.cr3 & 0xffff_f000) + ((va >> 22) & 0x3ff) * 4)?;
        let pde = self.usable(pde, 0)?;
        // No NX in 32-bit paging: pass nxe = false so bit 63 (always 0 here) is moot.
        let rights = Rights::ALL.and(pde, false);
        if paging.pse && pde & PTE_PS != 0 {
            // PSE-36: bits 13..21 carry physical bits 32..40; bit 21 is reserved, as is
            // any high bit past MAXPHYADDR.
            let high = ((pde >> 13) & 0xff) << 32;
            if pde & (1 << 21) != 0 || high & paging.high_reserved() != 0 {
                return Err(self.fault(PageFault::PRESENT | PageFault::RESERVED));
            }
            return Ok(((pde & 0xffc0_0000) | high | (va & 0x3f_ffff), rights));
        }
        let pte = self.read_u32((pde & 0xffff_f000) + ((va >> 12) & 0x3ff) * 4)?;
        let pte = self.usable(pte, 0)?;
        let rights = rights.and(pte, false);
        Ok(((pte & 0xffff_f000) | (va & 0xfff), rights))
    }
}

#[cfg(test)]
mod tests;
