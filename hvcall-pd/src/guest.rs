//! Guest physical memory as hvcall-pd sees it, and which parts of it the host can see.
//!
//! With vTOM (SNP) every GPA at or above the boundary is the shared, host-visible
//! alias; on TDX the shared bit plays the same role and is also "every GPA at or above
//! 1 << bit". Anything below is private: the host must never be handed such an
//! address.

use ipc::Region;

/// One contiguous piece of guest RAM this PD was granted.
#[derive(Copy, Clone, Debug)]
struct Window<'a> {
    gpa: u64,
    region: Region<'a>,
}

#[derive(Copy, Clone, Debug, Default)]
pub struct GuestMemory<'a> {
    windows: [Option<Window<'a>>; 2],
    /// GPAs at or above this are host-visible; `None` for a non-isolated guest,
    /// where the host can see everything.
    shared_boundary: Option<u64>,
}

impl<'a> GuestMemory<'a> {
    pub const fn new(shared_boundary: Option<u64>) -> Self {
        Self {
            windows: [None, None],
            shared_boundary,
        }
    }

    /// Adds a window; `false` if both slots are taken.
    pub fn add(&mut self, gpa: u64, region: Region<'a>) -> bool {
        match self.windows.iter_mut().find(|w| w.is_none()) {
            Some(slot) => {
                *slot = Some(Window { gpa, region });
                true
            }
            None => false,
        }
    }

    pub fn shared_boundary(&self) -> Option<u64> {
        self.shared_boundary
    }

    /// `len` bytes at `gpa`, if one window holds all of them.
    pub fn range(&self, gpa: u64, len: usize) -> Option<Region<'a>> {
        self.windows.iter().flatten().find_map(|w| {
            let offset = usize::try_from(gpa.checked_sub(w.gpa)?).ok()?;
            w.region.subregion(offset, len).ok()
        })
    }

    /// Whether the host may be handed `gpa..gpa+len`: all of it lies in the shared
    /// range (and the range does not wrap).
    pub fn host_visible(&self, gpa: u64, len: u64) -> bool {
        if gpa.checked_add(len).is_none() {
            return false;
        }
        match self.shared_boundary {
            None => true,
            Some(boundary) => gpa >= boundary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;

    #[test]
    fn visibility_follows_the_boundary() {
        let m = GuestMemory::new(Some(1 << 40));
        assert!(!m.host_visible(0x1000, 8));
        assert!(
            !m.host_visible((1 << 40) - 8, 8),
            "ends exactly at the boundary"
        );
        assert!(m.host_visible(1 << 40, 256));
        assert!(!m.host_visible(u64::MAX - 4, 8), "wraps");
        assert!(GuestMemory::new(None).host_visible(0, 4096));
    }

    #[test]
    fn ranges_resolve_inside_one_window_only() {
        let a: Vec<AtomicU64> = (0..512).map(|_| AtomicU64::new(0)).collect();
        let mut m = GuestMemory::new(None);
        assert!(m.add(0x5000, Region::from_atomics(&a, Perms::RW)));
        assert!(m.range(0x5000, 4096).is_some());
        assert!(m.range(0x5FF8, 8).is_some());
        assert!(m.range(0x5FF8, 9).is_none());
        assert!(m.range(0x4FF8, 8).is_none());
        assert!(m.range(u64::MAX, 1).is_none());
    }
}
