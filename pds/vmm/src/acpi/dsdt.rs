//! The DSDT: the VMBus device Linux's hv_vmbus binds to, COM1 and COM2, the vTPM
//! when there is one (see `tpm2`), and `\_S5` for power-off.
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
//!     Device (COM2) { ... _UID 2, IO 0x2F8, IRQNoFlags () {3} ... }
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
//! IOAPIC, where the VMM drives COM1's line. COM2 likewise: its ports are the real
//! UART's when the VM has them (linux.xml's `<ioport>`), and the VMM passes its
//! interrupt on to the IOAPIC's pin 3; without the grant the ports exit and read
//! as no UART, and the 8250 driver leaves it alone.

use alloc::vec;
use alloc::vec::Vec;

use super::aml::{buffer, device, integer, name, package, scope, string};
use super::sdt::table;
use super::S5_SLEEP_TYPE;
use crate::devices::tpm_crb::TpmDevice;

/// DSDT revision 2: integers are 64-bit.
const REVISION: u8 = 2;
/// IRQ descriptor, 2-byte form (tag 0x22), mask for IRQ 5.
const IRQ5_NO_FLAGS: [u8; 3] = [0x22, 1 << 5, 0];
/// The PC's first two serial ports: (name, _UID, base port, ISA IRQ).
const COM_PORTS: [(&[u8; 4], u64, u16, u8); 2] = [(b"COM1", 1, 0x3f8, 4), (b"COM2", 2, 0x2f8, 3)];
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

/// A 16550A at `base` (8 ports) on ISA IRQ `irq` (edge, active high).
fn com_device(dev: &[u8; 4], uid: u64, base: u16, irq: u8) -> Vec<u8> {
    let [lo, hi] = base.to_le_bytes();
    // I/O port descriptor (tag 0x47): 16-bit decode, base..=base, alignment 1, 8 ports;
    // IRQ descriptor, 2-byte form (tag 0x22).
    let mut crs = vec![0x47, 0x01, lo, hi, lo, hi, 0x01, 0x08];
    crs.extend_from_slice(&[0x22, (1u16 << irq) as u8, ((1u16 << irq) >> 8) as u8]);
    crs.extend_from_slice(&END_TAG);
    let mut body = name(b"_HID", &integer(PNP0501));
    body.extend(name(b"_UID", &integer(uid)));
    body.extend(name(b"_CRS", &buffer(&crs)));
    device(dev, &body)
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
    for (dev, uid, base, irq) in COM_PORTS {
        devices.extend(com_device(dev, uid, base, irq));
    }
    if let Some(tpm) = tpm {
        devices.extend(super::tpm2::device_aml(tpm));
    }
    let mut aml = scope(b"_SB_", &devices);
    aml.extend(s5());
    table(b"DSDT", REVISION, &aml)
}
