//! `<pci_device>` grants: what parses into the model, and each mistake with its
//! exact position and error (one per description, no cascades).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use sdf::{parse_and_check, ErrorKind, MapSpace, PciDevice, Span};

/// A driver PD (a DMA map at 0x2000000, channel 1 to a client) granted `grant`,
/// and `other` inside a second PD. The grant starts on line 5.
fn doc(grant: &str, other: &str) -> String {
    format!(
        r#"<system>
    <memory_region name="dma" size="0x10000" />
    <protection_domain name="driver" priority="150">
        <program_image path="d.elf" />
{grant}
        <map mr="dma" vaddr="0x2000000" perms="rw" />
    </protection_domain>
    <protection_domain name="client" priority="100">
        <program_image path="c.elf" />
{other}
    </protection_domain>
    <channel><end pd="driver" id="1" /><end pd="client" id="1" /></channel>
</system>"#
    )
}

const BLK: &str = r#"<pci_device id="3" bdf="0:5.0" vendor="0x1af4" device="0x1042">
            <bar index="4" vaddr="0x3000000" size="0x4000" setvar_vaddr="regs" />
        </pci_device>"#;

#[test]
fn a_grant_parses_into_the_model() {
    let system = parse_and_check(&doc(BLK, ""), Path::new("t.xml")).unwrap();
    let dev = &system.pd("driver").unwrap().pci_devices[0];
    assert_eq!(
        (dev.id, dev.bdf, dev.vendor, dev.device),
        (
            3,
            PciDevice {
                bus: 0,
                device: 5,
                function: 0
            },
            0x1af4,
            0x1042
        )
    );
    let bar = &dev.bars[0];
    assert_eq!((bar.index, bar.vaddr, bar.size), (4, 0x300_0000, 0x4000));
    assert_eq!(bar.setvar_vaddr.as_deref(), Some("regs"));
    assert_eq!(dev.span, Span { line: 5, col: 1 });
}

fn bar(attrs: &str) -> String {
    format!(
        r#"<pci_device id="3" bdf="0:5.0" vendor="0x1af4" device="0x1042"><bar {attrs} /></pci_device>"#
    )
}

struct Case {
    what: &'static str,
    grant: String,
    other: String,
    at: (u32, u32),
    kind: fn(&ErrorKind) -> bool,
}

fn case(
    what: &'static str,
    grant: String,
    other: &str,
    at: (u32, u32),
    kind: fn(&ErrorKind) -> bool,
) -> Case {
    Case {
        what,
        grant,
        other: other.into(),
        at,
        kind,
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use ErrorKind::*;
    let first_bar = r#"index="4" vaddr="0x3000000" size="0x4000""#;
    let twice = format!(r#"<pci_device id="3" bdf="0:5.0" vendor="0x1af4" device="0x1042"><bar {first_bar} /><bar index="4" vaddr="0x4000000" size="0x4000" /></pci_device>"#);
    let claimed = r#"<pci_device id="2" bdf="00:05.0" vendor="0x1af4" device="0x1042" />"#;
    vec![
        case("another PD claims the same function", BLK.into(), claimed, (12, 20), |k| matches!(k, DuplicateValue { attribute, .. } if attribute == "bdf")),
        case("the id is a channel's", BLK.replace(r#"id="3""#, r#"id="1""#), "", (14, 31), |k| matches!(k, DuplicateId { id: 1, .. })),
        case("bad bdf", BLK.replace("0:5.0", "0:20.0"), "", (5, 20), |k| matches!(k, InvalidValue { attribute, .. } if attribute == "bdf")),
        case("vendor past 16 bits", BLK.replace("0x1af4", "0x10000"), "", (5, 32), |k| matches!(k, OutOfRange { .. })),
        case("missing device id", BLK.replace(r#" device="0x1042""#, ""), "", (5, 1), |k| matches!(k, MissingAttribute { attribute, .. } if attribute == "device")),
        case("BAR 6", bar(r#"index="6" vaddr="0x3000000" size="0x4000""#), "", (5, 69), |k| matches!(k, OutOfRange { .. })),
        case("BAR listed twice", twice, "", (5, 118), |k| matches!(k, DuplicateValue { attribute, .. } if attribute == "index")),
        case("window not a power of two", bar(r#"index="4" vaddr="0x3000000" size="0x3000""#), "", (5, 97), |k| matches!(k, InvalidValue { attribute, .. } if attribute == "size")),
        case("window below a page", bar(r#"index="4" vaddr="0x3000000" size="0x800""#), "", (5, 97), |k| matches!(k, InvalidValue { attribute, .. } if attribute == "size")),
        case("window unaligned", bar(r#"index="4" vaddr="0x3000010" size="0x4000""#), "", (5, 79), |k| matches!(k, VaddrNotAligned { vaddr: 0x300_0010, .. })),
        case("window past the user half", bar(r#"index="4" vaddr="0x7fff_ffff_e000" size="0x4000""#), "", (5, 79), |k| matches!(k, VaddrOutOfRange { .. })),
        case("window over the DMA map", bar(r#"index="4" vaddr="0x2008000" size="0x10000""#), "", (5, 79), |k| matches!(k, MapOverlap { space: MapSpace::Pd(pd), other, .. } if pd == "driver" && other == "dma")),
        case("unknown child element", BLK.replace("<bar ", "<map "), "", (6, 13), |k| matches!(k, MisplacedElement { .. } | UnknownElement { .. })),
        case("unknown attribute", BLK.replace(r#"id="3""#, r#"id="3" irq="11""#), "", (5, 20), |k| matches!(k, UnknownAttribute { .. })),
    ]
}

#[test]
fn each_mistake_is_one_error_at_its_attribute() {
    for c in cases() {
        let text = doc(&c.grant, &c.other);
        let diags = parse_and_check(&text, Path::new("t.xml")).unwrap_err();
        assert_eq!(diags.0.len(), 1, "{}: {diags}", c.what);
        let d = &diags.0[0];
        assert!((c.kind)(&d.kind), "{}: {:?}", c.what, d.kind);
        assert_eq!((d.span.line, d.span.col), c.at, "{}: {diags}", c.what);
    }
}

#[test]
fn a_grant_names_one_function_of_one_pd() {
    // Two functions for one PD, each its own id and windows: fine.
    let two = format!(
        "{BLK}\n{}",
        r#"<pci_device id="4" bdf="0:6.0" vendor="0x1af4" device="0x1041"><bar index="4" vaddr="0x3004000" size="0x4000" /></pci_device>"#
    );
    let system = parse_and_check(&doc(&two, ""), Path::new("t.xml")).unwrap();
    assert_eq!(system.pd("driver").unwrap().pci_devices.len(), 2);
    // Their windows may not overlap each other.
    let clash = two.replace("0x3004000", "0x3002000");
    let diags = parse_and_check(&doc(&clash, ""), Path::new("t.xml")).unwrap_err();
    assert_eq!(diags.0.len(), 1, "{diags}");
    assert!(
        matches!(&diags.0[0].kind, ErrorKind::MapOverlap { mr, .. } if mr.starts_with("BAR 4 of PCI 0:6.0"))
    );
}
