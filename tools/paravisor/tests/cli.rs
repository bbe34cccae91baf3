//! The CLI as a user sees it: exit codes, message format, and the manifest's content
//! and all-or-nothing writing.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::paravisor;

use serde_json::Value;

const SYSTEM: &str = r#"<system>
    <memory_region name="ring" size="0x4000" />
    <memory_region name="mmio" size="0x1000" phys_addr="0xfec00000" />
    <protection_domain name="client" priority="100" budget="200" period="1000">
        <program_image path="client.elf" />
        <map mr="ring" vaddr="0x2000000" perms="rw" setvar_vaddr="ring_vaddr" />
    </protection_domain>
    <protection_domain name="server" priority="200" passive="true">
        <program_image path="server.elf" />
        <map mr="ring" vaddr="0x3000000" perms="r" cached="false" />
        <map mr="mmio" vaddr="0x4000000" perms="rw" />
        <irq irq="33" id="5" trigger="edge" />
        <protection_domain name="child" id="3" priority="201">
            <program_image path="child.elf" />
        </protection_domain>
    </protection_domain>
    <channel>
        <end pd="client" id="0" pp="true" />
        <end pd="server" id="1" notify="false" />
    </channel>
</system>
"#;

/// sha256("abc"), FIPS 180-2 test vector: checks the hash independently of our code.
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory with system.xml and all three images next to it.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), SYSTEM).unwrap();
    std::fs::write(dir.path().join("client.elf"), b"abc").unwrap();
    std::fs::write(dir.path().join("server.elf"), vec![0x5a; 100_000]).unwrap();
    std::fs::write(dir.path().join("child.elf"), b"").unwrap();
    dir
}

/// The command failed as a user error: status 1, no panic. Returns its stderr.
fn user_error(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    no_panic_trace(out);
    err
}

fn no_panic_trace(out: &Output) {
    let err = text(&out.stderr);
    assert!(
        !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE")
            && !err.contains("internal error"),
        "{err}"
    );
}

#[test]
fn check_ok_prints_summary() {
    let dir = project();
    let out = paravisor(&["check", "system.xml"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: 3 protection domains, 2 memory regions, 1 channels\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn check_errors_are_listed_with_position_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let broken = SYSTEM
        .replace(r#"vaddr="0x3000000""#, r#"vaddr="0x3000800""#)
        .replace(r#"priority="100""#, r#"priority="256""#);
    std::fs::write(dir.path().join("system.xml"), broken).unwrap();
    let out = paravisor(&["check", "system.xml"], dir.path());
    assert!(out.stdout.is_empty());
    let err = user_error(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "system.xml:4:38: error: priority=256 is out of range 0..=254"
    );
    assert_eq!(lines[1], "  hint: use a value between 0 and 254");
    assert_eq!(
        lines[2],
        "system.xml:10:24: error: vaddr 0x3000800 is not aligned to the region's page_size 0x1000"
    );
    assert_eq!(lines[3], "  hint: align vaddr to 0x1000");
    assert_eq!(lines[4], "paravisor: 2 errors");
    assert_eq!(lines.len(), 5);
}

#[test]
fn check_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = paravisor(&["check", "nope.xml"], dir.path());
    let err = user_error(&out);
    assert!(
        err.starts_with("nope.xml: error: cannot read the system description: No such file"),
        "{err}"
    );
}

#[test]
fn check_hostile_inputs_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[u8]] = &[
        b"",
        b"\xff\xfe\x00<",
        b"<system>",
        b"<system><protection_domain name=\"a\" priority=\"184467440737095516160\"/></system>",
        b"<system><memory_region name=\"m\" size=\"0xffffffffffffffffff\"/></system>",
        b"<!DOCTYPE lol [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><system>&b;</system>",
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let name = format!("case{i}.xml");
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        let out = paravisor(&["check", &name], dir.path());
        let err = user_error(&out);
        assert!(err.starts_with(&name), "case {i}: {err}");
    }
    // A directory is not a file.
    let out = paravisor(&["check", "."], dir.path());
    user_error(&out);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(paravisor(&[], dir.path()).status.code(), Some(2));
    assert_eq!(paravisor(&["check"], dir.path()).status.code(), Some(2));
    assert_eq!(
        paravisor(&["frobnicate"], dir.path()).status.code(),
        Some(2)
    );
}

fn manifest_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["manifest", "system.xml", "-o", "m.json"];
    args.extend_from_slice(extra);
    let out = paravisor(&args, dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&std::fs::read(dir.join("m.json")).unwrap()).unwrap()
}

#[test]
fn manifest_content() {
    let dir = project();
    let m = manifest_json(dir.path(), &[]);
    assert_eq!(m["schema_version"], 6);
    assert_eq!(m["virtual_machines"], serde_json::json!([]));
    assert_eq!(m["system"]["path"], "system.xml");
    let pds = m["protection_domains"].as_array().unwrap();
    let names: Vec<&str> = pds.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["client", "server", "child"]);

    let client = &pds[0];
    assert_eq!(client["priority"], 100);
    assert_eq!(client["budget_us"], 200);
    assert_eq!(client["period_us"], 1000);
    assert_eq!(client["passive"], false);
    assert_eq!(client["parent"], Value::Null);
    assert_eq!(client["program_image"]["path"], "client.elf");
    assert_eq!(client["program_image"]["sha256"], SHA256_ABC);
    assert_eq!(client["program_image"]["size"], 3);
    assert_eq!(
        client["regions"][0],
        serde_json::json!({"name": "ring", "size": 0x4000, "vaddr": 0x2000000, "perms": "rw", "cached": true,
                           "phys_addr": null, "setvar_vaddr": "ring_vaddr"})
    );
    assert_eq!(
        client["channels"][0],
        serde_json::json!({"id": 0, "peer": "server", "peer_id": 1, "can_notify": true, "can_be_notified": false,
                           "can_call": true, "can_be_called": false})
    );

    let server = &pds[1];
    assert_eq!(server["passive"], true);
    assert_eq!(server["program_image"]["size"], 100_000);
    assert_eq!(server["regions"][1]["phys_addr"], 0xfec00000u64);
    assert_eq!(
        server["irqs"][0],
        serde_json::json!({"irq": 33, "id": 5, "trigger": "edge"})
    );
    assert_eq!(server["channels"][0]["can_be_called"], true);
    assert_eq!(server["channels"][0]["can_call"], false);
    assert_eq!(server["channels"][0]["can_notify"], false);

    let child = &pds[2];
    assert_eq!(child["parent"], "server");
    assert_eq!(child["child_id"], 3);
    // sha256 of the empty string.
    assert_eq!(
        child["program_image"]["sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );

    // Who can reach which memory.
    assert_eq!(
        m["regions"][0],
        serde_json::json!({"name": "ring", "size": 0x4000, "page_size": 0x1000, "phys_addr": null, "mapped_by": [
            {"pd": "client", "vaddr": 0x2000000, "perms": "rw", "cached": true},
            {"pd": "server", "vaddr": 0x3000000, "perms": "r", "cached": false},
        ], "mapped_by_guests": [], "initial_data": null})
    );
    assert_eq!(m["regions"][1]["mapped_by"].as_array().unwrap().len(), 1);
}

#[test]
fn manifest_to_stdout_matches_file_output() {
    let dir = project();
    let file = manifest_json(dir.path(), &[]);
    let out = paravisor(&["manifest", "system.xml"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout, file);
}

#[test]
fn manifest_search_path_order() {
    let dir = project();
    std::fs::remove_file(dir.path().join("client.elf")).unwrap();
    for (sub, content) in [("a", &b"first"[..]), ("b", &b"second"[..])] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("client.elf"), content).unwrap();
    }
    let m = manifest_json(dir.path(), &["--search-path", "b", "--search-path", "a"]);
    let image = &m["protection_domains"][0]["program_image"];
    assert_eq!(image["resolved"], "b/client.elf");
    assert_eq!(image["size"], 6);
    // The system.xml directory comes first.
    std::fs::write(dir.path().join("client.elf"), b"abc").unwrap();
    let m = manifest_json(dir.path(), &["--search-path", "b"]);
    assert_eq!(
        m["protection_domains"][0]["program_image"]["sha256"],
        SHA256_ABC
    );
}

fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn manifest_missing_image_writes_nothing() {
    let dir = project();
    std::fs::remove_file(dir.path().join("server.elf")).unwrap();
    std::fs::remove_file(dir.path().join("child.elf")).unwrap();
    let before = dir_entries(dir.path());
    let out = paravisor(
        &[
            "manifest",
            "system.xml",
            "-o",
            "m.json",
            "--search-path",
            "build",
        ],
        dir.path(),
    );
    let err = user_error(&out);
    let lines: Vec<&str> = err.lines().collect();
    // Both missing images are reported, each at its path attribute.
    assert_eq!(
        lines[0],
        "system.xml:9:24: error: program image 'server.elf' not found"
    );
    assert_eq!(
        lines[1],
        "  hint: build the image or pass --search-path; looked in '.', 'build'"
    );
    assert_eq!(
        lines[2],
        "system.xml:14:28: error: program image 'child.elf' not found"
    );
    assert_eq!(lines[4], "paravisor: 2 errors");
    assert_eq!(
        dir_entries(dir.path()),
        before,
        "no output and no temporary file may be left"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn manifest_error_keeps_previous_output_intact() {
    let dir = project();
    std::fs::write(dir.path().join("m.json"), "previous").unwrap();
    std::fs::write(
        dir.path().join("system.xml"),
        SYSTEM.replace("</system>", ""),
    )
    .unwrap();
    let out = paravisor(&["manifest", "system.xml", "-o", "m.json"], dir.path());
    let err = user_error(&out);
    assert!(err.starts_with("system.xml:"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("m.json")).unwrap(),
        "previous"
    );
}

#[test]
fn manifest_unwritable_output_is_one_clean_error() {
    let dir = project();
    let out = paravisor(
        &["manifest", "system.xml", "-o", "no/such/dir/m.json"],
        dir.path(),
    );
    let err = user_error(&out);
    assert!(
        err.starts_with("paravisor: error: cannot write no/such/dir/m.json: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

const GUEST_SYSTEM: &str = r#"<system>
    <memory_region name="guest_ram" size="0x4000" />
    <protection_domain name="vmm" priority="50">
        <program_image path="vmm.elf" />
        <map mr="guest_ram" vaddr="0x40000000" perms="rw" />
        <virtual_machine name="linux" priority="40" budget="500" period="1000">
            <vcpu id="0" />
            <map mr="guest_ram" vaddr="0x100000" perms="rwx" />
        </virtual_machine>
    </protection_domain>
</system>
"#;

#[test]
fn manifest_lists_guests_what_they_see_and_initial_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), GUEST_SYSTEM).unwrap();
    std::fs::write(dir.path().join("vmm.elf"), b"abc").unwrap();
    std::fs::write(dir.path().join("bzImage"), b"abc").unwrap();
    let m = manifest_json(dir.path(), &["--region-data", "guest_ram=bzImage"]);
    assert_eq!(
        m["virtual_machines"],
        serde_json::json!([{"name": "linux", "vmm": "vmm", "priority": 40, "budget_us": 500, "period_us": 1000,
            "vcpu_ids": [0], "maps": [{"region": "guest_ram", "gpa": 0x100000, "size": 0x4000, "perms": "rwx", "cached": true}], "io_ports": []}])
    );
    assert_eq!(
        m["regions"][0]["mapped_by_guests"],
        serde_json::json!([{"vm": "linux", "gpa": 0x100000, "perms": "rwx"}])
    );
    assert_eq!(
        m["regions"][0]["initial_data"],
        serde_json::json!({"path": "bzImage", "sha256": SHA256_ABC, "len": 3})
    );
    assert_eq!(m["regions"][0]["mapped_by"][0]["pd"], "vmm");

    let out = paravisor(
        &["manifest", "system.xml", "--region-data", "nope=bzImage"],
        dir.path(),
    );
    assert_eq!(
        user_error(&out),
        "paravisor: error: --region-data nope=bzImage: the system has no memory region 'nope'\n"
    );
}

#[test]
fn graph_prints_dot_or_writes_it_atomically() {
    let dir = project();
    let out = paravisor(&["graph", "system.xml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    assert!(
        dot.starts_with("digraph system {") && dot.ends_with("}\n"),
        "{dot}"
    );
    for want in [
        "\"pd:server\" [shape=box, style=\"rounded,bold\", color=orange",
        "\"pd:server\" -> \"pd:child\" [style=dotted",
        "\"irq:33\" -> \"pd:server\" [color=orange, label=\"id 5, edge\"]",
        "\"pd:client\" -> \"pd:server\" [style=solid, penwidth=1.5, label=\"PPC client:0 -> server:1\"]",
    ] {
        assert!(dot.contains(want), "missing {want} in\n{dot}");
    }
    // Images are not needed to draw the system.
    std::fs::remove_file(dir.path().join("child.elf")).unwrap();
    let out = paravisor(&["graph", "system.xml", "-o", "sys.dot"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("wrote sys.dot\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sys.dot")).unwrap(),
        dot
    );

    // A description with errors draws nothing.
    std::fs::write(dir.path().join("bad.xml"), "<system><oops/></system>").unwrap();
    let out = paravisor(&["graph", "bad.xml", "-o", "bad.dot"], dir.path());
    user_error(&out);
    assert!(!dir.path().join("bad.dot").exists());
}

/// Our audit policy is an error by default and a warning under `--microkit`, which
/// accepts exactly what Microkit's tool accepts.
#[test]
fn check_microkit_demotes_policy_errors_to_warnings() {
    let dir = project();
    let named = SYSTEM
        .replace(r#"name="client""#, r#"name="my client""#)
        .replace(r#"pd="client""#, r#"pd="my client""#);
    std::fs::write(dir.path().join("system.xml"), named).unwrap();
    let strict = paravisor(&["check", "system.xml"], dir.path());
    let err = user_error(&strict);
    assert!(
        err.starts_with(
            "system.xml:4:24: error[policy plain-names]: name=\"my client\" is not a valid name"
        ),
        "{err}"
    );
    let microkit = paravisor(&["check", "--microkit", "system.xml"], dir.path());
    assert_eq!(
        microkit.status.code(),
        Some(0),
        "{}",
        text(&microkit.stderr)
    );
    assert!(text(&microkit.stderr).starts_with(
        "system.xml:4:24: warning[policy plain-names]: name=\"my client\" is not a valid name"
    ));
    assert!(text(&microkit.stdout).starts_with("ok: 3 protection domains"));
}

/// Valid Microkit that this target cannot build passes check and is refused by build,
/// positioned and with the reason.
#[test]
fn build_refuses_what_check_accepts_but_x86_cannot_build() {
    let dir = project();
    let ports = SYSTEM.replace(
        r#"<irq irq="33" id="5" trigger="edge" />"#,
        r#"<irq irq="33" id="5" trigger="edge" /><ioport id="0" addr="0x3f8" size="8" />"#,
    );
    std::fs::write(dir.path().join("system.xml"), ports).unwrap();
    let check = paravisor(&["check", "system.xml"], dir.path());
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    std::fs::write(dir.path().join("kernel.elf"), b"not used").unwrap();
    let build = paravisor(
        &[
            "build",
            "system.xml",
            "--kernel",
            "kernel.elf",
            "-o",
            "out.img",
        ],
        dir.path(),
    );
    let err = user_error(&build);
    assert!(
        err.starts_with(
            "system.xml:12:47: error: <ioport> cannot be built here: the kernel grants no I/O port capabilities"
        ),
        "{err}"
    );
    assert!(!dir.path().join("out.img").exists());
}
