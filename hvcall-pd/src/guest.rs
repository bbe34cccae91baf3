//! Guest physical memory as hvcall-pd sees it, and which parts of it the host can see.
//!
//! With vTOM (SNP) every GPA at or above the boundary is the shared, host-visible
//! alias; on TDX the shared bit plays the same role. Which is which is decided by
//! `isolation::gpa`, the one classifier; this PD only knows the boundary.

use ipc::Region;
use isolation::guest_memory::LayoutError;
use isolation::GpaClass;

/// The windows this PD was granted (isolation's one window lookup) and where the
/// host-visible range starts.
#[derive(Copy, Clone, Debug, Default)]
pub struct GuestMemory<'a> {
    windows: isolation::GuestMemory<'a>,
    /// GPAs at or above this are host-visible; `None` for a non-isolated guest,
    /// where the host can see everything.
    shared_boundary: Option<u64>,
}

impl<'a> GuestMemory<'a> {
    pub const fn new(shared_boundary: Option<u64>) -> Self {
        Self {
            windows: isolation::GuestMemory::new(),
            shared_boundary,
        }
    }

    /// Adds a window of whole pages, on the side of the boundary its GPA is on.
    pub fn add(&mut self, gpa: u64, region: Region<'a>) -> Result<(), LayoutError> {
        let class = if self.host_visible(gpa, 0) && self.shared_boundary.is_some() {
            GpaClass::Shared
        } else {
            GpaClass::Private
        };
        self.windows.add(gpa, region, class)
    }

    pub fn shared_boundary(&self) -> Option<u64> {
        self.shared_boundary
    }

    /// `len` bytes at `gpa`, if one window holds all of them.
    pub fn range(&self, gpa: u64, len: usize) -> Option<Region<'a>> {
        self.windows.range(gpa, len)
    }

    /// Whether the host may be handed `gpa..gpa+len` (isolation's rule).
    pub fn host_visible(&self, gpa: u64, len: u64) -> bool {
        isolation::gpa::host_visible(self.shared_boundary, gpa, len)
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
        assert!(m.add(0x5000, Region::from_atomics(&a, Perms::RW)).is_ok());
        assert!(m.range(0x5000, 4096).is_some());
        assert!(m.range(0x5FF8, 8).is_some());
        assert!(m.range(0x5FF8, 9).is_none());
        assert!(m.range(0x4FF8, 8).is_none());
        assert!(m.range(u64::MAX, 1).is_none());
    }
}
