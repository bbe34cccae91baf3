//! Descriptions that must be accepted, and what the model then holds.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;

use sdf::{parse_and_check, IrqTrigger, Perms};

mod common;
use common::FULL;

#[test]
fn full_example_is_accepted_with_defaults_applied() {
    let sys = parse_and_check(FULL, Path::new("sys/system.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sys.memory_regions.len(), 5);
    assert_eq!(sys.all_pds().len(), 5);
    assert_eq!(sys.channels.len(), 2);
    let guests: Vec<_> = sys
        .virtual_machines()
        .into_iter()
        .map(|(vmm, vm)| (vmm.name.as_str(), vm.name.as_str(), vm.vcpus.len()))
        .collect();
    assert_eq!(guests, [("vmm", "linux", 2)]);

    let big = sys.memory_region("big").unwrap();
    assert_eq!(
        (big.size, big.page_size, big.phys_addr),
        (0x40_0000, 0x20_0000, None)
    );
    assert_eq!(
        sys.memory_region("mmio").unwrap().phys_addr,
        Some(0xfec0_0000)
    );
    assert_eq!(sys.memory_region("ring").unwrap().page_size, 0x1000);

    let client = sys.pd("client").unwrap();
    assert_eq!(
        (
            client.priority,
            client.budget,
            client.period,
            client.passive
        ),
        (100, 200, 1000, false)
    );
    assert_eq!(client.stack_size, 0x4000);
    assert_eq!(client.program_image.path, Path::new("client.elf"));
    assert_eq!(
        client.maps[0].perms,
        Perms {
            read: true,
            write: true,
            execute: false
        }
    );
    assert_eq!(client.maps[0].setvar_vaddr.as_deref(), Some("ring_vaddr"));
    assert!(client.maps[0].cached);
    assert!(!client.maps[1].cached);
    assert_eq!(client.setvars[0].region_paddr, "ring");
    assert_eq!((client.span.line, client.span.col), (7, 5));

    let server = sys.pd("server").unwrap();
    assert!(server.passive);
    // Budget defaults to 1000 us and the period to the budget.
    assert_eq!((server.budget, server.period), (1000, 1000));
    assert_eq!(server.stack_size, sdf::limits::DEFAULT_STACK_SIZE);
    assert_eq!(server.irqs[0].trigger, IrqTrigger::Edge);
    assert_eq!(server.irqs[1].trigger, IrqTrigger::Level);
    assert_eq!(server.children[0].child_id, Some(0));
    assert_eq!(sys.pd("child").unwrap().child_id, Some(0));
    assert_eq!(client.child_id, None);

    let ends: Vec<_> = sys
        .channel_ends_of("server")
        .map(|(me, peer)| (me.id, peer.pd.as_str()))
        .collect();
    assert_eq!(ends, vec![(0, "client"), (1, "child")]);
    let [a, b] = &sys.channels[0].ends;
    assert!(a.pp && a.notify && !b.pp && !b.notify);
}

#[test]
fn minimal_system() {
    let text = r#"<system><protection_domain name="a"><program_image path="a.elf"/></protection_domain></system>"#;
    let sys = parse_and_check(text, Path::new("x.xml")).unwrap();
    let a = sys.pd("a").unwrap();
    assert_eq!((a.priority, a.cpu, a.passive), (0, 0, false));
    // No debug system calls unless granted.
    assert!(!a.debug_console && !a.debug_halt);
    // A default map is rw.
    let text = r#"<system><memory_region name="m" size="4096"/>
        <protection_domain name="a"><program_image path="a.elf"/><map mr="m" vaddr="4096"/></protection_domain></system>"#;
    let sys = parse_and_check(text, Path::new("x.xml")).unwrap();
    assert_eq!(sys.pd("a").unwrap().maps[0].perms.to_string(), "rw");
}

#[test]
fn debug_grants_are_per_pd() {
    let text = r#"<system>
        <protection_domain name="a" debug_console="true"><program_image path="a"/></protection_domain>
        <protection_domain name="b" debug_halt="true"><program_image path="b"/>
            <protection_domain name="c" id="1" debug_console="true" debug_halt="true"><program_image path="c"/></protection_domain>
        </protection_domain></system>"#;
    let sys = parse_and_check(text, Path::new("x.xml")).unwrap();
    let grants = |n: &str| {
        let pd = sys.pd(n).unwrap();
        (pd.debug_console, pd.debug_halt)
    };
    assert_eq!(grants("a"), (true, false));
    assert_eq!(grants("b"), (false, true));
    assert_eq!(grants("c"), (true, true));
}

#[test]
fn limits_are_inclusive() {
    // 63 PDs, priority 254, id 61, vaddr range ending exactly at the user end.
    let mut text = String::from(r#"<system><memory_region name="m" size="0x1000"/>"#);
    for i in 0..63 {
        text.push_str(&format!(r#"<protection_domain name="pd{i}" priority="{}"><program_image path="x"/></protection_domain>"#, 254 - i));
    }
    text.push_str(r#"<channel><end pd="pd1" id="61" pp="true"/><end pd="pd0" id="61"/></channel>"#);
    text.push_str(r#"<protection_domain name="last_map" priority="0"><program_image path="x"/>"#);
    text.push_str("</protection_domain></system>");
    // That is 64 PDs: drop one to stay at the limit.
    let text = text.replace(r#"<protection_domain name="pd62" priority="192"><program_image path="x"/></protection_domain>"#, "");
    let text = text.replace(r#"<program_image path="x"/></protection_domain></system>"#, r#"<program_image path="x"/><map mr="m" vaddr="0x7fff_ffff_f000" perms="rx"/></protection_domain></system>"#);
    let sys = parse_and_check(&text, Path::new("x.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sys.all_pds().len(), 63);
    assert_eq!(sys.pd("pd0").unwrap().priority, 254);
}

#[test]
fn bom_crlf_and_entities_are_accepted() {
    let text = "\u{feff}<system>\r\n<protection_domain name=\"a&#x62;\" priority=\"&#49;0\">\r\n<program_image path=\"a.elf\"/></protection_domain>\r\n</system>\r\n";
    let sys = parse_and_check(text, Path::new("x.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sys.pd("ab").unwrap().priority, 10);
}

#[test]
fn model_built_in_code_is_checked_too() {
    let mut sys = parse_and_check(FULL, Path::new("system.xml")).unwrap();
    assert!(sdf::check(&sys).is_ok());
    sys.protection_domains[0].priority = 255;
    sys.protection_domains[0].maps[0].vaddr = 0x2000001;
    let errs = sdf::check(&sys).unwrap_err();
    let kinds: Vec<_> = errs.iter().map(|d| d.kind.clone()).collect();
    assert!(
        kinds.contains(&sdf::ErrorKind::OutOfRange {
            attribute: "priority".into(),
            value: 255,
            min: 0,
            max: 254
        }),
        "{errs}"
    );
    assert!(
        kinds.contains(&sdf::ErrorKind::VaddrNotAligned {
            vaddr: 0x2000001,
            page_size: 0x1000
        }),
        "{errs}"
    );
}

#[test]
fn a_virtual_machine_is_read_into_its_vmm() {
    let sys = parse_and_check(FULL, Path::new("system.xml")).unwrap_or_else(|e| panic!("{e}"));
    let vms = sys.virtual_machines();
    assert_eq!(vms.len(), 1);
    let (vmm, vm) = vms[0];
    assert_eq!(vmm.name, "vmm");
    assert_eq!(
        (vm.name.as_str(), vm.priority, vm.budget, vm.period),
        ("linux", 100, 500, 1000)
    );
    let ids: Vec<_> = vm
        .vcpus
        .iter()
        .map(|v| (v.id, v.cpu, v.setvar_id.as_deref()))
        .collect();
    assert_eq!(ids, vec![(0, None, Some("boot_vcpu")), (1, Some(0), None)]);
    assert_eq!(vm.maps[0].vaddr, 0);
    assert_eq!(vm.maps[0].perms.to_string(), "rwx");
    assert_eq!(
        (vm.maps[1].mr.as_str(), vm.maps[1].vaddr, vm.maps[1].cached),
        ("rom", 0xffff_f000, false)
    );
    assert_eq!((vm.span.line, vm.span.col), (39, 9));
    assert!(sys.pd("helper").unwrap().virtual_machine.is_none());
}

#[test]
fn a_guest_takes_microkit_defaults() {
    let text = r#"<system><protection_domain name="vmm" priority="5"><program_image path="v"/>
        <virtual_machine name="g"><vcpu id="61"/></virtual_machine></protection_domain></system>"#;
    let sys = parse_and_check(text, Path::new("x.xml")).unwrap_or_else(|e| panic!("{e}"));
    let vm = sys.pd("vmm").unwrap().virtual_machine.as_ref().unwrap();
    assert_eq!((vm.priority, vm.budget, vm.period), (0, 1000, 1000));
    assert_eq!(vm.vcpus[0].id, 61);
}

#[test]
fn guest_limits_are_inclusive() {
    // 16 vCPUs, a map ending exactly at 2^48, priority equal to the VMM's.
    let mut text = String::from(
        r#"<system><memory_region name="top" size="0x1000"/>
        <protection_domain name="vmm" priority="7"><program_image path="v"/>
        <virtual_machine name="g" priority="7">"#,
    );
    for i in 0..16 {
        text.push_str(&format!(r#"<vcpu id="{}"/>"#, 45 + i));
    }
    text.push_str(r#"<map mr="top" vaddr="0xffff_ffff_f000"/></virtual_machine></protection_domain></system>"#);
    let sys = parse_and_check(&text, Path::new("x.xml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sys.virtual_machines()[0].1.vcpus.len(), 16);
}

#[test]
fn a_guest_region_may_be_read_and_written_by_pds_and_fixed_regions_may_touch() {
    // Adjacent (not overlapping) fixed ranges, and a PD mapping guest RAM rw.
    let text = r#"<system>
        <memory_region name="keys" size="0x1000" phys_addr="0x8000_0000"/>
        <memory_region name="ram" size="0x1000" phys_addr="0x8000_1000"/>
        <protection_domain name="tpm"><program_image path="t"/><map mr="keys" vaddr="0x1000_0000"/></protection_domain>
        <protection_domain name="vmm"><program_image path="v"/><map mr="ram" vaddr="0x1000_0000" perms="rw"/>
        <virtual_machine name="g"><vcpu id="0"/><map mr="ram" vaddr="0"/></virtual_machine></protection_domain>
    </system>"#;
    parse_and_check(text, Path::new("x.xml")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn guest_rules_hold_for_a_model_built_in_code() {
    let mut sys = parse_and_check(FULL, Path::new("system.xml")).unwrap();
    let vmm = sys.protection_domains.iter_mut().find(|p| p.name == "vmm");
    let vm = vmm.unwrap().virtual_machine.as_mut().unwrap();
    vm.priority = 101;
    vm.maps[1].vaddr = 0x1000;
    let errs = sdf::check(&sys).unwrap_err();
    let kinds: Vec<_> = errs.iter().map(|d| d.kind.clone()).collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, sdf::ErrorKind::VmPriorityAboveVmm { priority: 101, .. })),
        "{errs}"
    );
    assert!(
        kinds.iter().any(|k| matches!(
            k,
            sdf::ErrorKind::MapOverlap {
                space: sdf::MapSpace::Vm(_),
                ..
            }
        )),
        "{errs}"
    );
}
