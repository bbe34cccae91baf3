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
