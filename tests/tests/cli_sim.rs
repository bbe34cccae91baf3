//! `paravisor sim` as a user runs it: the root system from the binary's directory,
//! the exit status of the system, and `--timeout`.

mod common;

use std::process::Command;

fn paravisor() -> Command {
    Command::new(common::bin_dir().join("paravisor"))
}

#[test]
fn sim_runs_the_root_system_and_exits_with_the_guests_status() {
    let out = paravisor()
        .args([
            "sim",
            "--timeout",
            "60",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml"),
        ])
        .output()
        .expect("run paravisor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[guest] guest_sim: PASS (Confidential6_0, 64 packets")),
        "{stdout}"
    );
    assert!(
        stderr.contains("PD 'guest' exited with status 0"),
        "{stderr}"
    );
}

#[test]
fn check_and_manifest_pass_on_the_root_system_and_show_who_reaches_guest_memory() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    let out = paravisor().args(["check", root]).output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = paravisor()
        .args(["manifest", root, "--search-path"])
        .arg(common::bin_dir())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Private guest RAM: the guest, the SynIC and hypercall PDs and the VSPs; the
    // host-visible alias: only the guest and the echo VSP; vmbus-server: neither.
    let manifest: serde_json::Value = serde_json::from_str(&stdout).expect("manifest JSON");
    let mapped_by = |name: &str| -> Vec<String> {
        let regions = manifest["regions"].as_array().expect("regions");
        let region = regions
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no region {name}"));
        region["mapped_by"]
            .as_array()
            .expect("mapped_by")
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["pd"].as_str().unwrap_or(""),
                    m["perms"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    assert_eq!(
        mapped_by("guest_ram"),
        [
            "synic:rw",
            "hvcall:rw",
            "echo_vsp:rw",
            "storvsp:rw",
            "netvsp:rw",
            "guest:rw"
        ]
    );
    assert_eq!(mapped_by("guest_shared"), ["echo_vsp:rw", "guest:rw"]);
    assert_eq!(mapped_by("echo_gpadl"), ["echo_vsp:r", "vmbus:rw"]);
    assert_eq!(mapped_by("storvsp_gpadl"), ["storvsp:r", "vmbus:rw"]);
    assert_eq!(mapped_by("netvsp_gpadl"), ["netvsp:r", "vmbus:rw"]);
    assert_eq!(
        mapped_by("disk0"),
        ["storvsp:rw"],
        "only storvsp holds the disk"
    );
}

#[test]
fn sim_timeout_kills_everything_and_names_who_was_running() {
    let dir = std::env::temp_dir().join(format!("paravisor-sim-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let xml = dir.join("system.xml");
    std::fs::write(
        &xml,
        r#"<system>
            <protection_domain name="sleeper" priority="1"><program_image path="idle" /></protection_domain>
        </system>"#,
    )
    .expect("write system");
    let out = paravisor()
        .args(["sim", "--timeout", "1"])
        .arg(&xml)
        .output()
        .expect("run paravisor");
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(hostsim::EXIT_TIMEOUT), "{stderr}");
    assert!(
        stderr.contains("timed out; still running: sleeper"),
        "{stderr}"
    );
}

#[test]
fn sim_reports_a_bad_description_like_check_does() {
    let out = paravisor()
        .args(["sim", "/nonexistent/system.xml"])
        .output()
        .expect("run paravisor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("/nonexistent/system.xml"), "{stderr}");
}
