//! Guest memory as this PD was granted it: private RAM and, optionally, its
//! host-visible alias. A ring must lie wholly in one of them, and the page numbers a
//! GPADL names are turned into offsets of that one mapping.

use alloc::vec::Vec;

use ipc::Region;
use vmbus_ring::PAGE_SIZE;

/// Which mapping a ring lives in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RingPlacement {
    /// Encrypted guest RAM: only the guest and the paravisor can read it.
    Private,
    /// The host-visible alias (above the vTOM).
    Shared,
}

#[derive(Copy, Clone, Debug)]
struct Window {
    first_pfn: u64,
    pages: u64,
    region: Region<'static>,
}

impl Window {
    fn new(gpa: u64, region: Region<'static>) -> Option<Self> {
        if !gpa.is_multiple_of(PAGE_SIZE as u64) {
            return None;
        }
        Some(Self {
            first_pfn: gpa / PAGE_SIZE as u64,
            pages: (region.len() / PAGE_SIZE) as u64,
            region,
        })
    }

    /// The pages as offsets into this window, if every one lies inside it.
    fn relative(&self, pfns: &[u64]) -> Option<Vec<u64>> {
        pfns.iter()
            .map(|&pfn| {
                pfn.checked_sub(self.first_pfn)
                    .filter(|&rel| rel < self.pages)
            })
            .collect()
    }
}

#[derive(Copy, Clone, Debug)]
pub struct GuestWindows {
    private: Window,
    shared: Option<Window>,
}

impl GuestWindows {
    /// `None` if a GPA is not page aligned.
    pub fn new(
        ram_gpa: u64,
        ram: Region<'static>,
        shared: Option<(u64, Region<'static>)>,
    ) -> Option<Self> {
        Some(Self {
            private: Window::new(ram_gpa, ram)?,
            shared: match shared {
                Some((gpa, region)) => Some(Window::new(gpa, region)?),
                None => None,
            },
        })
    }

    /// Where the pages lie: the mapping and their page offsets in it. `None` when a
    /// page is outside both windows or the pages straddle them.
    pub fn place(&self, pfns: &[u64]) -> Option<(RingPlacement, Region<'static>, Vec<u64>)> {
        if let Some(rel) = self.private.relative(pfns) {
            return Some((RingPlacement::Private, self.private.region, rel));
        }
        let shared = self.shared?;
        let rel = shared.relative(pfns)?;
        Some((RingPlacement::Shared, shared.region, rel))
    }
}
