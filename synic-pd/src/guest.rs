//! Guest physical memory as this PD was granted it: a few windows, each a region of
//! guest RAM that starts at some GPA. SynIC pages are looked up page by page, so a
//! page that straddles two windows (or none) is simply "not there".

use hvdef::HV_PAGE_SIZE;
use ipc::Region;

/// One contiguous piece of guest RAM.
#[derive(Copy, Clone, Debug)]
pub struct Window<'a> {
    pub gpa: u64,
    pub region: Region<'a>,
}

/// Up to [`GuestMemory::MAX_WINDOWS`] windows: on SNP with vTOM, the private range
/// at 0 and its shared alias at vTOM.
#[derive(Copy, Clone, Debug, Default)]
pub struct GuestMemory<'a> {
    windows: [Option<Window<'a>>; GuestMemory::MAX_WINDOWS],
}

impl<'a> GuestMemory<'a> {
    pub const MAX_WINDOWS: usize = 2;

    pub const fn empty() -> Self {
        Self {
            windows: [None, None],
        }
    }

    /// A single window at `gpa`.
    pub fn single(gpa: u64, region: Region<'a>) -> Self {
        let mut mem = Self::empty();
        mem.windows[0] = Some(Window { gpa, region });
        mem
    }

    /// Adds a window; `false` if all slots are taken.
    pub fn add(&mut self, gpa: u64, region: Region<'a>) -> bool {
        match self.windows.iter_mut().find(|w| w.is_none()) {
            Some(slot) => {
                *slot = Some(Window { gpa, region });
                true
            }
            None => false,
        }
    }

    /// The 4 KiB page at `gpa` (which must be page aligned), if one window holds it
    /// whole.
    pub fn page(&self, gpa: u64) -> Option<Region<'a>> {
        if !gpa.is_multiple_of(HV_PAGE_SIZE) {
            return None;
        }
        self.range(gpa, HV_PAGE_SIZE as usize)
    }

    /// `len` bytes at `gpa`, if one window holds them all.
    pub fn range(&self, gpa: u64, len: usize) -> Option<Region<'a>> {
        self.windows.iter().flatten().find_map(|w| {
            let offset = gpa.checked_sub(w.gpa)?;
            let offset = usize::try_from(offset).ok()?;
            w.region.subregion(offset, len).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;

    #[test]
    fn pages_resolve_only_inside_one_window() {
        let a: Vec<AtomicU64> = (0..1024).map(|_| AtomicU64::new(0)).collect(); // 2 pages
        let b: Vec<AtomicU64> = (0..512).map(|_| AtomicU64::new(0)).collect(); // 1 page
        let mut mem = GuestMemory::single(0x10000, Region::from_atomics(&a, Perms::RW));
        assert!(mem.add(0x8000_0000, Region::from_atomics(&b, Perms::RW)));
        assert!(mem.page(0x10000).is_some());
        assert!(mem.page(0x11000).is_some());
        assert!(mem.page(0x12000).is_none(), "past the end of window a");
        assert!(mem.page(0xF000).is_none(), "below window a");
        assert!(mem.page(0x10800).is_none(), "unaligned");
        assert!(mem.page(0x8000_0000).is_some());
        assert!(mem.page(!0xFFF).is_none());
        assert!(mem.range(0x11F00, 0x200).is_none(), "straddles the end");
        assert!(!mem.add(0, Region::from_atomics(&b, Perms::RW)), "full");
    }
}
