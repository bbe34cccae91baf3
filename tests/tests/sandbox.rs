//! The host-sim sandbox: a hostile PD (`escape_probe`) tries each way out of its
//! grants that issue 12 found open (the supervisor's /proc/PID/mem and memfds via
//! /proc/PID/fd, a sibling's /proc/PID/mem while it starts, signals to siblings and
//! the supervisor, /proc/self/map_files and /proc/self/mem on a read-only grant) and
//! a few more (ptrace, process_vm_readv, pidfd_getfd, F_SETOWN, sockets, fork,
//! exec), once under the test process as supervisor (root in CI: each PD gets its
//! own uid) and once under `paravisor sim` run as an unprivileged user (PDs share
//! its uid). Every attempt must be refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

const SYSTEM: &str = include_str!("../systems/sandbox.xml");

/// Unprivileged user the second run drops to when the tests run as root.
const NOBODY: u32 = 65534;

fn expected(uid: &str) -> Vec<String> {
    [
        // Not dumpable from exec on: its image is a copy it may not read.
        "dumpable at start: 0",
        "supervisor /proc/PID/mem rw: refused",
        "supervisor /proc/PID/mem r: refused",
        "supervisor /proc/PID/fd reopen: refused",
        "supervisor /proc/PID/fd list: refused",
        "sibling or bystander /proc/PID/mem: refused",
        "signal supervisor: refused",
        "signal own group: refused",
        "signal everyone: refused",
        "signal siblings: refused",
        // The filter lets a PD signal itself (abort() does).
        "signal self: allowed",
        "ptrace supervisor: refused",
        "process_vm_readv supervisor: refused",
        "pidfd_getfd supervisor: refused",
        "F_SETOWN to supervisor: refused",
        "new socket: refused",
        "host file rw: refused",
        "create a host file: refused",
        "fork: refused",
        &format!("uid: {uid}"),
        "/proc/self/map_files of the r grant, rw: refused",
        "/proc/self/mem write into the r grant: refused",
        "mprotect the r grant rw: refused",
        "make itself dumpable: refused",
        "dumpable: 0",
        "exec: refused",
        "done",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Whether a user other than the owner may execute `file` (and reach it).
fn others_may_run(file: &std::path::Path) -> bool {
    let Ok(meta) = std::fs::metadata(file) else {
        return false;
    };
    meta.permissions().mode() & 0o005 == 0o005
        && file
            .ancestors()
            .skip(1)
            .filter(|d| !d.as_os_str().is_empty())
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

fn is_root() -> bool {
    // The effective uid, from "Uid: real effective saved fs".
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// What the calling process holds besides pipes, pidfds and files: the kinds of
/// object a PD is granted.
fn grant_like_descriptors() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("list own fds")
        .flatten()
    {
        let target = std::fs::read_link(entry.path())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        if target.starts_with("/memfd:")
            || target == "anon_inode:[eventfd]"
            || target.starts_with("socket:")
        {
            found.push(target);
        }
    }
    found
}

#[test]
fn a_hostile_pd_reaches_nothing_but_its_grants() {
    let sim = hostsim::Simulation::launch(&common::system(SYSTEM), &common::options(60, &[]))
        .unwrap_or_else(|e| panic!("launch: {e}"));
    // Every PD is running: the supervisor keeps no region, notification or call
    // object (nor a copy of an image) for a PD to reach through it.
    assert_eq!(grant_like_descriptors(), Vec::<String>::new());
    let outcome = sim.wait().unwrap_or_else(|e| panic!("wait: {e}"));
    let checks: Vec<String> = outcome
        .stdout_of("attacker")
        .filter_map(|l| l.strip_prefix("check "))
        .map(str::to_string)
        .collect();
    // As root each PD runs under a uid of its own (where the user namespace maps
    // them); otherwise under the test's.
    let all_ids = std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    let uid = if is_root() && all_ids {
        "own"
    } else {
        "shared"
    };
    assert_eq!(checks, expected(uid), "{:#?}", outcome.log);
    common::assert_clean_exit(&outcome, "attacker");
}

#[test]
fn a_hostile_pd_under_an_unprivileged_supervisor_reaches_nothing_but_its_grants() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Readable by the unprivileged user the supervisor runs as.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    let bins = if is_root() && !others_may_run(&common::bin_dir().join("paravisor")) {
        // The build directory is closed to that user: run copies.
        for bin in ["paravisor", "escape_probe", "slow_start"] {
            std::fs::copy(common::bin_dir().join(bin), dir.path().join(bin)).expect("copy");
        }
        dir.path().to_path_buf()
    } else {
        common::bin_dir().to_path_buf()
    };
    let file = dir.path().join("system.xml");
    std::fs::write(&file, SYSTEM).expect("write system.xml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
        .expect("chmod system.xml");
    let mut cmd = Command::new(bins.join("paravisor"));
    cmd.arg("sim")
        .arg("--timeout")
        .arg("60")
        .arg("--search-path")
        .arg(&bins)
        .arg(&file)
        .current_dir(dir.path());
    // A process of the same user outside the system, dumpable as any ordinary
    // process is, started just before so that its pid is near the PDs'.
    let mut bystander = Command::new("sleep");
    bystander.arg("120");
    if is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
        bystander.uid(NOBODY).gid(NOBODY);
    }
    let mut bystander = bystander.spawn().expect("starting sleep");
    let out = cmd.output();
    let _ = bystander.kill();
    let _ = bystander.wait();
    let out = out.expect("running paravisor sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let checks: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[attacker] check "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        checks,
        expected("shared"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        out.status.success(),
        "{:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}
