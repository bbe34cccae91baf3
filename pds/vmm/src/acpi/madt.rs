//! The MADT (signature "APIC"): one Local x2APIC per vCPU, the IOAPIC, and the two
//! ISA interrupt source overrides a PC platform has.

use alloc::vec::Vec;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

use super::sdt::table;
use crate::boot::layout::{IOAPIC_GPA, LAPIC_GPA};

/// MADT revision 5 (ACPI 6.2+).
const REVISION: u8 = 5;
/// PCAT_COMPAT clear: there is no 8259 pair behind the IOAPIC for Linux to mask
/// or route through (the hardware-reduced FADT says the same).
const FLAGS: u32 = 0;
const TYPE_IOAPIC: u8 = 1;
const TYPE_INTERRUPT_OVERRIDE: u8 = 2;
const TYPE_LOCAL_X2APIC: u8 = 9;
const X2APIC_ENABLED: u32 = 1;
/// MPS INTI flags: polarity bits 0-1 (1 = active high), trigger bits 2-3
/// (1 = edge, 3 = level); 0 = "conforms to the bus" (ISA: edge, high).
const INTI_CONFORMS: u16 = 0;
const INTI_ACTIVE_HIGH_LEVEL: u16 = 0x1 | (0x3 << 2);

#[derive(IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct MadtBody {
    local_apic_address: U32,
    flags: U32,
}

#[derive(IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct LocalX2Apic {
    kind: u8,
    len: u8,
    reserved: U16,
    x2apic_id: U32,
    flags: U32,
    processor_uid: U32,
}

#[derive(IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct IoApic {
    kind: u8,
    len: u8,
    id: u8,
    reserved: u8,
    address: U32,
    gsi_base: U32,
}

#[derive(IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct InterruptOverride {
    kind: u8,
    len: u8,
    bus: u8,
    source: u8,
    gsi: U32,
    flags: U16,
}

const _: () = {
    assert!(core::mem::size_of::<MadtBody>() == 8);
    assert!(core::mem::size_of::<LocalX2Apic>() == 16);
    assert!(core::mem::size_of::<IoApic>() == 12);
    assert!(core::mem::size_of::<InterruptOverride>() == 10);
};

fn iso(source: u8, gsi: u32, flags: u16) -> InterruptOverride {
    InterruptOverride {
        kind: TYPE_INTERRUPT_OVERRIDE,
        len: 10,
        bus: 0,
        source,
        gsi: U32::new(gsi),
        flags: U16::new(flags),
    }
}

/// vCPU `i` has x2APIC id `i` and ACPI processor UID `i`.
pub(crate) fn madt(vcpus: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        MadtBody {
            local_apic_address: U32::new(LAPIC_GPA as u32),
            flags: U32::new(FLAGS),
        }
        .as_bytes(),
    );
    for i in 0..vcpus {
        let entry = LocalX2Apic {
            kind: TYPE_LOCAL_X2APIC,
            len: 16,
            reserved: U16::new(0),
            x2apic_id: U32::new(i),
            flags: U32::new(X2APIC_ENABLED),
            processor_uid: U32::new(i),
        };
        body.extend_from_slice(entry.as_bytes());
    }
    let ioapic = IoApic {
        kind: TYPE_IOAPIC,
        len: 12,
        id: 0,
        reserved: 0,
        address: U32::new(IOAPIC_GPA as u32),
        gsi_base: U32::new(0),
    };
    body.extend_from_slice(ioapic.as_bytes());
    // The PIT's IRQ 0 is wired to pin 2 on every PC since the APIC; IRQ 9 (the
    // SCI on PCs) level, active high, as Hyper-V and QEMU describe it.
    body.extend_from_slice(iso(0, 2, INTI_CONFORMS).as_bytes());
    body.extend_from_slice(iso(9, 9, INTI_ACTIVE_HIGH_LEVEL).as_bytes());
    table(b"APIC", REVISION, &body)
}
