//! `paravisor sim` as a user runs it: the root system from the binary's directory,
//! the exit status of the system, and `--timeout`.

mod common;

use std::ffi::OsStr;

use common::paravisor;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");

#[test]
fn sim_runs_the_root_system_and_exits_with_the_guests_status() {
    let out = paravisor(&["sim", "--timeout", "60", ROOT]);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    common::has_lines(
        &lines,
        &["[guest] guest_sim: PASS (Confidential6_0, 64 packets"],
    );
    assert!(
        stderr.contains("PD 'guest' exited with status 0"),
        "{stderr}"
    );
}

#[test]
fn check_and_manifest_pass_on_the_root_system_and_show_who_reaches_guest_memory() {
    let out = paravisor(&["check", ROOT]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let search = common::bin_dir().as_os_str();
    let out = paravisor(&[
        OsStr::new("manifest"),
        OsStr::new(ROOT),
        OsStr::new("--search-path"),
        search,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // Private guest RAM: the guest, the SynIC and hypercall PDs and the VSPs; the
    // host-visible alias: only the guest and the echo VSP; vmbus-server: neither.
    let manifest: serde_json::Value = serde_json::from_str(&out.stdout).expect("manifest JSON");
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
    let out = paravisor(&[
        OsStr::new("sim"),
        OsStr::new("--timeout"),
        OsStr::new("1"),
        xml.as_os_str(),
    ]);
    std::fs::remove_dir_all(&dir).ok();
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(hostsim::EXIT_TIMEOUT), "{stderr}");
    assert!(
        stderr.contains("timed out; still running: sleeper"),
        "{stderr}"
    );
}

#[test]
fn sim_reports_a_bad_description_like_check_does() {
    let out = paravisor(&["sim", "/nonexistent/system.xml"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(1), "{stderr}");
    assert!(stderr.starts_with("/nonexistent/system.xml"), "{stderr}");
}
