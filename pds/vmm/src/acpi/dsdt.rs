//! The DSDT: the VMBus device Linux's hv_vmbus binds to, and `\_S5` for power-off.
//!
//! ```text
//! Scope (\_SB) {
//!     Device (VMBS) {
//!         Name (_HID, "VMBUS")
//!         Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { IRQNoFlags () {5} })
//!     }
//! }
//! Name (\_S5, Package () { 5, 5, 0, 0 })
//! ```
//! hv_vmbus (drivers/hv/vmbus_drv.c, vmbus_acpi_add) walks `_CRS` and fails the
//! probe if it is missing; it takes only address-space descriptors (MMIO windows
//! for synthetic PCI and video, which we do not offer) and ignores an IRQ
//! descriptor, so IRQ 5 is there only as on Hyper-V's own VMBS.

use alloc::vec::Vec;

use super::aml::{buffer, device, integer, name, package, scope, string};
use super::sdt::table;
use super::S5_SLEEP_TYPE;

/// DSDT revision 2: integers are 64-bit.
const REVISION: u8 = 2;
/// IRQ descriptor, 2-byte form (tag 0x22), mask for IRQ 5.
const IRQ5_NO_FLAGS: [u8; 3] = [0x22, 1 << 5, 0];
/// End tag with a zero checksum ("treated as correct").
const END_TAG: [u8; 2] = [0x79, 0];

fn vmbus_device() -> Vec<u8> {
    let mut crs = IRQ5_NO_FLAGS.to_vec();
    crs.extend_from_slice(&END_TAG);
    let mut body = name(b"_HID", &string("VMBUS"));
    body.extend(name(b"_UID", &integer(0)));
    body.extend(name(b"_CRS", &buffer(&crs)));
    device(b"VMBS", &body)
}

/// `\_S5`: SLP_TYPa, SLP_TYPb and two reserved values. With a hardware-reduced
/// FADT only SLP_TYPa matters: Linux writes it to the sleep control register.
fn s5() -> Vec<u8> {
    let typ = u64::from(S5_SLEEP_TYPE);
    name(
        b"_S5_",
        &package(&[integer(typ), integer(typ), integer(0), integer(0)]),
    )
}

pub(crate) fn dsdt() -> Vec<u8> {
    // At the DSDT's top level a bare name is a root name: `_SB_` is `\_SB_`, as
    // iasl itself encodes it.
    let mut aml = scope(b"_SB_", &vmbus_device());
    aml.extend(s5());
    table(b"DSDT", REVISION, &aml)
}
