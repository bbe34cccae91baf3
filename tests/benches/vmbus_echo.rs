//! VMBus packet echo through the whole host-sim system (the root system.xml: the
//! guest writes its ring and signals through hvcall-pd, the echo VSP PD echoes and
//! interrupts through synic-pd, each a process) against the same packets through
//! the same two rings in one thread with no PDs at all (the ring code's cost alone).
//! Prints both per-packet costs and their ratio.
//!
//! `cargo bench -p system-tests --bench vmbus_echo`; `QUICK=1` runs a few packets
//! only, to check that it works.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use guest_sim::echo::body;
use ipc::testing::leaked_region;
use vmbus_ring::{
    IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing, ReadError, RegionRingMem, RingMem,
    WriteError, PAGE_SIZE,
};

/// ns per packet, both rings in one thread: write what fits, echo it, read it back.
fn in_process(n: u64) -> f64 {
    // The guest's geometry: one control page and three data pages per ring.
    let up = RegionRingMem::new(leaked_region(4 * PAGE_SIZE)).expect("ring");
    let down = RegionRingMem::new(leaked_region(4 * PAGE_SIZE)).expect("ring");
    up.control().initialize();
    down.control().initialize();
    let (mut g_tx, mut v_rx) = (
        OutgoingRing::new(up).expect("ring"),
        IncomingRing::new(up).expect("ring"),
    );
    let (mut v_tx, mut g_rx) = (
        OutgoingRing::new(down).expect("ring"),
        IncomingRing::new(down).expect("ring"),
    );
    let packet = |id| OutgoingPacket {
        transaction_id: id,
        completion_requested: false,
        kind: OutgoingKind::InBand,
    };
    let mut scratch = vec![0u8; 4096];
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    while received < n {
        while sent < n {
            match g_tx.write_packet(&packet(sent), &[&body(sent)]) {
                Ok(()) => sent += 1,
                Err(WriteError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let _ = g_tx.commit().expect("commit");
        // The VSP's part.
        loop {
            let p = match v_rx.peek() {
                Ok(p) => p,
                Err(ReadError::Empty) => break,
                Err(e) => panic!("{e}"),
            };
            let len = p.payload.len();
            v_rx.copy_from(&p.payload, 0, &mut scratch[..len])
                .expect("copy");
            match v_tx.write_packet(&packet(p.transaction_id), &[&scratch[..len]]) {
                Ok(()) => v_rx.consume().expect("consume"),
                Err(WriteError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let _ = v_tx.commit().expect("commit");
        let _ = v_rx.commit().expect("commit");
        // The guest's part.
        while let Ok(p) = g_rx.read() {
            assert_eq!(p.transaction_id, received);
            let len = p.payload.len();
            g_rx.copy_from(&p.payload, 0, &mut scratch[..len])
                .expect("copy");
            received += 1;
        }
        let _ = g_rx.commit().expect("commit");
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// ns per packet measured by the guest PD on host-sim.
fn host_sim(n: u64) -> f64 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    let count = n.to_string();
    // "guest_sim: echoed <n> packets (<b> bytes) in <ms> ms ..."
    let line = common::guest_report(path, &[("GUEST_SIM_PACKETS", &count)], "guest_sim: echoed");
    let ms: f64 = line
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad echo line {line:?}"));
    ms * 1e6 / n as f64
}

fn main() {
    let bench = common::Bench::start("vmbus_echo");
    let (n_local, n_sim) = bench.size((2_000, 200), (1_000_000, 200_000));
    in_process(n_local / 10);
    let local = in_process(n_local);
    let sim = host_sim(n_sim);
    println!("vmbus_echo: in-process {local:.1} ns/packet ({n_local} packets, 1-3000 bytes, two rings, one thread)");
    println!("vmbus_echo: host-sim   {sim:.1} ns/packet ({n_sim} packets: guest -> hvcall-pd -> echo VSP -> synic-pd -> guest)");
    println!("vmbus_echo: host-sim / in-process = {:.1}x", sim / local);
    bench.finish();
}
