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

/// GPADLs held at once, and pages per GPADL (a 1 MiB ring and its control page
/// each way fits).
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

#[derive(Clone, Debug, Default)]
pub struct GpadlTable {
    gpadls: BTreeMap<(Relid, GpadlId), Gpadl>,
}

impl GpadlTable {
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
        if words > window.len() / 8 || words > MAX_GPADL_PAGES + usize::from(m.range_count) {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let mut list = vec![0u64; words];
        vsp::read_window(window, &mut list).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let ranges =
            gpa::validate(&list, m.range_count.into()).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let pfns: Vec<u64> = ranges.pfns().collect();
        if pfns.len() > MAX_GPADL_PAGES {
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
