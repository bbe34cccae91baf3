//! The picture holds what the description says, with the boundary where it belongs.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::dot;

const SMALL: &str = include_str!("small_system.xml");

fn graph(text: &str) -> String {
    let sys = sdf::parse_and_check(text, Path::new("system.xml")).unwrap();
    dot(&sys, "system.xml")
}

#[test]
fn a_small_system_draws_every_node_and_edge() {
    let g = graph(SMALL);
    for want in [
        "digraph system {",
        // PDs with priority and their side of the boundary.
        "\"pd:vmm\" [shape=box, style=\"rounded,bold\", color=red, label=\"PD vmm\\npriority 50\\nguest-facing\\nVMM of linux\\nreaches guest memory: ram rw\"];",
        "\"pd:serial\" [shape=box, style=\"rounded,bold\", color=orange, label=\"PD serial\\npriority 90, passive\\nhost-facing\"];",
        "\"pd:helper\" [shape=box, style=\"rounded,bold\", color=black, label=\"PD helper\\npriority 80\"];",
        // Regions with who maps them, where and how.
        "\"pd:vmm\" -> \"mr:ram\" [arrowhead=none, color=red, label=\"rw at 0x40000000\"];",
        "\"pd:serial\" -> \"mr:ring\" [arrowhead=none, color=gray40, label=\"r at 0x20000000, uncached\"];",
        "\"mr:uart\" [shape=cylinder, color=orange, label=\"uart\\n4 KiB at phys 0xfe000000 (device)\"];",
        // The channel, one edge per direction and kind.
        "\"pd:vmm\" -> \"pd:serial\" [style=solid, penwidth=1.5, label=\"PPC vmm:0 -> serial:1\"];",
        "\"pd:serial\" -> \"pd:vmm\" [style=dashed, label=\"notify serial:1 -> vmm:0\"];",
        // Irq, fault handler, VMM and what the guest sees.
        "\"irq:4\" -> \"pd:serial\" [color=orange, label=\"id 3, level\"];",
        "\"pd:serial\" -> \"pd:helper\" [style=dotted, label=\"faults of child 2\"];",
        "\"pd:vmm\" -> \"vm:linux\" [color=red, style=bold",
        "\"vm:linux\" -> \"mr:ram\" [arrowhead=none, color=red, label=\"rwx at GPA 0x0\"];",
        "label=\"VM linux\\npriority 40\\nvCPUs 0, 1\"",
    ] {
        assert!(g.contains(want), "missing {want} in\n{g}");
    }
    // 4 maps, 1 irq, 1 fault handler, the VMM and the guest's map: nothing more.
    let others = g
        .lines()
        .filter(|l| {
            l.contains(" -> ") && !l.contains("label=\"PPC ") && !l.contains("label=\"notify ")
        })
        .count();
    assert_eq!(others, 8, "{g}");
    // Only one direction was granted each kind.
    assert!(!g.contains("notify vmm:0"), "{g}");
    assert!(!g.contains("PPC serial:1"), "{g}");
    // Guest memory and the guest sit inside the boundary; the rest outside.
    let (inside, outside) = g.split_once("  }\n").unwrap();
    let inside = inside.split_once("subgraph cluster_guest").unwrap().1;
    assert!(
        inside.contains("\"vm:linux\" [") && inside.contains("\"mr:ram\" ["),
        "{g}"
    );
    assert!(
        !inside.contains("\"mr:ring\" [") && outside.contains("\"mr:ring\" ["),
        "{g}"
    );
    assert!(g.ends_with("}\n"));
}

#[test]
fn names_are_quoted() {
    // The checker allows no quotes in names today; sdfgen-style names may bring more.
    assert_eq!(super::q(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(super::q("dev@0/x"), "\"dev@0/x\"");
}

#[test]
fn every_pd_region_and_channel_of_the_linux_system_is_drawn() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel/metal-pds/linux.xml");
    let sys = sdf::load(&path).unwrap();
    let g = dot(&sys, "linux.xml");
    for pd in sys.all_pds() {
        assert!(
            g.contains(&format!("\"pd:{}\" [shape=box", pd.name)),
            "{}",
            pd.name
        );
    }
    for mr in &sys.memory_regions {
        assert!(
            g.contains(&format!("\"mr:{}\" [shape=cylinder", mr.name)),
            "{}",
            mr.name
        );
    }
    for ch in &sys.channels {
        let [a, b] = &ch.ends;
        let ids = format!("{}:{} -> {}:{}", a.pd, a.id, b.pd, b.id);
        let back = format!("{}:{} -> {}:{}", b.pd, b.id, a.pd, a.id);
        assert!(g.contains(&ids) || g.contains(&back), "channel {ids}");
    }
    for (_, vm) in sys.virtual_machines() {
        assert!(g.contains(&format!("\"vm:{}\" [shape=box3d", vm.name)));
    }
    // Every PD that maps the guest's RAM is marked guest-facing.
    for pd in ["synic", "hvcall", "storvsp", "vmm"] {
        let node = g
            .lines()
            .find(|l| l.contains(&format!("\"pd:{pd}\" [shape=box")))
            .unwrap();
        assert!(
            node.contains("guest-facing") && node.contains("color=red"),
            "{node}"
        );
    }
}

/// linux.xml's vTPM memory: only the tpm PD maps its regions (nothing else of the
/// system reaches TPM secrets or can forge its list or log), it only reads the
/// builder's measurement list, and the guest reads the event log where the TPM2
/// table's LASA points (tpm_crb::api::LOG_GPA, LOG_SIZE) and cannot write it.
#[test]
fn only_the_tpm_pd_maps_the_vtpm_regions_and_the_guest_only_reads_its_log() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel/metal-pds/linux.xml");
    let sys = sdf::load(&path).unwrap();
    // (region, the tpm PD's rights, the guest's (GPA, rights) if it maps it)
    let want = [
        ("tpm_regs", "rw", Some((tpm_crb::api::CRB_BASE, "r"))),
        ("tpm_buffer", "rw", Some((tpm_crb::api::BUFFER_GPA, "rw"))),
        ("tpm_measurements", "r", None),
        ("tpm_log", "rw", Some((tpm_crb::api::LOG_GPA, "r"))),
    ];
    for (mr, tpm_perms, guest) in want {
        let pd_maps: Vec<(String, String)> = sys
            .all_pds()
            .into_iter()
            .flat_map(|pd| {
                pd.maps
                    .iter()
                    .filter(|m| m.mr == mr)
                    .map(|m| (pd.name.clone(), m.perms.to_string()))
            })
            .collect();
        assert_eq!(
            pd_maps,
            [("tpm".to_string(), tpm_perms.to_string())],
            "{mr}"
        );
        let vm_maps: Vec<(u64, String)> = sys
            .virtual_machines()
            .into_iter()
            .flat_map(|(_, vm)| {
                vm.maps
                    .iter()
                    .filter(|m| m.mr == mr)
                    .map(|m| (m.vaddr, m.perms.to_string()))
            })
            .collect();
        let guest: Vec<(u64, String)> =
            guest.map(|(g, p)| (g, p.to_string())).into_iter().collect();
        assert_eq!(vm_maps, guest, "{mr}");
    }
    let log = sys.memory_region("tpm_log").unwrap();
    assert_eq!(log.size, u64::from(tpm_crb::api::LOG_SIZE));
    // And the tpm PD maps nothing but those.
    let tpm = sys.pd("tpm").unwrap();
    let mut maps: Vec<&str> = tpm.maps.iter().map(|m| m.mr.as_str()).collect();
    maps.sort_unstable();
    assert_eq!(
        maps,
        ["tpm_buffer", "tpm_log", "tpm_measurements", "tpm_regs"]
    );
}
