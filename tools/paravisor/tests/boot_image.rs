//! `paravisor build` / `verify` as a user runs them, on synthetic ELFs: the image and
//! its manifest agree, a changed program image or manifest is caught, and a region
//! that would alias the boot image is refused.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::Output;

mod common;
#[path = "common/elf.rs"]
mod elf;
use common::paravisor;
use elf::elf;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `o` exited with `code` and said `needle`.
fn says(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    assert!(text(o).contains(needle), "{}", text(o));
}

const SYSTEM: &str = r#"<system>
    <memory_region name="ring" size="0x1000" />
    <protection_domain name="a" priority="10">
        <program_image path="a.elf" />
        <map mr="ring" vaddr="0x20000000" perms="rw" setvar_vaddr="ring" />
    </protection_domain>
    <protection_domain name="b" priority="20">
        <program_image path="b.elf" />
        <map mr="ring" vaddr="0x20000000" perms="r" />
    </protection_domain>
    <channel>
        <end pd="a" id="0" pp="true" />
        <end pd="b" id="1" />
    </channel>
</system>
"#;

/// What `verify` needs to rebuild the image of `setup` and check its IGVM form.
const REBUILD: &[&str] = &[
    "--igvm",
    "boot.igvm",
    "--system",
    "system.xml",
    "--kernel",
    "kernel",
];

fn setup(dir: &Path, system: &str) {
    std::fs::write(dir.join("system.xml"), system).unwrap();
    let kernel = elf(0x10_0000, &[(0x10_0000, 0x10_0000, 5, &[0xf4; 32], 0x3000)]);
    std::fs::write(dir.join("kernel"), kernel).unwrap();
    for (name, tag) in [("a.elf", 1u8), ("b.elf", 2)] {
        let pd = elf(
            0x40_0000,
            &[(0x40_0000, 0x40_0000, 5, &[0x90, tag], 0x1000)],
        );
        std::fs::write(dir.join(name), pd).unwrap();
    }
}

fn build(dir: &Path) -> Output {
    build_with(dir, &[])
}

fn build_with(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "build",
        "system.xml",
        "--kernel",
        "kernel",
        "-o",
        "boot.elf",
        "--manifest",
        "m.json",
        "--igvm",
        "boot.igvm",
    ];
    args.extend_from_slice(extra);
    paravisor(&args, dir)
}

#[test]
fn built_images_verify_and_changes_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), SYSTEM);
    let out = build(dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("IGVM for the native platform"),
        "{}",
        text(&out)
    );
    let verify = |manifest: &str| {
        let args = [&["verify", "boot.elf", "--manifest", manifest], REBUILD].concat();
        paravisor(&args, dir.path())
    };
    says(
        &verify("m.json"),
        0,
        "2 PDs, 0 VMs and 1 regions match the manifest",
    );

    // `manifest --kernel` records the same bytes `build --manifest` does; without
    // the kernel nothing binds the bytes and verify (without a rebuild) refuses.
    let m = paravisor(
        &[
            "manifest",
            "system.xml",
            "--kernel",
            "kernel",
            "-o",
            "m2.json",
        ],
        dir.path(),
    );
    assert!(m.status.success(), "{}", text(&m));
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(f)).unwrap()).unwrap()
    };
    assert_eq!(read("m.json")["boot_image"], read("m2.json")["boot_image"]);
    assert!(
        read("m.json")["boot_image"]["parts"]
            .as_array()
            .unwrap()
            .len()
            > 20
    );
    let m = paravisor(&["manifest", "system.xml", "-o", "m3.json"], dir.path());
    assert!(m.status.success(), "{}", text(&m));
    assert!(read("m3.json")["boot_image"].is_null());
    let unbound = paravisor(&["verify", "boot.elf", "--manifest", "m3.json"], dir.path());
    says(&unbound, 1, "nothing binds the image's bytes");

    // The manifest says b may call a: the image does not grant it.
    let m = std::fs::read_to_string(dir.path().join("m.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&m).unwrap();
    json["protection_domains"][1]["channels"][0]["can_call"] = true.into();
    std::fs::write(dir.path().join("bad.json"), json.to_string()).unwrap();
    says(&verify("bad.json"), 1, "PD b: capability at channel id 1");

    // A rebuilt program image no longer matches the image or the manifest.
    let pd = elf(0x40_0000, &[(0x40_0000, 0x40_0000, 5, &[0x90, 9], 0x1000)]);
    std::fs::write(dir.path().join("a.elf"), pd).unwrap();
    let stale = verify("m.json");
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        text(&stale).contains("PD a program segment 0 (r-x at 0x400000) differs from the rebuild"),
        "{}",
        text(&stale)
    );
}

/// The `launch digest (<platform>): <96 hex>` line of `out`.
fn digest_line(out: &Output, platform: &str) -> String {
    let prefix = format!("launch digest ({platform}): ");
    let lines: Vec<String> = text(out)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 1, "{}", text(out));
    let hex = &lines[0][prefix.len()..];
    assert!(
        hex.len() == 96 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hex}"
    );
    lines[0].clone()
}

/// The SNP and TDX IGVM files: build prints the launch digest, verify recomputes
/// the same from the file; a changed byte or a file for another image is refused.
#[test]
fn snp_and_tdx_igvm_files_verify_with_the_built_launch_digest() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), SYSTEM);
    let verify = |igvm: &str| {
        paravisor(
            &["verify", "boot.elf", "--manifest", "m.json", "--igvm", igvm],
            dir.path(),
        )
    };
    let mut lines = Vec::new();
    for platform in ["snp", "tdx"] {
        let out = build_with(dir.path(), &["--platform", platform]);
        assert!(out.status.success(), "{}", text(&out));
        let built = digest_line(&out, platform);
        let file = format!("{platform}.igvm");
        std::fs::rename(dir.path().join("boot.igvm"), dir.path().join(&file)).unwrap();
        let ok = verify(&file);
        says(&ok, 0, &format!("IGVM form for the {platform} platform"));
        assert_eq!(digest_line(&ok, platform), built);
        lines.push(built);

        let mut bytes = std::fs::read(dir.path().join(&file)).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 0x40;
        std::fs::write(dir.path().join("bad.igvm"), bytes).unwrap();
        says(&verify("bad.igvm"), 1, "bad.igvm");
    }
    assert_ne!(lines[0][22..], lines[1][22..]);
    // Another image's file: the TDX file of the rebuilt image (b changed) is refused.
    let pd = elf(0x40_0000, &[(0x40_0000, 0x40_0000, 5, &[0x90, 7], 0x1000)]);
    std::fs::write(dir.path().join("b.elf"), pd).unwrap();
    let out = paravisor(
        &[
            "build",
            "system.xml",
            "--kernel",
            "kernel",
            "-o",
            "other.elf",
            "--igvm",
            "other.igvm",
            "--platform",
            "tdx",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    says(
        &verify("other.igvm"),
        1,
        "is not the tdx IGVM form of the image",
    );
    // --platform without --igvm is a command-line error.
    let lone = paravisor(
        &[
            "build",
            "system.xml",
            "--kernel",
            "kernel",
            "-o",
            "x.elf",
            "--platform",
            "snp",
        ],
        dir.path(),
    );
    assert_eq!(lone.status.code(), Some(2), "{}", text(&lone));
}

#[test]
fn a_region_aliasing_the_boot_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let system = SYSTEM.replace(
        r#"size="0x1000" />"#,
        r#"size="0x1000" phys_addr="0x101000" />"#,
    );
    setup(dir.path(), &system);
    let out = build(dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("memory region ring at 0x101000 overlaps the boot image"),
        "{}",
        text(&out)
    );
    assert!(
        !dir.path().join("boot.elf").exists(),
        "nothing written on error"
    );
}

const GUEST_SYSTEM: &str = r#"<system>
    <memory_region name="ring" size="0x1000" />
    <memory_region name="ram" size="0x4000" />
    <protection_domain name="a" priority="10">
        <program_image path="a.elf" />
        <map mr="ring" vaddr="0x20000000" perms="rw" />
        <map mr="ram" vaddr="0x30000000" perms="rw" />
        <virtual_machine name="linux" priority="5">
            <vcpu id="0" />
            <map mr="ram" vaddr="0x1234000" perms="rwx" />
        </virtual_machine>
    </protection_domain>
    <protection_domain name="b" priority="20">
        <program_image path="b.elf" />
        <map mr="ring" vaddr="0x20000000" perms="r" />
    </protection_domain>
</system>
"#;

/// The image bytes of a `VmMapDesc { gpa, region, perms }`.
fn vm_map_bytes(gpa: u64, region: u32, perms: u32) -> Vec<u8> {
    let mut out = gpa.to_le_bytes().to_vec();
    out.extend_from_slice(&region.to_le_bytes());
    out.extend_from_slice(&perms.to_le_bytes());
    out
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    let at: Vec<usize> = (0..=hay.len() - needle.len())
        .filter(|&i| hay[i..].starts_with(needle))
        .collect();
    assert_eq!(at.len(), 1, "{needle:x?} occurs {} times", at.len());
    at[0]
}

#[test]
fn guests_and_region_data_verify_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), GUEST_SYSTEM);
    let guest = b"GUEST KERNEL: pretend bzImage bytes";
    std::fs::write(dir.path().join("bzImage"), guest).unwrap();
    let out = build_with(dir.path(), &["--region-data", "ram=bzImage"]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "boot.elf", "--manifest", "m.json"];
        args.extend_from_slice(extra);
        paravisor(&args, dir.path())
    };
    let rebuild = [REBUILD, &["--region-data", "ram=bzImage"]].concat();
    let ok = verify(&rebuild);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("2 PDs, 1 VMs and 2 regions match the manifest"),
        "{}",
        text(&ok)
    );
    // The rebuild needs the same region data.
    let no_data = verify(REBUILD);
    assert!(
        text(&no_data).contains("region ram descriptor, field data_off differs from the rebuild"),
        "{}",
        text(&no_data)
    );

    let boot = std::fs::read(dir.path().join("boot.elf")).unwrap();
    // One changed byte of region data.
    let mut changed = boot.clone();
    changed[find(&boot, guest) + 3] ^= 1;
    std::fs::write(dir.path().join("boot.elf"), &changed).unwrap();
    let bad = verify(&[]);
    says(&bad, 1, "region ram: initial data sha256");
    says(&bad, 1, "region ram initial data (file offset");
    // The guest's map re-pointed at the ring.
    let mut repointed = boot.clone();
    let map = vm_map_bytes(0x1234000, 1, 7);
    let at = find(&boot, &map);
    repointed[at..at + 16].copy_from_slice(&vm_map_bytes(0x1234000, 0, 7));
    std::fs::write(dir.path().join("boot.elf"), &repointed).unwrap();
    let bad = verify(&[]);
    says(
        &bad,
        1,
        r#"VM linux: guest maps (region, gpa, size, perms) [("ring", 1234000, 1000, "rwx")], manifest says [("ram", 1234000, 4000, "rwx")]"#,
    );
    says(&bad, 1, "VM linux guest map 0 (region ram) (file offset");
    std::fs::write(dir.path().join("boot.elf"), &boot).unwrap();

    // A file larger than its region is refused, and nothing is written.
    std::fs::write(dir.path().join("big"), vec![0u8; 0x4001]).unwrap();
    std::fs::remove_file(dir.path().join("boot.elf")).unwrap();
    let out = build_with(dir.path(), &["--region-data", "ram=big"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out),
        "paravisor: error: --region-data ram=big: the file is 16385 bytes, larger than region 'ram' (16384 bytes)\n"
    );
    assert!(!dir.path().join("boot.elf").exists());
}

/// `--measurements`: the builder lays out the tpm PD's list of every PD's program
/// image in manifest order, the manifest states it and the PCR it gives, and verify
/// re-derives both from the image.
#[test]
fn the_measurement_list_is_laid_out_stated_and_verified() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let system = SYSTEM.replace(
        "<protection_domain name=\"b\" priority=\"20\">\n        <program_image path=\"b.elf\" />",
        "<protection_domain name=\"b\" priority=\"20\">\n        <program_image path=\"b.elf\" />\n        <map mr=\"list\" vaddr=\"0x21000000\" perms=\"r\" setvar_vaddr=\"measurements\" />",
    );
    let system = system.replace(
        "<memory_region name=\"ring\" size=\"0x1000\" />",
        "<memory_region name=\"ring\" size=\"0x1000\" />\n    <memory_region name=\"list\" size=\"0x1000\" />",
    );
    assert!(system.contains("mr=\"list\""));
    setup(dir.path(), &system);
    let out = build_with(dir.path(), &["--measurements", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).unwrap()).unwrap();
    assert_eq!(m["schema_version"], 6);
    let mb = &m["measured_boot"];
    assert_eq!(
        (mb["region"].as_str(), mb["pcr"].as_u64()),
        (Some("list"), Some(0))
    );
    // The list is the PDs in manifest order with their program image hashes.
    let pds: Vec<(String, String)> = m["protection_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].to_string(),
                p["program_image"]["sha256"].to_string(),
            )
        })
        .collect();
    let listed: Vec<(String, String)> = mb["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["pd"].to_string(), i["sha256"].to_string()))
        .collect();
    assert_eq!(listed, pds);
    assert_eq!(pds[0].0, "\"a\"");
    // PCR 0 from reset, extended with each hash in that order.
    let mut pcr = [0u8; 32];
    for (_, sha) in &pds {
        let digest = tpm::measured_boot::sha256_from_hex(sha.trim_matches('"')).unwrap();
        pcr = Sha256::new()
            .chain_update(pcr)
            .chain_update(digest)
            .finalize()
            .into();
    }
    let hex: String = pcr.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(mb["pcr_sha256"], hex.as_str());
    // Spec ID header (32 + 33 bytes), then one 50-byte event plus the name per PD.
    assert_eq!(mb["event_log"]["size"], 65 + 51 + 51);
    let region = &m["regions"].as_array().unwrap()[1];
    assert_eq!(region["name"], "list");
    assert_eq!(region["initial_data"]["len"], 16 + 2 * 64);

    // The image holds exactly that list.
    let boot = std::fs::read(dir.path().join("boot.elf")).unwrap();
    let at = find(&boot, tpm::measured_boot::MAGIC);
    let list = tpm::measured_boot::parse(&boot[at..at + 144]).unwrap();
    assert_eq!(
        list.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "boot.elf", "--manifest", "m.json"];
        args.extend_from_slice(extra);
        paravisor(&args, dir.path())
    };
    says(
        &verify(&[REBUILD, &["--measurements", "list"]].concat()),
        0,
        "2 PDs, 0 VMs and 2 regions match the manifest",
    );
    // One hash in the image's list changed: named as measured boot and as the part.
    let mut changed = boot.clone();
    changed[at + 16 + 32 + 5] ^= 1;
    std::fs::write(dir.path().join("boot.elf"), &changed).unwrap();
    let bad = verify(&[]);
    says(&bad, 1, "measured boot: region list lists");
    says(&bad, 1, "region list initial data (file offset");
    std::fs::write(dir.path().join("boot.elf"), &boot).unwrap();
    // A manifest that states another PCR.
    let mut json = m.clone();
    json["measured_boot"]["pcr_sha256"] = "00".repeat(32).into();
    std::fs::write(dir.path().join("bad.json"), json.to_string()).unwrap();
    let bad = paravisor(
        &["verify", "boot.elf", "--manifest", "bad.json"],
        dir.path(),
    );
    says(&bad, 1, "measured boot: the image's list gives");

    // Mistakes are one line naming the argument.
    std::fs::write(dir.path().join("data"), b"x").unwrap();
    for (extra, want) in [
        (
            vec!["--measurements", "nope"],
            "--measurements nope: the system has no memory region 'nope'",
        ),
        (
            vec!["--measurements", "list", "--region-data", "list=data"],
            "--measurements list: region 'list' is also given --region-data",
        ),
    ] {
        let out = build_with(dir.path(), &extra);
        assert_eq!(text(&out), format!("paravisor: error: {want}\n"));
        assert_eq!(out.status.code(), Some(1));
    }
}
