//! Cross-references of the Microkit elements beyond the core: domains named by PDs
//! and the schedule, cap maps naming PDs, ioport grants that must not share ports,
//! and each device's IOMMU address space.

use std::collections::HashMap;

use super::{overlaps, Checker, FirstSeen};
use crate::diag::{ErrorKind, NameKind};
use crate::model::*;
use crate::parse::extra::MAX_IOVA;

impl Checker<'_> {
    /// `<domains>` declares each name once (and each explicit id once); with it every
    /// PD names a declared domain, without it none names any.
    pub(super) fn domains(&mut self) {
        let Some(domains) = &self.sys.domains else {
            for pd in self.pds.clone() {
                if let Some(domain) = &pd.domain {
                    let span = self.idx.attr(pd.span, "domain");
                    let kind = ErrorKind::DomainWithoutDomains {
                        domain: domain.clone(),
                    };
                    self.error(span, kind);
                }
            }
            return;
        };
        let mut names = FirstSeen::new();
        let mut ids = FirstSeen::new();
        for d in &domains.domains {
            let span = self.idx.attr(d.span, "name");
            self.unique_name(&mut names, NameKind::Domain, &d.name, span);
            if let Some(id) = d.id {
                let span = self.idx.attr(d.span, "id");
                if let Some(first) = ids.repeat(id, span) {
                    self.error(span, duplicate_value("domain", "id", id, first));
                }
            }
        }
        let unknown = |name: &str| ErrorKind::UnknownName {
            kind: NameKind::Domain,
            name: name.into(),
        };
        for e in &domains.schedule {
            if !names.contains(&e.domain.as_str()) {
                let span = self.idx.attr(e.span, "domain");
                self.error(span, unknown(&e.domain));
            }
        }
        for pd in self.pds.clone() {
            match &pd.domain {
                Some(d) if !names.contains(&d.as_str()) => {
                    let span = self.idx.attr(pd.span, "domain");
                    self.error(span, unknown(d));
                }
                Some(_) => {}
                None => {
                    let kind = ErrorKind::MissingAttribute {
                        attribute: "domain".into(),
                        element: "protection_domain".into(),
                    };
                    self.error(pd.span, kind);
                }
            }
        }
    }

    /// Each cap map names an existing PD, and uses a slot of its cspace once.
    pub(super) fn cap_maps(&mut self) {
        for pd in self.pds.clone() {
            let mut slots = FirstSeen::new();
            for cap in &pd.cap_maps {
                self.known_pd(&cap.pd, self.idx.attr(cap.span, "pd"));
                let span = self.idx.attr(cap.span, "slot");
                if let Some(first) = slots.repeat(cap.slot, span) {
                    let element = match cap.kind {
                        CapKind::Tcb => "cap_tcb",
                        CapKind::Sc => "cap_sc",
                        CapKind::VSpace => "cap_vspace",
                    };
                    self.error(span, duplicate_value(element, "slot", cap.slot, first));
                }
            }
        }
    }

    /// Ioport ids are unique per PD (their own id space, as in Microkit), and a port
    /// is granted to one `<ioport>` in the whole system.
    pub(super) fn ioports(&mut self) {
        let mut all: Vec<(&ProtectionDomain, &IoPort)> = Vec::new();
        for pd in self.pds.clone() {
            let mut ids = FirstSeen::new();
            for port in &pd.ioports {
                let span = self.idx.attr(port.span, "id");
                if let Some(first) = ids.repeat(port.id, span) {
                    self.error(span, duplicate_value("ioport", "id", port.id, first));
                }
                all.push((pd, port));
            }
        }
        all.sort_by_key(|(_, p)| p.span);
        let ranges: Vec<(u64, u64)> = all
            .iter()
            .map(|(_, p)| (p.addr, p.addr.saturating_add(p.size)))
            .collect();
        for (later, earlier) in overlaps(&ranges) {
            let (pd, port) = all[later];
            let (other_pd, other) = all[earlier];
            let kind = ErrorKind::IoportOverlap {
                pd: pd.name.clone(),
                other_pd: other_pd.name.clone(),
                first: self.idx.attr(other.span, "addr"),
            };
            self.error(self.idx.attr(port.span, "addr"), kind);
        }
    }

    /// Names, peripheral ids and domain ids are unique; each device's iomaps name
    /// known small-page regions, are aligned, fit below the IOMMU's reach and do not
    /// overlap each other (maps of different devices may: each has its own space).
    pub(super) fn io_address_spaces(&mut self) {
        let mut names = FirstSeen::new();
        let mut devices: HashMap<PciDevice, Span> = HashMap::new();
        let mut domain_ids: HashMap<u64, Span> = HashMap::new();
        for space in &self.sys.io_address_spaces {
            let span = self.idx.attr(space.span, "name");
            self.unique_name(&mut names, NameKind::IoAddressSpace, &space.name, span);
            let unique = [
                (
                    "peripheral_id",
                    space.peripheral_id.to_string(),
                    devices.insert(space.peripheral_id, space.span),
                ),
                (
                    "domain_id",
                    space.domain_id.to_string(),
                    domain_ids.insert(space.domain_id, space.span),
                ),
            ];
            for (attribute, value, first) in unique {
                if let Some(first) = first {
                    let first = self.idx.attr(first, attribute);
                    let kind = duplicate_value("io_address_space", attribute, value, first);
                    self.error(self.idx.attr(space.span, attribute), kind);
                }
            }
            let mut placed: Vec<&IoMap> = Vec::new();
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for map in &space.iomaps {
                let Some(mr) = self.region(&map.mr, self.idx.attr(map.span, "mr")) else {
                    continue;
                };
                let at = self.idx.attr(map.span, "iovaddr");
                if mr.page_size != crate::limits::DEFAULT_PAGE_SIZE {
                    let kind = ErrorKind::IoMapLargePage {
                        mr: mr.name.clone(),
                    };
                    self.error(self.idx.attr(map.span, "mr"), kind);
                    continue;
                }
                if !map.iovaddr.is_multiple_of(mr.page_size) {
                    let kind = ErrorKind::VaddrNotAligned {
                        vaddr: map.iovaddr,
                        page_size: mr.page_size,
                    };
                    self.error(at, kind);
                }
                match map.iovaddr.checked_add(mr.size) {
                    Some(end) if end <= MAX_IOVA + 1 => {
                        placed.push(map);
                        ranges.push((map.iovaddr, end));
                    }
                    _ => {
                        let kind = ErrorKind::OutOfRange {
                            attribute: "iovaddr".into(),
                            value: map.iovaddr,
                            min: 0,
                            max: (MAX_IOVA + 1).saturating_sub(mr.size),
                        };
                        self.error(at, kind);
                    }
                }
            }
            for (later, earlier) in overlaps(&ranges) {
                let kind = ErrorKind::IoMapOverlap {
                    space: space.name.clone(),
                    mr: placed[later].mr.clone(),
                    other: placed[earlier].mr.clone(),
                    first: placed[earlier].span,
                };
                self.error(placed[later].span, kind);
            }
        }
    }
}

pub(super) fn duplicate_value(
    element: &str,
    attribute: &str,
    value: impl ToString,
    first: Span,
) -> ErrorKind {
    ErrorKind::DuplicateValue {
        element: element.into(),
        attribute: attribute.into(),
        value: value.to_string(),
        first,
    }
}
