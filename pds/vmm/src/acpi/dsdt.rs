//! The DSDT: the VMBus device Linux's hv_vmbus binds to, COM1, the vTPM when
//! there is one (see `tpm2`), and `\_S5` for power-off.
//!
//! ```text
//! Scope (\_SB) {
//!     Device (VMBS) {
//!         Name (_HID, "VMBUS")
//!         Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { IRQNoFlags () {5} })
//!     }
//! }
//!     Device (COM1) {
//!         Name (_HID, EisaId ("PNP0501"))
//!         Name (_UID, 1)
//!         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8)
//!                                           IRQNoFlags () {4} })
//!     }
//! }
//! Name (\_S5, Package () { 5, 5, 0, 0 })
//! ```
//! hv_vmbus (drivers/hv/vmbus_drv.c, vmbus_acpi_add) walks `_CRS` and fails the
//! probe if it is missing; it takes only address-space descriptors (MMIO windows
//! for synthetic PCI and video, which we do not offer) and ignores an IRQ
//! descriptor, so IRQ 5 is there only as on Hyper-V's own VMBS.
//!
//! COM1 is an ACPI device because the FADT is hardware-reduced: Linux then has no
//! legacy PIC and maps no ISA IRQ on its own, so the 8250 driver's request for IRQ 4
//! of the legacy port fails and the tty never starts (only the polled kernel
//! console works). Described here, the PNP driver gets IRQ 4 as a GSI through the
//! IOAPIC, where the VMM drives COM1's line.

use alloc::vec::Vec;

use super::aml::{buffer, device, integer, name, package, scope, string};
use super::sdt::table;
use super::S5_SLEEP_TYPE;
use crate::devices::tpm_crb::TpmDevice;

/// DSDT revision 2: integers are 64-bit.
const REVISION: u8 = 2;
/// IRQ descriptor, 2-byte form (tag 0x22), mask for IRQ 5.
const IRQ5_NO_FLAGS: [u8; 3] = [0x22, 1 << 5, 0];
/// IRQ descriptor for IRQ 4 (COM1), edge, active high.
const IRQ4_NO_FLAGS: [u8; 3] = [0x22, 1 << 4, 0];
/// I/O port descriptor (tag 0x47): 16-bit decode, 0x3F8..=0x3F8, alignment 1, 8 ports.
const COM1_PORTS: [u8; 8] = [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08];
/// `EisaId ("PNP0501")`, the 16550A-compatible serial port.
const PNP0501: u64 = 0x0105_d041;
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

fn com1_device() -> Vec<u8> {
    let mut crs = COM1_PORTS.to_vec();
    crs.extend_from_slice(&IRQ4_NO_FLAGS);
    crs.extend_from_slice(&END_TAG);
    let mut body = name(b"_HID", &integer(PNP0501));
    body.extend(name(b"_UID", &integer(1)));
    body.extend(name(b"_CRS", &buffer(&crs)));
    device(b"COM1", &body)
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

pub(crate) fn dsdt(tpm: Option<&TpmDevice>) -> Vec<u8> {
    // At the DSDT's top level a bare name is a root name: `_SB_` is `\_SB_`, as
    // iasl itself encodes it.
    let mut devices = vmbus_device();
    devices.extend(com1_device());
    if let Some(tpm) = tpm {
        devices.extend(super::tpm2::device_aml(tpm));
    }
    let mut aml = scope(b"_SB_", &devices);
    aml.extend(s5());
    table(b"DSDT", REVISION, &aml)
}
