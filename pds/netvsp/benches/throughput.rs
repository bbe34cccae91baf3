//! netvsp's data path against the raw backends it sits on, in the same run:
//!
//! - guest A -> netvsp A -> switch -> netvsp B -> guest B (both drivers doing
//!   what hv_netvsc does: send sections, transfer pages, completions), against
//!   the same frames port to port on the switch alone;
//! - guest -> netvsp -> TAP, against the same frames written to the TAP device
//!   directly (in a network namespace of its own; root only);
//! - the whole system on host-sim (tests/systems/net_pair.xml): two guests, each
//!   with its own hvcall-pd, synic-pd, vmbus-server and netvsp PD, every PD its
//!   own process, sending each other frames both ways at once (the rate is what
//!   guest A received), against the switch and TAP numbers of the same run.
//!
//! Prints packets/s and MB/s of each and the ratios. `QUICK=1` runs a few frames
//! only, to check that it works.

#![allow(clippy::unwrap_used)]
// unshare(2) for the TAP's network namespace.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netvsp::backend::switch::Switch;
use netvsp::backend::tap::Tap;
use netvsp::backend::Backend;
use netvsp::testing::{self, Client, GuestLayout, Host};
use netvsp::Config;
use netvsp_protocol::nvsp::Version;

const A: [u8; 6] = [0x00, 0x15, 0x5d, 0, 0, 0xa];
const B: [u8; 6] = [0x00, 0x15, 0x5d, 0, 0, 0xb];

fn frame(len: usize) -> Vec<u8> {
    let mut f = [B, A].concat();
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(len, 0x5a);
    f
}

fn up(backend: Box<dyn Backend>, mac: [u8; 6]) -> (Host, Client) {
    // Linux's default buffer sizes: 16 MiB to receive, 1 MiB to send.
    let (mut host, mut client) =
        testing::guest(GuestLayout::new(4096, 256), Config::new(mac), backend);
    client.bring_up(Version::V61, &mut host.pump()).unwrap();
    (host, client)
}

/// Sends what the send buffer takes; true if anything went.
fn send_burst(c: &mut Client, f: &[u8], left: &mut u64) -> bool {
    let before = *left;
    while *left > 0 && c.send_frame(f).unwrap() {
        *left -= 1;
    }
    c.flush().unwrap();
    before != *left
}

/// Seconds to move `n` frames guest A -> guest B through two NICs and the switch.
fn netvsp_switch(n: u64, len: usize) -> f64 {
    let switch = Switch::new();
    let (mut ha, mut a) = up(Box::new(switch.port()), A);
    let (mut hb, mut b) = up(Box::new(switch.port()), B);
    let f = frame(len);
    let (mut left, mut got) = (n, 0u64);
    let start = Instant::now();
    while got < n {
        send_burst(&mut a, &f, &mut left);
        ha.serve();
        a.poll().unwrap();
        hb.serve();
        b.poll().unwrap();
        while b.receive_frame().is_some() {
            got += 1;
        }
    }
    start.elapsed().as_secs_f64()
}

/// Seconds for the same frames port to port on the switch, no NIC.
fn switch_direct(n: u64, len: usize) -> f64 {
    let switch = Switch::new();
    let (mut pa, mut pb) = (switch.port(), switch.port());
    let f = frame(len);
    let mut buf = vec![0u8; 2048];
    // B speaks first so the switch knows where it is, as in the NIC run.
    pb.transmit(&[A, B].concat());
    pa.receive(&mut buf);
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        for _ in 0..64.min(n - got) {
            pa.transmit(&f);
        }
        while pb.receive(&mut buf).is_some() {
            got += 1;
        }
    }
    start.elapsed().as_secs_f64()
}

/// A TAP device that is up (writes to a down one fail).
fn tap(name: &str) -> Tap {
    let tap = Tap::open(name).unwrap();
    let ok = std::process::Command::new("ip")
        .args(["link", "set", tap.name(), "up"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip link set {name} up");
    tap
}

/// (netvsp, raw) seconds to push `n` frames into a TAP device.
fn tap_pair(n: u64, len: usize) -> (f64, f64) {
    let f = frame(len);
    let mut raw = tap("nvspraw0");
    let start = Instant::now();
    let sent = (0..n).filter(|_| raw.transmit(&f)).count() as u64;
    let raw_secs = start.elapsed().as_secs_f64();
    assert_eq!(sent, n, "raw TAP writes failed");

    let (mut host, mut c) = up(Box::new(tap("nvspbench0")), A);
    let sections = c.free_send_sections();
    let mut left = n;
    let start = Instant::now();
    while left > 0 || c.free_send_sections() < sections {
        send_burst(&mut c, &f, &mut left);
        host.serve();
        c.poll().unwrap();
    }
    assert_eq!(host.nic.stats.tx_frames, n, "netvsp TAP writes failed");
    (start.elapsed().as_secs_f64(), raw_secs)
}

fn line(what: &str, n: u64, len: usize, secs: f64) -> f64 {
    let pps = n as f64 / secs;
    println!(
        "  {what:<34} {:>10.0} packets/s {:>9.1} MB/s",
        pps,
        pps * len as f64 / 1e6
    );
    pps
}

/// target/release/, with the host-sim PD images built in it.
fn image_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--bins"]);
    for p in ["netvsp", "hvcall-pd", "synic-pd", "vmbus-server"] {
        cmd.args(["-p", p]);
    }
    let ok = cmd
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "building the host-sim images");
    profile
}

/// Packets/s guest A received while both guests sent `n` frames of `len` bytes
/// to each other through the whole host-sim system.
fn hostsim_pair(dir: &Path, n: u64, len: usize) -> f64 {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/systems/net_pair.xml"
    );
    let system = sdf::load(Path::new(path)).unwrap_or_else(|d| panic!("{d}"));
    let opts = hostsim::SimOptions {
        search_paths: vec![dir.to_path_buf()],
        timeout: Some(Duration::from_secs(600)),
        echo: false,
        env: vec![
            ("NET_FRAMES".into(), n.to_string().into()),
            ("NET_FRAME_LEN".into(), len.to_string().into()),
        ],
        region_files: Vec::new(),
    };
    let outcome = hostsim::Simulation::launch(&system, &opts)
        .unwrap()
        .wait()
        .unwrap();
    let pass = outcome
        .stdout_of("guest_a")
        .find_map(|l| l.strip_prefix("net_guest: PASS: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("guest_a did not pass: {:#?}", outcome.log));
    // "<n> frames each way; <pps> frames/s, ..."
    pass.split("; ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {pass:?}"))
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some();
    let n: u64 = if quick { 2_000 } else { 300_000 };
    let sim_n: u64 = if quick { 2_000 } else { 100_000 };
    let dir = image_dir();
    let mut sims = Vec::new();
    for len in [64usize, 1514] {
        println!("netvsp throughput, {len}-byte frames, {n} frames:");
        let nic = line(
            "guest->netvsp->switch->netvsp->guest",
            n,
            len,
            netvsp_switch(n, len),
        );
        let sw = line("switch port->port", n, len, switch_direct(n, len));
        println!("  netvsp/switch ratio {:.3}", nic / sw);
        let pps = hostsim_pair(&dir, sim_n, len);
        let sim = line(
            &format!("host-sim, both ways, {sim_n} each"),
            sim_n,
            len,
            sim_n as f64 / pps,
        );
        println!("  host-sim/switch ratio {:.3}", sim / sw);
        sims.push(sim);
    }
    // The TAP comparison runs in a thread that moved into its own namespace.
    let t = std::thread::spawn(move || {
        // SAFETY: unshare takes flags only and moves this thread alone.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            println!("TAP comparison skipped: no network namespace (needs root)");
            return;
        }
        for (len, sim) in [64usize, 1514].into_iter().zip(sims) {
            println!("netvsp over TAP, {len}-byte frames, {n} frames:");
            let (nic, raw) = tap_pair(n, len);
            let nic = line("guest->netvsp->tap", n, len, nic);
            let raw = line("tap write", n, len, raw);
            println!("  netvsp/tap ratio {:.3}", nic / raw);
            println!("  host-sim/tap ratio {:.3}", sim / raw);
        }
    });
    t.join().unwrap();
}
