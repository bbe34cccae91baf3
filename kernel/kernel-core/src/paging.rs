//! x86_64 4-level page tables, built and walked through a [`PhysMem`] so the same
//! code runs on the host (tests) and in the kernel (over its physical-memory window).

use kernel_abi::image::perms;

pub const PRESENT: u64 = 1;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const WRITE_THROUGH: u64 = 1 << 3;
pub const CACHE_DISABLE: u64 = 1 << 4;
pub const HUGE: u64 = 1 << 7;
pub const GLOBAL: u64 = 1 << 8;
pub const NO_EXECUTE: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Physical memory as the page-table code sees it.
pub trait PhysMem {
    fn read(&self, paddr: u64) -> u64;
    fn write(&mut self, paddr: u64, value: u64);
    /// A zeroed, 4 KiB-aligned frame for a table; `None` when memory is exhausted.
    fn alloc_table(&mut self) -> Option<u64>;
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    OutOfMemory,
    /// Something is already mapped there (a PD's regions must not overlap).
    AlreadyMapped(u64),
    Unaligned,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PageSize {
    Size4K,
    Size2M,
}

impl PageSize {
    pub fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 0x1000,
            Self::Size2M => 0x20_0000,
        }
    }
}

/// Leaf flags for a user mapping with system.xml `perms` ([`perms`] bits).
pub fn user_flags(p: u32, cached: bool) -> u64 {
    let mut f = PRESENT | USER;
    if p & perms::W != 0 {
        f |= WRITABLE;
    }
    if p & perms::X == 0 {
        f |= NO_EXECUTE;
    }
    if !cached {
        f |= CACHE_DISABLE | WRITE_THROUGH;
    }
    f
}

fn index(vaddr: u64, shift: u32) -> u64 {
    (vaddr >> shift) & 0x1ff
}

/// Maps one page. Intermediate tables are created as needed and left permissive
/// (present, writable, user); the leaf decides.
pub fn map(
    mem: &mut dyn PhysMem,
    root: u64,
    vaddr: u64,
    paddr: u64,
    size: PageSize,
    flags: u64,
) -> Result<(), MapError> {
    if !vaddr.is_multiple_of(size.bytes()) || !paddr.is_multiple_of(size.bytes()) {
        return Err(MapError::Unaligned);
    }
    let leaf_shift = match size {
        PageSize::Size4K => 12,
        PageSize::Size2M => 21,
    };
    let mut table = root;
    for shift in [39, 30, 21, 12] {
        let slot = table + index(vaddr, shift) * 8;
        let entry = mem.read(slot);
        if shift == leaf_shift {
            if entry & PRESENT != 0 {
                return Err(MapError::AlreadyMapped(vaddr));
            }
            let huge = if size == PageSize::Size2M { HUGE } else { 0 };
            mem.write(slot, (paddr & ADDR) | flags | huge | PRESENT);
            return Ok(());
        }
        if entry & PRESENT != 0 {
            if entry & HUGE != 0 {
                return Err(MapError::AlreadyMapped(vaddr));
            }
            table = entry & ADDR;
        } else {
            let next = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            mem.write(slot, next | PRESENT | WRITABLE | USER);
            table = next;
        }
    }
    Err(MapError::Unaligned)
}

/// Maps `bytes` (rounded up to whole pages) at `vaddr` to the frames at `paddr`:
/// with `largest` pages where both addresses are aligned to one and one fits in
/// what is left, else with 4 KiB pages.
pub fn map_range(
    mem: &mut dyn PhysMem,
    root: u64,
    vaddr: u64,
    paddr: u64,
    bytes: u64,
    largest: PageSize,
    flags: u64,
) -> Result<(), MapError> {
    let big = largest.bytes();
    let mut off = 0;
    while off < bytes {
        let size = if (vaddr + off).is_multiple_of(big)
            && (paddr + off).is_multiple_of(big)
            && bytes - off >= big
        {
            largest
        } else {
            PageSize::Size4K
        };
        map(mem, root, vaddr + off, paddr + off, size, flags)?;
        off += size.bytes();
    }
    Ok(())
}

/// The physical address `vaddr` maps to and the effective rights along the walk
/// (user and writable only if every level allows it; no-execute if any level says so).
pub fn translate(mem: &dyn PhysMem, root: u64, vaddr: u64) -> Option<(u64, u64)> {
    let mut table = root;
    let mut rights = USER | WRITABLE;
    let mut nx = 0;
    for shift in [39, 30, 21, 12] {
        let entry = mem.read(table + index(vaddr, shift) * 8);
        if entry & PRESENT == 0 {
            return None;
        }
        rights &= entry;
        nx |= entry & NO_EXECUTE;
        if shift == 12 || entry & HUGE != 0 {
            let offset = vaddr & ((1u64 << shift) - 1);
            let base = entry & ADDR & !((1u64 << shift) - 1);
            return Some((base + offset, rights | nx | PRESENT));
        }
        table = entry & ADDR;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem {
        words: HashMap<u64, u64>,
        next: u64,
        limit: u64,
    }

    impl Mem {
        fn new(limit: u64) -> Self {
            Self {
                words: HashMap::new(),
                next: 0x10_0000,
                limit,
            }
        }
    }

    impl PhysMem for Mem {
        fn read(&self, paddr: u64) -> u64 {
            assert_eq!(paddr % 8, 0);
            self.words.get(&paddr).copied().unwrap_or(0)
        }
        fn write(&mut self, paddr: u64, value: u64) {
            self.words.insert(paddr, value);
        }
        fn alloc_table(&mut self) -> Option<u64> {
            if self.limit == 0 {
                return None;
            }
            self.limit -= 1;
            self.next += 0x1000;
            Some(self.next)
        }
    }

    const ROOT: u64 = 0x1000;

    #[test]
    fn a_mapped_page_translates_with_its_rights() {
        let mut m = Mem::new(10);
        let f = user_flags(perms::R | perms::W, true);
        map(&mut m, ROOT, 0x2000_0000, 0x80_0000, PageSize::Size4K, f).unwrap();
        let (pa, rights) = translate(&m, ROOT, 0x2000_0123).unwrap();
        assert_eq!(pa, 0x80_0123);
        assert_eq!(
            rights & (USER | WRITABLE | NO_EXECUTE),
            USER | WRITABLE | NO_EXECUTE
        );
        assert!(translate(&m, ROOT, 0x2000_1000).is_none());
        // Siblings share the intermediate tables: three tables for the first page only.
        map(&mut m, ROOT, 0x2000_1000, 0x80_1000, PageSize::Size4K, f).unwrap();
        assert_eq!(m.limit, 7);
    }

    #[test]
    fn rights_follow_the_perms() {
        assert_eq!(
            user_flags(perms::R, true) & (WRITABLE | NO_EXECUTE),
            NO_EXECUTE
        );
        assert_eq!(
            user_flags(perms::R | perms::X, true) & (WRITABLE | NO_EXECUTE),
            0
        );
        assert_ne!(user_flags(perms::R, false) & CACHE_DISABLE, 0);
    }

    #[test]
    fn overlapping_and_unaligned_maps_are_refused() {
        let mut m = Mem::new(10);
        map(&mut m, ROOT, 0x40_0000, 0x1000, PageSize::Size4K, PRESENT).unwrap();
        assert_eq!(
            map(&mut m, ROOT, 0x40_0000, 0x2000, PageSize::Size4K, PRESENT),
            Err(MapError::AlreadyMapped(0x40_0000))
        );
        assert_eq!(
            map(
                &mut m,
                ROOT,
                0x40_0000,
                0x20_0000,
                PageSize::Size2M,
                PRESENT
            ),
            Err(MapError::AlreadyMapped(0x40_0000))
        );
        assert_eq!(
            map(&mut m, ROOT, 0x40_0800, 0x2000, PageSize::Size4K, PRESENT),
            Err(MapError::Unaligned)
        );
    }

    #[test]
    fn huge_pages_translate_and_block_small_maps_inside() {
        let mut m = Mem::new(10);
        let k = 0xffff_8000_0000_0000;
        map(
            &mut m,
            ROOT,
            k,
            0x20_0000,
            PageSize::Size2M,
            WRITABLE | NO_EXECUTE,
        )
        .unwrap();
        let (pa, rights) = translate(&m, ROOT, k + 0x1234).unwrap();
        assert_eq!(pa, 0x20_1234);
        assert_eq!(
            rights & USER,
            0,
            "intermediates allow user, but the leaf does not"
        );
        assert_eq!(
            map(&mut m, ROOT, k + 0x1000, 0, PageSize::Size4K, PRESENT),
            Err(MapError::AlreadyMapped(k + 0x1000))
        );
    }

    #[test]
    fn a_range_takes_large_pages_only_where_both_sides_align_and_one_fits() {
        let mut m = Mem::new(10);
        let (va, pa) = (0x4000_0000 - 0x1000, 0x20_0000 - 0x1000);
        let bytes = 0x20_0000 + 0x1800;
        map_range(&mut m, ROOT, va, pa, bytes, PageSize::Size2M, PRESENT).unwrap();
        // 4 KiB up to the 2 MiB boundary, one 2 MiB page, then a 4 KiB page for
        // the rest, only partly asked for.
        for (at, huge) in [(0, false), (0x1000, true), (0x20_1000, false)] {
            let got = translate(&m, ROOT, va + at + 0x10).map(|t| t.0);
            assert_eq!(got, Some(pa + at + 0x10), "at {at:#x}");
            let leaf = m
                .words
                .values()
                .any(|e| e & ADDR == pa + at && e & HUGE != 0);
            assert_eq!(leaf, huge, "page at {at:#x}");
        }
        assert!(translate(&m, ROOT, va + 0x20_2000).is_none());
        assert!(translate(&m, ROOT, va - 0x1000).is_none());
    }

    #[test]
    fn a_4k_range_maps_every_page_and_stops_at_the_first_refusal() {
        let mut m = Mem::new(10);
        map_range(
            &mut m,
            ROOT,
            0x40_0000,
            0x20_0000,
            0x20_0000,
            PageSize::Size4K,
            PRESENT,
        )
        .unwrap();
        assert!(!m.words.values().any(|e| e & HUGE != 0), "no 2 MiB page");
        assert_eq!(translate(&m, ROOT, 0x5f_f008).map(|t| t.0), Some(0x3f_f008));
        assert_eq!(
            map_range(
                &mut m,
                ROOT,
                0x3f_f000,
                0,
                0x2000,
                PageSize::Size4K,
                PRESENT
            ),
            Err(MapError::AlreadyMapped(0x40_0000))
        );
        assert_eq!(translate(&m, ROOT, 0x3f_f000).map(|t| t.0), Some(0));
    }

    #[test]
    fn running_out_of_table_frames_is_an_error() {
        let mut m = Mem::new(2);
        assert_eq!(
            map(&mut m, ROOT, 0x40_0000, 0x1000, PageSize::Size4K, PRESENT),
            Err(MapError::OutOfMemory)
        );
    }
}
