//! The GPADLs vmbus-server handed this VSP: page lists it read from the GPADL
//! window, bounded in number and size so that a guest cannot make the PD hold
//! more, and checked again although vmbus-server validated them (the window is
//! vmbus-server's memory, and this PD acts on the pages).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use ipc::Region;
use vmbus_protocol::gpa;
use vmbus_protocol::status::{
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};
use vmbus_protocol::{GpadlId, Relid};
use vsp_api::{self as vsp, Confidentiality, MapGpadl};

/// GPADLs held at once, and pages per GPADL unless the device asks for another
/// limit (a 1 MiB ring and its control page each way fits).
pub const MAX_GPADLS: usize = 16;
pub const MAX_GPADL_PAGES: usize = 256;

const PAGE_SIZE: u32 = hvdef::HV_PAGE_SIZE as u32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpadl {
    pub pfns: Vec<u64>,
    pub confidentiality: Confidentiality,
    /// Every range is whole pages from offset 0: only such a GPADL can be a ring.
    pub whole_pages: bool,
}

#[derive(Clone, Debug)]
pub struct GpadlTable {
    gpadls: BTreeMap<(Relid, GpadlId), Gpadl>,
    page_limit: usize,
}

impl Default for GpadlTable {
    fn default() -> Self {
        Self::with_page_limit(MAX_GPADL_PAGES)
    }
}

impl GpadlTable {
    /// A table whose GPADLs may each have up to `page_limit` pages (a NIC's
    /// receive buffer is thousands of pages; a disk's ring is a few).
    pub fn with_page_limit(page_limit: usize) -> Self {
        Self {
            gpadls: BTreeMap::new(),
            page_limit,
        }
    }

    pub fn page_limit(&self) -> usize {
        self.page_limit
    }

    pub fn len(&self) -> usize {
        self.gpadls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gpadls.is_empty()
    }

    pub fn get(&self, relid: Relid, gpadl: GpadlId) -> Option<&Gpadl> {
        self.gpadls.get(&(relid, gpadl))
    }

    pub fn remove(&mut self, relid: Relid, gpadl: GpadlId) -> Option<Gpadl> {
        self.gpadls.remove(&(relid, gpadl))
    }

    /// MAP_GPADL: reads the page list from `window`; returns the VMBus status.
    pub fn map(&mut self, window: &Region<'_>, m: &MapGpadl) -> u32 {
        match self.read(window, m) {
            Ok(g) => {
                self.gpadls.insert((m.relid, m.gpadl), g);
                STATUS_SUCCESS
            }
            Err(status) => status,
        }
    }

    fn read(&self, window: &Region<'_>, m: &MapGpadl) -> Result<Gpadl, u32> {
        if self.gpadls.contains_key(&(m.relid, m.gpadl)) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if self.gpadls.len() >= MAX_GPADLS {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let words = m.words as usize;
        if words > window.len() / 8
            || words > self.page_limit.saturating_add(usize::from(m.range_count))
        {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let mut list = vec![0u64; words];
        vsp::read_window(window, &mut list).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let ranges =
            gpa::validate(&list, m.range_count.into()).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let pfns: Vec<u64> = ranges.pfns().collect();
        if pfns.len() > self.page_limit {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let whole_pages = ranges
            .iter()
            .all(|r| r.byte_offset == 0 && r.byte_count.is_multiple_of(PAGE_SIZE));
        Ok(Gpadl {
            pfns,
            confidentiality: m.confidentiality,
            whole_pages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;
    use vmbus_protocol::gpa::range_header;

    fn map(gpadl: u32, range_count: u16, words: u32) -> MapGpadl {
        MapGpadl {
            relid: Relid(1),
            gpadl: GpadlId(gpadl),
            range_count,
            words,
            confidentiality: Confidentiality::NONE,
        }
    }

    #[test]
    fn page_lists_are_checked_before_they_are_kept() {
        let words: Vec<AtomicU64> = (0..512).map(|_| AtomicU64::new(0)).collect();
        let window = Region::from_atomics(&words, Perms::RW);
        let mut table = GpadlTable::default();
        let ring = [range_header(2 * 4096, 0), 7, 8];
        let buffer = [range_header(100, 8), 9];
        let too_big: Vec<u64> = core::iter::once(range_header(257 * 4096, 0))
            .chain(0..257)
            .collect();
        // What, the page list, the call, its status, and whether it may be a ring.
        type Case<'a> = (&'a str, &'a [u64], MapGpadl, u32, Option<bool>);
        let cases: [Case<'_>; 6] = [
            ("a ring", &ring, map(1, 1, 3), STATUS_SUCCESS, Some(true)),
            ("again", &ring, map(1, 1, 3), STATUS_INVALID_PARAMETER, None),
            (
                "a buffer, not a ring",
                &buffer,
                map(2, 1, 2),
                STATUS_SUCCESS,
                Some(false),
            ),
            (
                "fewer pages than its bytes",
                &ring[..2],
                map(3, 1, 2),
                STATUS_INVALID_PARAMETER,
                None,
            ),
            (
                "more words than the window",
                &ring,
                map(4, 1, 513),
                STATUS_INSUFFICIENT_RESOURCES,
                None,
            ),
            (
                "more pages than a GPADL may have",
                &too_big,
                map(5, 1, 258),
                STATUS_INSUFFICIENT_RESOURCES,
                None,
            ),
        ];
        for (what, list, m, status, whole) in cases {
            vsp::write_window(&window, list.iter().copied()).expect("fits");
            assert_eq!(table.map(&window, &m), status, "{what}");
            if let Some(whole) = whole {
                let kept = table.get(m.relid, m.gpadl).map(|g| g.whole_pages);
                assert_eq!(kept, Some(whole), "{what}");
            }
        }
        assert_eq!(
            table.get(Relid(1), GpadlId(1)).map(|g| g.pfns.clone()),
            Some([7, 8].to_vec())
        );
        // The count is bounded.
        vsp::write_window(&window, ring.iter().copied()).expect("fits");
        for id in 10..10 + MAX_GPADLS as u32 {
            table.map(&window, &map(id, 1, 3));
        }
        assert_eq!(table.len(), MAX_GPADLS);
        assert_eq!(
            table.map(&window, &map(99, 1, 3)),
            STATUS_INSUFFICIENT_RESOURCES
        );
        assert!(table.remove(Relid(1), GpadlId(1)).is_some());
        assert_eq!(table.map(&window, &map(99, 1, 3)), STATUS_SUCCESS);
    }

    #[test]
    fn a_device_may_raise_the_page_limit() {
        let words: Vec<AtomicU64> = (0..512).map(|_| AtomicU64::new(0)).collect();
        let window = Region::from_atomics(&words, Perms::RW);
        // Linux's netvsc ring: 128 data pages and a control page each way.
        let linux_ring: Vec<u64> = core::iter::once(range_header(258 * 4096, 0))
            .chain(0..258)
            .collect();
        vsp::write_window(&window, linux_ring.iter().copied()).expect("fits");
        let mut default = GpadlTable::default();
        let mut raised = GpadlTable::with_page_limit(4097);
        let mut lowered = GpadlTable::with_page_limit(2);
        assert_eq!(
            default.map(&window, &map(1, 1, 259)),
            STATUS_INSUFFICIENT_RESOURCES
        );
        assert_eq!(raised.map(&window, &map(1, 1, 259)), STATUS_SUCCESS);
        assert_eq!(
            raised.get(Relid(1), GpadlId(1)).map(|g| g.pfns.len()),
            Some(258)
        );
        assert_eq!(
            lowered.map(&window, &map(1, 1, 259)),
            STATUS_INSUFFICIENT_RESOURCES
        );
    }
}
