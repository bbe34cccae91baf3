//! Microkit compatibility: one fixture per construct Microkit's tool accepts that
//! this checker once refused (tests/microkit/accept), and a corpus of whole system
//! files in the style of Microkit's examples (tests/microkit/corpus). Each must pass
//! `check` in both modes with no warning; what `build` cannot do is refused by
//! `build_refusals`, positioned, naming the construct.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};

use sdf::{build_refusals, parse_and_check_with, ErrorKind, IrqSource, Mode, Prefill, System};

fn load(path: &Path) -> System {
    let text = std::fs::read_to_string(path).unwrap();
    for mode in [Mode::Microkit, Mode::Strict] {
        match parse_and_check_with(&text, path, mode) {
            Ok(c) => assert!(c.warnings.is_empty(), "{}: {}", path.display(), c.warnings),
            Err(e) => panic!("{} ({mode:?}) refused:\n{e}", path.display()),
        }
    }
    parse_and_check_with(&text, path, Mode::Strict)
        .unwrap()
        .system
}

/// The constructs build refuses in `system`, as written in its messages.
fn refused(system: &System) -> Vec<String> {
    match build_refusals(system) {
        Ok(()) => Vec::new(),
        Err(diags) => diags
            .iter()
            .map(|d| {
                assert!(d.span.line > 0, "unpositioned: {d}");
                match &d.kind {
                    ErrorKind::NotBuildable { construct, .. } => construct.clone(),
                    other => panic!("not a build refusal: {other:?}"),
                }
            })
            .collect(),
    }
}

fn accept(name: &str) -> System {
    load(&Path::new("tests/microkit/accept").join(format!("{name}.xml")))
}

#[rustfmt::skip]
const ACCEPTED: &[(&str, &[&str])] = &[
    ("end_setvar_id", &["setvar_id on <end>", "setvar_id on <end>"]),
    ("irq_setvar_id", &["setvar_id on <irq>"]),
    ("map_setvar_size", &["setvar_size"]),
    ("region_name_device_tree", &[]),
    ("hex_numbers", &[]),
    ("ioport", &["<ioport>", "<ioport>"]),
    ("io_address_space", &["<io_address_space>"]),
    ("iomap_overlap_different_devices", &["<io_address_space>", "<io_address_space>"]),
    ("prefill_path_no_size", &["prefill_path", "setvar_prefill_size"]),
    ("prefill_bootinfo_no_size", &["prefill_bootinfo=\"x86_acpi_rsdp\"", "prefill_bootinfo=\"x86_tsc_freq\""]),
    ("cspace", &["<cspace>"]),
    ("domains", &["<domains>", "domain=", "domain="]),
    ("smc", &["smc=\"true\""]),
    ("irq_ioapic", &["<irq pin=> (IOAPIC)", "setvar_id on <irq>", "<irq pin=> (IOAPIC)"]),
    ("irq_msi", &["<irq pcidev=> (MSI)"]),
];

#[test]
fn every_accept_fixture_passes_check_and_build_refuses_what_it_cannot_do() {
    for (name, want) in ACCEPTED {
        let sys = accept(name);
        let mut got = refused(&sys);
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn every_accept_fixture_is_listed() {
    for entry in std::fs::read_dir("tests/microkit/accept").unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            ACCEPTED.iter().any(|(n, _)| *n == stem),
            "{} not listed",
            path.display()
        );
    }
}

#[test]
fn the_model_holds_microkit_values_and_defaults() {
    let hex = accept("hex_numbers");
    let parent = hex.pd("parent").unwrap();
    assert_eq!(
        (parent.priority, parent.budget, parent.period),
        (100, 1000, 2000)
    );
    assert_eq!(parent.stack_size, 0x2000);
    let child = hex.pd("child").unwrap();
    assert_eq!(
        (child.child_id, child.priority, child.cpu),
        (Some(1), 101, 0)
    );
    assert_eq!(parent.virtual_machine.as_ref().unwrap().priority, 16);

    let fill = accept("prefill_path_no_size");
    let mr = fill.memory_region("prefilled").unwrap();
    assert_eq!(mr.prefill, Some(Prefill::Path(PathBuf::from("fill.bin"))));
    assert!(!mr.size_written);
    let map = &fill.pd("mr_prefill").unwrap().maps[0];
    assert_eq!(
        map.setvar_prefill_size.as_deref(),
        Some("filled_mr_data_size")
    );
    // Microkit's default perms: rw.
    assert!(map.perms.read && map.perms.write && !map.perms.execute);

    let bi = accept("prefill_bootinfo_no_size");
    let rsdp = bi.memory_region("rsdp").unwrap();
    assert_eq!((rsdp.size, rsdp.page_size), (0x1000, 0x1000));

    let smc = accept("smc");
    let pd = smc.pd("smc_caller").unwrap();
    assert!(pd.smc && !pd.fpu);
    assert_eq!(
        pd.program_image.path_for_symbols,
        Some(PathBuf::from("arm_smc.debug.elf"))
    );

    let ioapic = accept("irq_ioapic");
    let irqs = &ioapic.pd("serial").unwrap().irqs;
    assert_eq!(
        irqs[1].source,
        IrqSource::Ioapic {
            ioapic: 0,
            pin: 1,
            polarity_low: false,
            vector: 1
        }
    );
    assert_eq!(irqs[0].setvar_id.as_deref(), Some("serial_irq"));
    let msi = accept("irq_msi");
    let IrqSource::Msi {
        pcidev,
        handle,
        vector,
    } = msi.pd("nvme").unwrap().irqs[0].source
    else {
        panic!("not MSI");
    };
    assert_eq!(
        (pcidev.to_string(), handle, vector),
        ("0:1f.2".into(), 0, 40)
    );

    let ports = accept("ioport");
    let port = &ports.pd("serial").unwrap().ioports[0];
    assert_eq!((port.id, port.addr, port.size), (0, 0x3f8, 8));
    assert_eq!(port.setvar_addr.as_deref(), Some("com1_ioport_addr"));

    let doms = accept("domains");
    let d = doms.domains.as_ref().unwrap();
    assert_eq!(d.domains.len(), 3);
    assert_eq!(d.domains[2].id, None);
    assert_eq!(d.schedule[1].duration, 8000);
    assert_eq!(
        doms.pd("emitter").unwrap().domain.as_deref(),
        Some("emitter")
    );

    let ends = accept("end_setvar_id");
    assert_eq!(
        ends.channels[0].ends[1].setvar_id.as_deref(),
        Some("client_ch")
    );
}

#[test]
fn realistic_microkit_systems_pass_check() {
    let mut seen = 0;
    for entry in std::fs::read_dir("tests/microkit/corpus").unwrap() {
        let path = entry.unwrap().path();
        let sys = load(&path);
        assert!(!sys.all_pds().is_empty(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 5, "corpus has {seen} files");
}

/// A self-channel is ours to refuse (policy) but a protected call to oneself is
/// Microkit's error too, so `--microkit` still refuses it.
#[test]
fn self_channel_is_policy_but_self_ppc_is_an_error() {
    let text = r#"<system>
<protection_domain name="a"><program_image path="a"/></protection_domain>
<channel><end pd="a" id="0" pp="true"/><end pd="a" id="1"/></channel>
</system>"#;
    let path = Path::new("self.xml");
    let strict = sdf::parse_and_check(text, path).unwrap_err();
    assert!(
        strict
            .iter()
            .any(|d| matches!(d.kind, ErrorKind::SelfChannel { .. })),
        "{strict}"
    );
    let errors = parse_and_check_with(text, path, Mode::Microkit).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(matches!(
        errors.0[0].kind,
        ErrorKind::PpNotToHigherPriority { .. }
    ));
}
