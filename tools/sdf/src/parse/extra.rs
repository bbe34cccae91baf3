//! The elements Microkit added beyond the original PD/region/channel core: the three
//! forms of `<irq>`, x86 `<ioport>`, `<cspace>` cap maps, `<io_address_space>` and the
//! `<domains>` scheduler. Same attribute names, number grammar and defaults as
//! Microkit's tool; whether `build` can use them is decided in `buildable`.

use roxmltree::Node;

use super::{narrow, Attrs, Parser};
use crate::diag::ErrorKind;
use crate::limits::*;
use crate::model::*;
use crate::num::{parse_decimal, parse_quantity};

pub(crate) const IOPORT_ATTRS: &[&str] = &["id", "setvar_id", "setvar_addr", "addr", "size"];
pub(crate) const IO_SPACE_ATTRS: &[&str] = &["name", "peripheral_id", "domain_id"];
pub(crate) const IOMAP_ATTRS: &[&str] = &["mr", "iovaddr", "perms"];
const LINE_IRQ_ATTRS: &[&str] = &["irq", "id", "setvar_id", "trigger"];
const IOAPIC_IRQ_ATTRS: &[&str] = &[
    "id",
    "setvar_id",
    "ioapic",
    "pin",
    "trigger",
    "polarity",
    "vector",
];
const MSI_IRQ_ATTRS: &[&str] = &["id", "setvar_id", "pcidev", "handle", "vector"];

/// seL4 x86 hands user irqs vectors 0..=107 (irq_user_max - irq_user_min).
pub const MAX_IRQ_VECTOR: u64 = 107;
/// Cap slots 1..128 of a PD's user cspace; slot 0 holds Microkit's own CNode.
pub const MAX_CAP_SLOT: u64 = 127;
/// The largest I/O virtual address Microkit's x86 IOMMU tables reach (39 bits, three
/// levels).
pub const MAX_IOVA: u64 = (1 << 39) - 1;

/// `bus:device.function` in hex, each part within PCI's limits.
pub(crate) fn parse_pci(s: &str) -> Option<PciDevice> {
    let (bus, rest) = s.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    let part = |v: &str, max: u8| u8::from_str_radix(v.trim(), 16).ok().filter(|&n| n <= max);
    Some(PciDevice {
        bus: part(bus, 255)?,
        device: part(device, 31)?,
        function: part(function, 7)?,
    })
}

impl Parser<'_> {
    /// An attribute that must be one of a few words.
    fn word(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        words: &[&str],
    ) -> Option<Option<usize>> {
        let v = self.optional(at, name)?;
        match words.iter().position(|w| *w == v) {
            Some(i) => Some(Some(i)),
            None => {
                at.ok = false;
                let span = self.attr_span(at, name);
                let kind = ErrorKind::InvalidValue {
                    attribute: name.into(),
                    value: v.into(),
                    expected: format!("one of {}", words.join(", ")),
                };
                self.error(span, kind);
                Some(None)
            }
        }
    }

    /// `<irq>` in Microkit's three forms, told apart as Microkit does: `pin=` is an
    /// IOAPIC line, `pcidev=` an MSI, otherwise `irq=` is required.
    pub(super) fn irq(&mut self, node: Node) -> Option<Irq> {
        let form = if node.attribute("pin").is_some() {
            IOAPIC_IRQ_ATTRS
        } else if node.attribute("pcidev").is_some() {
            MSI_IRQ_ATTRS
        } else {
            LINE_IRQ_ATTRS
        };
        let mut at = self.attrs(node, form);
        let id = self.decimal(&mut at, "id", MAX_CHANNEL_ID, None);
        let setvar_id = self.optional(&at, "setvar_id").map(String::from);
        let trigger = match self.optional(&at, "trigger") {
            None | Some("level") => Some(IrqTrigger::Level),
            Some("edge") => Some(IrqTrigger::Edge),
            Some(other) => {
                at.ok = false;
                let span = self.attr_span(&at, "trigger");
                let kind = ErrorKind::InvalidTrigger {
                    value: other.into(),
                };
                self.error(span, kind);
                None
            }
        };
        let source = if form == IOAPIC_IRQ_ATTRS {
            let ioapic = self.decimal(&mut at, "ioapic", u64::MAX, Some(0));
            let pin = self.decimal(&mut at, "pin", u64::MAX, None);
            let polarity_low = match self.word(&mut at, "polarity", &["low", "high"]) {
                None | Some(Some(1)) => Some(false),
                Some(Some(_)) => Some(true),
                Some(None) => None,
            };
            let vector = self.decimal(&mut at, "vector", MAX_IRQ_VECTOR, None);
            match (ioapic, pin, polarity_low, vector) {
                (Some(ioapic), Some(pin), Some(polarity_low), Some(vector)) => {
                    Some(IrqSource::Ioapic {
                        ioapic,
                        pin,
                        polarity_low,
                        vector,
                    })
                }
                _ => None,
            }
        } else if form == MSI_IRQ_ATTRS {
            let pcidev = self.optional(&at, "pcidev").unwrap_or_default();
            let pcidev = match parse_pci(pcidev) {
                Some(dev) => Some(dev),
                None => {
                    at.ok = false;
                    let span = self.attr_span(&at, "pcidev");
                    let kind = ErrorKind::InvalidValue {
                        attribute: "pcidev".into(),
                        value: pcidev.into(),
                        expected: "a PCI address bus:device.function in hex, e.g. 0:1f.3".into(),
                    };
                    self.error(span, kind);
                    None
                }
            };
            let handle = self.decimal(&mut at, "handle", u64::MAX, None);
            let vector = self.decimal(&mut at, "vector", MAX_IRQ_VECTOR, None);
            match (pcidev, handle, vector) {
                (Some(pcidev), Some(handle), Some(vector)) => Some(IrqSource::Msi {
                    pcidev,
                    handle,
                    vector,
                }),
                _ => None,
            }
        } else {
            Some(IrqSource::Line)
        };
        let irq = match source {
            Some(IrqSource::Line) => self.decimal(&mut at, "irq", u64::MAX, None),
            Some(IrqSource::Ioapic { vector, .. } | IrqSource::Msi { vector, .. }) => Some(vector),
            None => None,
        };
        let leaf = self.no_children(node);
        match (irq, id, trigger, source) {
            (Some(irq), Some(id), Some(trigger), Some(source)) if at.ok && leaf => Some(Irq {
                irq,
                id: narrow(id),
                trigger,
                source,
                setvar_id,
                span: at.span,
            }),
            _ => None,
        }
    }

    pub(super) fn ioport(&mut self, node: Node) -> Option<IoPort> {
        let mut at = self.attrs(node, IOPORT_ATTRS);
        let id = self.decimal(&mut at, "id", MAX_CHANNEL_ID, None);
        let addr = self.quantity(&mut at, "addr", None);
        let size = match self.optional(&at, "size") {
            Some(v) => match self.number(&mut at, "size", v, parse_decimal, u64::MAX) {
                Some(0) => {
                    at.ok = false;
                    let span = self.attr_span(&at, "size");
                    let kind = ErrorKind::OutOfRange {
                        attribute: "size".into(),
                        value: 0,
                        min: 1,
                        max: u64::MAX,
                    };
                    self.error(span, kind);
                    None
                }
                other => other,
            },
            None => {
                self.required(&mut at, "size");
                None
            }
        };
        let setvar_id = self.optional(&at, "setvar_id").map(String::from);
        let setvar_addr = self.optional(&at, "setvar_addr").map(String::from);
        let leaf = self.no_children(node);
        match (id, addr, size) {
            (Some(id), Some(addr), Some(size)) if at.ok && leaf => Some(IoPort {
                id: narrow(id),
                addr,
                size,
                setvar_id,
                setvar_addr,
                span: at.span,
            }),
            _ => None,
        }
    }

    /// Appends the cap maps of one `<cspace>`; false if any was malformed.
    pub(super) fn cspace(&mut self, node: Node, out: &mut Vec<CapMap>) -> bool {
        let at = self.attrs(node, &[]);
        let mut ok = at.ok;
        for child in self.elements(node) {
            let kind = match super::Parser::name_of(child).as_str() {
                "cap_tcb" => CapKind::Tcb,
                "cap_sc" => CapKind::Sc,
                "cap_vspace" => CapKind::VSpace,
                _ => {
                    self.unexpected_element(child, node);
                    ok = false;
                    continue;
                }
            };
            let mut at = self.attrs(child, &["slot", "pd"]);
            let pd = self.required(&mut at, "pd");
            let slot = match self.optional(&at, "slot") {
                Some(v) => match parse_quantity(v) {
                    // Slot 0 is Microkit's own CNode.
                    Ok(slot) if (1..=MAX_CAP_SLOT).contains(&slot) => Some(slot),
                    Ok(slot) => {
                        at.ok = false;
                        let span = self.attr_span(&at, "slot");
                        let kind = ErrorKind::OutOfRange {
                            attribute: "slot".into(),
                            value: slot,
                            min: 1,
                            max: MAX_CAP_SLOT,
                        };
                        self.error(span, kind);
                        None
                    }
                    Err(_) => self.number(&mut at, "slot", v, parse_quantity, MAX_CAP_SLOT),
                },
                None => {
                    self.required(&mut at, "slot");
                    None
                }
            };
            let leaf = self.no_children(child);
            match (pd, slot) {
                (Some(pd), Some(slot)) if at.ok && leaf => out.push(CapMap {
                    kind,
                    slot,
                    pd: pd.into(),
                    span: at.span,
                }),
                _ => ok = false,
            }
        }
        ok
    }

    pub(super) fn io_address_space(&mut self, node: Node) -> Option<IoAddressSpace> {
        let mut at = self.attrs(node, IO_SPACE_ATTRS);
        let name = self.required(&mut at, "name");
        let domain_id = self.quantity(&mut at, "domain_id", None);
        let peripheral_id = match self.required(&mut at, "peripheral_id") {
            Some(v) => match parse_pci(v) {
                Some(dev) => Some(dev),
                None => {
                    at.ok = false;
                    let span = self.attr_span(&at, "peripheral_id");
                    let kind = ErrorKind::InvalidValue {
                        attribute: "peripheral_id".into(),
                        value: v.into(),
                        expected: "a PCI address bus:device.function in hex, e.g. 0:4.0".into(),
                    };
                    self.error(span, kind);
                    None
                }
            },
            None => None,
        };
        let mut iomaps = Vec::new();
        let mut ok = at.ok;
        for child in self.elements(node) {
            if super::Parser::name_of(child) != "iomap" {
                self.unexpected_element(child, node);
                ok = false;
                continue;
            }
            match self.iomap(child) {
                Some(m) => iomaps.push(m),
                None => ok = false,
            }
        }
        match (name, domain_id, peripheral_id) {
            (Some(name), Some(domain_id), Some(peripheral_id)) if ok => Some(IoAddressSpace {
                name: name.into(),
                peripheral_id,
                domain_id,
                iomaps,
                span: at.span,
            }),
            _ => None,
        }
    }

    fn iomap(&mut self, node: Node) -> Option<IoMap> {
        let mut at = self.attrs(node, IOMAP_ATTRS);
        let mr = self.required(&mut at, "mr");
        let iovaddr = self.bounded(&mut at, "iovaddr", MAX_IOVA, None);
        let perms = match self.optional(&at, "perms") {
            None => Some(Perms {
                read: true,
                write: true,
                execute: false,
            }),
            Some(s) => {
                let mut p = Perms::default();
                let valid = s.chars().all(|c| match c {
                    'r' => {
                        p.read = true;
                        true
                    }
                    'w' => {
                        p.write = true;
                        true
                    }
                    _ => false,
                }) && (p.read || p.write);
                if valid {
                    Some(p)
                } else {
                    at.ok = false;
                    let span = self.attr_span(&at, "perms");
                    let kind = ErrorKind::InvalidValue {
                        attribute: "perms".into(),
                        value: s.into(),
                        expected: "\"r\", \"w\" or \"rw\" (a device cannot execute)".into(),
                    };
                    self.error(span, kind);
                    None
                }
            }
        };
        let leaf = self.no_children(node);
        match (mr, iovaddr, perms) {
            (Some(mr), Some(iovaddr), Some(perms)) if at.ok && leaf => Some(IoMap {
                mr: mr.into(),
                iovaddr,
                perms,
                span: at.span,
            }),
            _ => None,
        }
    }

    pub(super) fn domains(&mut self, node: Node) -> Option<Domains> {
        let at = self.attrs(node, &[]);
        let mut ok = at.ok;
        let mut domains = Vec::new();
        let mut schedule = Vec::new();
        let mut schedule_span: Option<crate::model::Span> = None;
        let (mut start_index, mut index_shift) = (None, None);
        for child in self.elements(node) {
            match super::Parser::name_of(child).as_str() {
                "domain" => {
                    let mut dat = self.attrs(child, &["name", "id"]);
                    let name = self.required(&mut dat, "name");
                    let id = match self.optional(&dat, "id") {
                        Some(v) => self
                            .number(&mut dat, "id", v, parse_quantity, u64::from(u8::MAX))
                            .map(Some),
                        None => Some(None),
                    };
                    let leaf = self.no_children(child);
                    match (name, id) {
                        (Some(name), Some(id)) if dat.ok && leaf => domains.push(Domain {
                            name: name.into(),
                            id,
                            span: dat.span,
                        }),
                        _ => ok = false,
                    }
                }
                "domain_schedule" => {
                    let span = self.node_span(child);
                    if let Some(first) = schedule_span {
                        let kind = ErrorKind::DuplicateElement {
                            element: "domain_schedule".into(),
                            first,
                        };
                        self.error(span, kind);
                        ok = false;
                        continue;
                    }
                    schedule_span = Some(span);
                    let mut sat = self.attrs(child, &["index_shift", "start_index"]);
                    start_index = match self.optional(&sat, "start_index") {
                        Some(v) => {
                            self.number(&mut sat, "start_index", v, parse_quantity, u64::MAX)
                        }
                        None => None,
                    };
                    index_shift = match self.optional(&sat, "index_shift") {
                        Some(v) => {
                            self.number(&mut sat, "index_shift", v, parse_quantity, u64::MAX)
                        }
                        None => None,
                    };
                    let Some(len) = self.schedule(child, &mut schedule) else {
                        ok = false;
                        continue;
                    };
                    // Microkit starts at index 0 when none is given, so an empty
                    // schedule is refused as well.
                    let start = start_index.unwrap_or(0);
                    if sat.ok && start >= len {
                        let kind = ErrorKind::InvalidValue {
                            attribute: "start_index".into(),
                            value: start.to_string(),
                            expected: format!(
                                "below the number of schedule entries ({len}, end markers included)"
                            ),
                        };
                        let span = self.attr_span(&sat, "start_index");
                        self.error(span, kind);
                    }
                    ok &= sat.ok;
                }
                _ => {
                    self.unexpected_element(child, node);
                    ok = false;
                }
            }
        }
        // Kept even when part of it is broken (that error is out already): PDs naming
        // a domain must not also be told that no <domains> exists.
        let _ = ok;
        Some(Domains {
            domains,
            schedule,
            start_index,
            index_shift,
            span: at.span,
        })
    }

    /// The schedule's length as seL4 sees it (end markers count), None if broken.
    fn schedule(&mut self, node: Node, out: &mut Vec<ScheduleEntry>) -> Option<u64> {
        let mut ok = true;
        let mut len = 0u64;
        for child in self.elements(node) {
            match super::Parser::name_of(child).as_str() {
                "schedule_entry" => {
                    len += 1;
                    let mut at = self.attrs(child, &["domain", "duration"]);
                    let domain = self.required(&mut at, "domain");
                    let duration = self.required(&mut at, "duration");
                    let parsed = duration.and_then(|d| {
                        let (value, unit) = d.split_once(' ')?;
                        let unit = match unit {
                            "us" => DurationUnit::Us,
                            "ticks" => DurationUnit::Ticks,
                            _ => return None,
                        };
                        parse_quantity(value)
                            .ok()
                            .filter(|&v| v != 0)
                            .map(|v| (v, unit))
                    });
                    if let (Some(d), None) = (duration, parsed) {
                        at.ok = false;
                        let span = self.attr_span(&at, "duration");
                        let kind = ErrorKind::InvalidValue {
                            attribute: "duration".into(),
                            value: d.into(),
                            expected:
                                "a non-zero number and a unit, e.g. \"1000 us\" or \"5 ticks\""
                                    .into(),
                        };
                        self.error(span, kind);
                    }
                    let leaf = self.no_children(child);
                    match (domain, parsed) {
                        (Some(domain), Some((duration, unit))) if at.ok && leaf => {
                            out.push(ScheduleEntry {
                                domain: domain.into(),
                                duration,
                                unit,
                                span: at.span,
                            })
                        }
                        _ => ok = false,
                    }
                }
                "schedule_end_marker" => {
                    len += 1;
                    let at = self.attrs(child, &[]);
                    ok &= at.ok && self.no_children(child);
                }
                _ => {
                    self.unexpected_element(child, node);
                    ok = false;
                }
            }
        }
        ok.then_some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_pci;

    #[test]
    fn pci_addresses() {
        let dev = parse_pci("0:1f.3").unwrap_or_else(|| panic!("valid"));
        assert_eq!((dev.bus, dev.device, dev.function), (0, 0x1f, 3));
        assert_eq!(dev.to_string(), "0:1f.3");
        for bad in [
            "", "0", "0:1", "0:20.0", "0:1.8", "100:0.0", "g:0.0", "0:0.0.0", "-1:0.0",
        ] {
            assert!(parse_pci(bad).is_none(), "{bad}");
        }
    }
}
