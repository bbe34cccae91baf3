//! The elements Microkit added beyond the original PD/region/channel core: the three
//! forms of `<irq>`, x86 `<ioport>`, `<cspace>` cap maps, `<io_address_space>` and the
//! `<domains>` scheduler. Same attribute names, number grammar and defaults as
//! Microkit's tool; whether `build` can use them is decided in `buildable`.

use roxmltree::Node;

use super::{narrow, Attrs, Parser, PermsGrammar};
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
const IOMAP_PERMS: PermsGrammar = PermsGrammar {
    letters: "rw",
    empty_ok: false,
    invalid: |value| ErrorKind::InvalidValue {
        attribute: "perms".into(),
        value: value.into(),
        expected: "\"r\", \"w\" or \"rw\" (a device cannot execute)".into(),
    },
};
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
                let kind = ErrorKind::InvalidValue {
                    attribute: name.into(),
                    value: v.into(),
                    expected: format!("one of {}", words.join(", ")),
                };
                self.reject(at, name, kind);
                Some(None)
            }
        }
    }

    /// A PCI address attribute; `example` goes into the error.
    pub(super) fn pci(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        value: &str,
        example: &str,
    ) -> Option<PciDevice> {
        let dev = parse_pci(value);
        if dev.is_none() {
            let kind = ErrorKind::InvalidValue {
                attribute: name.into(),
                value: value.into(),
                expected: format!("a PCI address bus:device.function in hex, e.g. {example}"),
            };
            self.reject(at, name, kind);
        }
        dev
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
                let kind = ErrorKind::InvalidTrigger {
                    value: other.into(),
                };
                self.reject(&mut at, "trigger", kind);
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
            let pcidev = self.pci(&mut at, "pcidev", pcidev, "0:1f.3");
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
        self.leaf(node, at.ok, || {
            Some(Irq {
                irq: irq?,
                id: narrow(id?),
                trigger: trigger?,
                source: source?,
                setvar_id,
                span: at.span,
            })
        })
    }

    pub(super) fn ioport(&mut self, node: Node) -> Option<IoPort> {
        let mut at = self.attrs(node, IOPORT_ATTRS);
        let id = self.decimal(&mut at, "id", MAX_CHANNEL_ID, None);
        let addr = self.quantity(&mut at, "addr", None);
        let size = self.numeric(&mut at, "size", parse_decimal, 1..=u64::MAX, None);
        let setvar_id = self.optional(&at, "setvar_id").map(String::from);
        let setvar_addr = self.optional(&at, "setvar_addr").map(String::from);
        self.leaf(node, at.ok, || {
            Some(IoPort {
                id: narrow(id?),
                addr: addr?,
                size: size?,
                setvar_id,
                setvar_addr,
                span: at.span,
            })
        })
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
            // Slot 0 is Microkit's own CNode.
            let slot = self.numeric(&mut at, "slot", parse_quantity, 1..=MAX_CAP_SLOT, None);
            let cap = self.leaf(child, at.ok, || {
                Some(CapMap {
                    kind,
                    slot: slot?,
                    pd: pd?.into(),
                    span: at.span,
                })
            });
            ok &= cap.map(|cap| out.push(cap)).is_some();
        }
        ok
    }

    pub(super) fn io_address_space(&mut self, node: Node) -> Option<IoAddressSpace> {
        let mut at = self.attrs(node, IO_SPACE_ATTRS);
        let name = self.required(&mut at, "name");
        let domain_id = self.quantity(&mut at, "domain_id", None);
        let peripheral_id = self
            .required(&mut at, "peripheral_id")
            .and_then(|v| self.pci(&mut at, "peripheral_id", v, "0:4.0"));
        let iomaps = self.children_named(node, "iomap", Self::iomap);
        if !at.ok {
            return None;
        }
        Some(IoAddressSpace {
            name: name?.into(),
            peripheral_id: peripheral_id?,
            domain_id: domain_id?,
            iomaps: iomaps?,
            span: at.span,
        })
    }

    fn iomap(&mut self, node: Node) -> Option<IoMap> {
        let mut at = self.attrs(node, IOMAP_ATTRS);
        let mr = self.required(&mut at, "mr");
        let iovaddr = self.numeric(&mut at, "iovaddr", parse_quantity, 0..=MAX_IOVA, None);
        let perms = self.perms(&mut at, &IOMAP_PERMS);
        self.leaf(node, at.ok, || {
            Some(IoMap {
                mr: mr?.into(),
                iovaddr: iovaddr?,
                perms: perms?,
                span: at.span,
            })
        })
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
                    let id = self.optional_number(&mut dat, "id", parse_quantity, u8::MAX.into());
                    let domain = self.leaf(child, dat.ok, || {
                        Some(Domain {
                            name: name?.into(),
                            id: id?,
                            span: dat.span,
                        })
                    });
                    ok &= domain.map(|d| domains.push(d)).is_some();
                }
                "domain_schedule" => {
                    if !self.single(&mut schedule_span, child) {
                        ok = false;
                        continue;
                    }
                    let mut sat = self.attrs(child, &["index_shift", "start_index"]);
                    start_index = self
                        .optional_number(&mut sat, "start_index", parse_quantity, u64::MAX)
                        .flatten();
                    index_shift = self
                        .optional_number(&mut sat, "index_shift", parse_quantity, u64::MAX)
                        .flatten();
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
                        let kind = ErrorKind::InvalidValue {
                            attribute: "duration".into(),
                            value: d.into(),
                            expected:
                                "a non-zero number and a unit, e.g. \"1000 us\" or \"5 ticks\""
                                    .into(),
                        };
                        self.reject(&mut at, "duration", kind);
                    }
                    let entry = self.leaf(child, at.ok, || {
                        let (duration, unit) = parsed?;
                        Some(ScheduleEntry {
                            domain: domain?.into(),
                            duration,
                            unit,
                            span: at.span,
                        })
                    });
                    ok &= entry.map(|e| out.push(e)).is_some();
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
