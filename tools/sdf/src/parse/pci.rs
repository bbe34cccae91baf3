//! `<pci_device>` and its `<bar>`s: our grant of one PCI function to a driver PD
//! (Microkit has no x86 device grant; its `pcidev=` names a function only for
//! MSI). Syntax only: `check` relates ids, functions and address ranges.

use roxmltree::Node;

use super::{narrow, Parser};
use crate::limits::MAX_CHANNEL_ID;
use crate::model::{PciBar, PciDeviceGrant};
use crate::num::parse_quantity;

pub(crate) const DEVICE_ATTRS: &[&str] = &["id", "bdf", "vendor", "device"];
pub(crate) const BAR_ATTRS: &[&str] = &["index", "vaddr", "size", "setvar_vaddr"];
/// A type 0 header has six BARs.
pub const MAX_BAR_INDEX: u64 = 5;

impl Parser<'_> {
    pub(super) fn pci_device(&mut self, node: Node) -> Option<PciDeviceGrant> {
        let mut at = self.attrs(node, DEVICE_ATTRS);
        let id = self.decimal(&mut at, "id", MAX_CHANNEL_ID, None);
        let bdf = self
            .required(&mut at, "bdf")
            .and_then(|v| self.pci(&mut at, "bdf", v, "0:5.0"));
        let vendor = self.numeric(&mut at, "vendor", parse_quantity, 0..=0xffff, None);
        let device = self.numeric(&mut at, "device", parse_quantity, 0..=0xffff, None);
        let bars = self.children_named(node, "bar", Self::bar);
        if !at.ok {
            return None;
        }
        Some(PciDeviceGrant {
            id: narrow(id?),
            bdf: bdf?,
            vendor: u16::try_from(vendor?).ok()?,
            device: u16::try_from(device?).ok()?,
            bars: bars?,
            span: at.span,
        })
    }

    /// Every child of `node`, each a `name` element that `parse` accepts; None if
    /// any is not (its error is out already).
    pub(super) fn children_named<T>(
        &mut self,
        node: Node,
        name: &str,
        parse: fn(&mut Self, Node) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::new();
        let mut ok = true;
        for child in self.elements(node) {
            if Self::name_of(child) != name {
                self.unexpected_element(child, node);
                ok = false;
                continue;
            }
            match parse(self, child) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn bar(&mut self, node: Node) -> Option<PciBar> {
        let mut at = self.attrs(node, BAR_ATTRS);
        let index = self.decimal(&mut at, "index", MAX_BAR_INDEX, None);
        let vaddr = self.quantity(&mut at, "vaddr", None);
        let size = self.numeric(&mut at, "size", parse_quantity, 1..=u64::MAX, None);
        let setvar_vaddr = self.optional(&at, "setvar_vaddr").map(String::from);
        self.leaf(node, at.ok, || {
            Some(PciBar {
                index: narrow(index?),
                vaddr: vaddr?,
                size: size?,
                setvar_vaddr,
                span: at.span,
            })
        })
    }
}
