//! netvsp's data path against the raw backends it sits on, in the same run:
//!
//! - guest A -> netvsp A -> switch -> netvsp B -> guest B (both drivers doing
//!   what hv_netvsc does: send sections, transfer pages, completions), against
//!   the same frames port to port on the switch alone;
//! - guest -> netvsp -> TAP, against the same frames written to the TAP device
//!   directly (in a network namespace of its own; root only).
//!
//! Prints packets/s and MB/s of each and the ratios. `QUICK=1` runs a few frames
//! only, to check that it works.

#![allow(clippy::unwrap_used)]
// unshare(2) for the TAP's network namespace.
#![allow(unsafe_code)]

use std::time::Instant;

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

fn main() {
    let quick = std::env::var_os("QUICK").is_some();
    let n: u64 = if quick { 2_000 } else { 300_000 };
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
    }
    // The TAP comparison runs in a thread that moved into its own namespace.
    let t = std::thread::spawn(move || {
        // SAFETY: unshare takes flags only and moves this thread alone.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            println!("TAP comparison skipped: no network namespace (needs root)");
            return;
        }
        for len in [64usize, 1514] {
            println!("netvsp over TAP, {len}-byte frames, {n} frames:");
            let (nic, raw) = tap_pair(n, len);
            let nic = line("guest->netvsp->tap", n, len, nic);
            let raw = line("tap write", n, len, raw);
            println!("  netvsp/tap ratio {:.3}", nic / raw);
        }
    });
    t.join().unwrap();
}
