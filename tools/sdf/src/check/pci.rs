//! `<pci_device>` grants: a function is granted to one PD in the whole system;
//! each grant lists a BAR once, and each BAR window is a power of two of at
//! least a page, page aligned, in the PD's half of the address space and clear of
//! the PD's maps and its other BAR windows (the kernel maps them like maps).

use super::{extra::duplicate_value, overlaps, Checker, FirstSeen};
use crate::diag::{ErrorKind, MapSpace};
use crate::limits::{DEFAULT_PAGE_SIZE, USER_VADDR_END};
use crate::model::*;

impl Checker<'_> {
    pub(super) fn pci_devices(&mut self) {
        let mut functions = FirstSeen::new();
        for pd in self.pds.clone() {
            for dev in &pd.pci_devices {
                let span = self.idx.attr(dev.span, "bdf");
                if let Some(first) = functions.repeat(dev.bdf, span) {
                    self.error(span, duplicate_value("pci_device", "bdf", dev.bdf, first));
                }
                self.bars(dev);
            }
            self.bar_windows(pd);
        }
    }

    fn bars(&mut self, dev: &PciDeviceGrant) {
        let mut indices = FirstSeen::new();
        for bar in &dev.bars {
            let span = self.idx.attr(bar.span, "index");
            if let Some(first) = indices.repeat(bar.index, span) {
                self.error(span, duplicate_value("bar", "index", bar.index, first));
            }
            if !bar.size.is_power_of_two() || bar.size < DEFAULT_PAGE_SIZE {
                let kind = ErrorKind::InvalidValue {
                    attribute: "size".into(),
                    value: format!("{:#x}", bar.size),
                    expected: "a power of two of at least 0x1000".into(),
                };
                self.error(self.idx.attr(bar.span, "size"), kind);
            }
            let vaddr_span = self.idx.attr(bar.span, "vaddr");
            if !bar.vaddr.is_multiple_of(DEFAULT_PAGE_SIZE) {
                let kind = ErrorKind::VaddrNotAligned {
                    vaddr: bar.vaddr,
                    page_size: DEFAULT_PAGE_SIZE,
                };
                self.error(vaddr_span, kind);
            }
            if bar
                .vaddr
                .checked_add(bar.size)
                .is_none_or(|e| e > USER_VADDR_END)
            {
                let kind = ErrorKind::VaddrOutOfRange {
                    vaddr: bar.vaddr,
                    size: bar.size,
                };
                self.error(vaddr_span, kind);
            }
        }
    }

    /// BAR windows against the PD's maps and each other, reported at the BAR.
    fn bar_windows(&mut self, pd: &ProtectionDomain) {
        let mut names = Vec::new();
        let mut spans = Vec::new();
        let mut ranges = Vec::new();
        for m in &pd.maps {
            if let Some(mr) = self.mr(&m.mr) {
                names.push(m.mr.clone());
                spans.push(m.span);
                ranges.push((m.vaddr, m.vaddr.saturating_add(mr.size)));
            }
        }
        let first_bar = ranges.len();
        for dev in &pd.pci_devices {
            for bar in &dev.bars {
                names.push(format!("BAR {} of PCI {}", bar.index, dev.bdf));
                spans.push(bar.span);
                ranges.push((bar.vaddr, bar.vaddr.saturating_add(bar.size)));
            }
        }
        for (later, earlier) in overlaps(&ranges) {
            // Map against map is `address_space`'s to report.
            let (bar, other) = if later >= first_bar {
                (later, earlier)
            } else if earlier >= first_bar {
                (earlier, later)
            } else {
                continue;
            };
            let ((start, end), (other_start, other_end)) = (ranges[bar], ranges[other]);
            let kind = ErrorKind::MapOverlap {
                space: MapSpace::Pd(pd.name.clone()),
                mr: names[bar].clone(),
                other: names[other].clone(),
                start,
                end,
                other_start,
                other_end,
                first: spans[other],
            };
            self.error(self.idx.attr(spans[bar], "vaddr"), kind);
        }
    }
}
