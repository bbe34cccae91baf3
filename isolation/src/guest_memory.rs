//! Guest memory as one PD was granted it: a few windows, each a region mapped at a
//! guest-physical base and on one side of the isolation boundary.
//!
//! Every PD that follows guest page numbers (a VSP's rings and data buffers, the
//! hypercall and SynIC pages) asks here rather than doing its own arithmetic, so
//! that "which mapping holds this page, and is it private" has one answer. Which
//! side a window is on is what system.xml granted it as (`guest_ram` private, the
//! alias above the vTOM shared); [`crate::gpa::Partition`] decides it for raw GPAs.

use ipc::Region;

use crate::gpa::{GpaClass, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;
/// Windows one PD holds: guest RAM, its shared alias, and room for a split layout.
pub const MAX_WINDOWS: usize = 4;

/// Why a window cannot be added.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The base or the length is not a whole number of pages.
    NotPageAligned,
    /// It overlaps a window already there (or wraps the address space).
    Overlap,
    /// [`MAX_WINDOWS`] are there already.
    Full,
}

/// A guest page no window holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NotGranted {
    pub gpn: u64,
}

#[derive(Copy, Clone, Debug)]
struct Window<'a> {
    first_gpn: u64,
    pages: u64,
    region: Region<'a>,
    class: GpaClass,
}

impl<'a> Window<'a> {
    fn index_of(&self, gpn: u64) -> Option<u64> {
        gpn.checked_sub(self.first_gpn)
            .filter(|&index| index < self.pages)
    }
}

/// One guest page as this PD maps it.
#[derive(Copy, Clone, Debug)]
pub struct GuestPage<'a> {
    /// The page's 4 KiB, with the window's rights.
    pub region: Region<'a>,
    pub class: GpaClass,
}

/// A run of guest pages that all lie in one window (a ring, say).
#[derive(Copy, Clone, Debug)]
pub struct Placement<'a> {
    /// The whole window the pages are in.
    pub region: Region<'a>,
    pub class: GpaClass,
    first_gpn: u64,
}

impl Placement<'_> {
    /// A guest page number as a page index into [`Self::region`]; only for the
    /// pages [`GuestMemory::place`] checked.
    pub fn page_index(&self, gpn: u64) -> u64 {
        gpn - self.first_gpn
    }
}

/// The windows of guest memory one PD was granted.
#[derive(Copy, Clone, Debug, Default)]
pub struct GuestMemory<'a> {
    windows: [Option<Window<'a>>; MAX_WINDOWS],
}

impl<'a> GuestMemory<'a> {
    pub const fn new() -> Self {
        Self {
            windows: [None; MAX_WINDOWS],
        }
    }

    /// Guest memory of one private window.
    pub fn private(gpa: u64, region: Region<'a>) -> Result<Self, LayoutError> {
        let mut m = Self::new();
        m.add(gpa, region, GpaClass::Private)?;
        Ok(m)
    }

    /// Grants `region` as the guest pages from `gpa` on.
    pub fn add(
        &mut self,
        gpa: u64,
        region: Region<'a>,
        class: GpaClass,
    ) -> Result<(), LayoutError> {
        if !gpa.is_multiple_of(PAGE_SIZE) || !region.len().is_multiple_of(PAGE) {
            return Err(LayoutError::NotPageAligned);
        }
        let first_gpn = gpa / PAGE_SIZE;
        let pages = (region.len() / PAGE) as u64;
        // The bytes must not wrap either: every GPA in it is a real address.
        gpa.checked_add(region.len() as u64)
            .ok_or(LayoutError::Overlap)?;
        let end = first_gpn + pages;
        if self
            .windows()
            .any(|w| first_gpn < w.first_gpn + w.pages && w.first_gpn < end)
        {
            return Err(LayoutError::Overlap);
        }
        let slot = self
            .windows
            .iter_mut()
            .find(|w| w.is_none())
            .ok_or(LayoutError::Full)?;
        *slot = Some(Window {
            first_gpn,
            pages,
            region,
            class,
        });
        Ok(())
    }

    fn windows(&self) -> impl Iterator<Item = &Window<'a>> {
        self.windows.iter().flatten()
    }

    /// Page `gpn`, if a window holds it.
    pub fn page(&self, gpn: u64) -> Result<GuestPage<'a>, NotGranted> {
        self.windows()
            .find_map(|w| {
                let index = usize::try_from(w.index_of(gpn)?).ok()?;
                let region = w.region.subregion(index * PAGE, PAGE).ok()?;
                Some(GuestPage {
                    region,
                    class: w.class,
                })
            })
            .ok_or(NotGranted { gpn })
    }

    /// `len` bytes at `gpa`, if one window holds all of them.
    pub fn range(&self, gpa: u64, len: usize) -> Option<Region<'a>> {
        self.windows().find_map(|w| {
            let offset = gpa.checked_sub(w.first_gpn.checked_mul(PAGE_SIZE)?)?;
            w.region.subregion(usize::try_from(offset).ok()?, len).ok()
        })
    }

    /// The one window holding every page of `gpns`; `None` when a page is outside
    /// every window or the pages straddle two (a ring must be one mapping).
    pub fn place(&self, gpns: &[u64]) -> Option<Placement<'a>> {
        let first = *gpns.first()?;
        let w = self.windows().find(|w| w.index_of(first).is_some())?;
        gpns.iter()
            .all(|&gpn| w.index_of(gpn).is_some())
            .then_some(Placement {
                region: w.region,
                class: w.class,
                first_gpn: w.first_gpn,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;

    fn ram(pages: usize) -> Vec<AtomicU64> {
        (0..pages * PAGE / 8).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn pages_resolve_to_their_window_and_class() {
        let (a, b) = (ram(4), ram(2));
        let mut m = GuestMemory::new();
        m.add(
            0x10_0000,
            Region::from_atomics(&a, Perms::RW),
            GpaClass::Private,
        )
        .unwrap();
        m.add(
            1 << 36,
            Region::from_atomics(&b, Perms::RW),
            GpaClass::Shared,
        )
        .unwrap();
        for (gpn, expect) in [
            (0x100, Ok(GpaClass::Private)),
            (0x103, Ok(GpaClass::Private)),
            (0x104, Err(NotGranted { gpn: 0x104 })),
            (0xff, Err(NotGranted { gpn: 0xff })),
            ((1 << 36) / PAGE_SIZE + 1, Ok(GpaClass::Shared)),
            (
                (1 << 36) / PAGE_SIZE + 2,
                Err(NotGranted {
                    gpn: (1 << 36) / PAGE_SIZE + 2,
                }),
            ),
        ] {
            assert_eq!(m.page(gpn).map(|p| p.class), expect, "gpn {gpn:#x}");
        }
        // The page is that page of the region, not the first.
        m.page(0x102).unwrap().region.write_bytes(8, &[7]).unwrap();
        let mut got = [0u8];
        Region::from_atomics(&a, Perms::RW)
            .read_bytes(2 * PAGE + 8, &mut got)
            .unwrap();
        assert_eq!(got, [7]);
        assert!(m.range(0x10_0000 + 3 * PAGE_SIZE, PAGE).is_some());
        assert!(m.range(0x10_0000 + 3 * PAGE_SIZE, PAGE + 1).is_none());
        assert!(m.range(u64::MAX, 1).is_none());
    }

    #[test]
    fn a_placement_is_one_window() {
        let (a, b) = (ram(4), ram(4));
        let mut m = GuestMemory::new();
        m.add(0, Region::from_atomics(&a, Perms::RW), GpaClass::Private)
            .unwrap();
        m.add(
            0x10_000,
            Region::from_atomics(&b, Perms::RW),
            GpaClass::Shared,
        )
        .unwrap();
        let p = m.place(&[3, 1, 2]).unwrap();
        assert_eq!((p.class, p.page_index(3)), (GpaClass::Private, 3));
        let p = m.place(&[0x11, 0x10]).unwrap();
        assert_eq!((p.class, p.page_index(0x11)), (GpaClass::Shared, 1));
        for straddling in [&[3u64, 0x10][..], &[4], &[], &[0x14]] {
            assert!(m.place(straddling).is_none(), "{straddling:?}");
        }
    }

    #[test]
    fn bad_layouts_are_refused() {
        let a = ram(2);
        let r = Region::from_atomics(&a, Perms::RW);
        let mut m = GuestMemory::private(0x2000, r).unwrap();
        for (gpa, region, err) in [
            (0x2001, r, LayoutError::NotPageAligned),
            (0, r.subregion(0, 100).unwrap(), LayoutError::NotPageAligned),
            (0x3000, r, LayoutError::Overlap),
            (0x1000, r, LayoutError::Overlap),
            (u64::MAX - 0xfff, r, LayoutError::Overlap),
        ] {
            assert_eq!(m.add(gpa, region, GpaClass::Private), Err(err), "{gpa:#x}");
        }
        for i in 1..MAX_WINDOWS as u64 {
            m.add(i * 0x10_0000, r, GpaClass::Shared).unwrap();
        }
        assert_eq!(
            m.add(0x100_0000, r, GpaClass::Shared),
            Err(LayoutError::Full)
        );
    }
}
