//! Ring throughput: a writer thread and a reader thread move in-band packets through
//! one ring (256 KiB data area, as two PDs would through their own mappings), against
//! a plain memcpy of the same bytes measured in the same run.
//!
//! `cargo bench -p vmbus-ring --bench ring_throughput`; `QUICK=1` for a ~1-2 s run.
//! Both endpoints poll (no signals): this measures the ring, not wake-up latency.

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::{Duration, Instant};

use ipc::{Perms, Region};
use vmbus_ring::protocol::PAGE_SIZE;
use vmbus_ring::{
    IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing, ReadError, RegionRingMem, RingMem,
    WriteError,
};

const DATA_PAGES: usize = 64; // 256 KiB
const STOP: u64 = u64::MAX;

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

fn packet(transaction_id: u64) -> OutgoingPacket<'static> {
    OutgoingPacket {
        transaction_id,
        completion_requested: false,
        kind: OutgoingKind::InBand,
    }
}

fn send<M: RingMem>(w: &mut OutgoingRing<M>, txid: u64, payload: &[u8]) {
    let mut spins = 0;
    loop {
        match w.write_packet(&packet(txid), &[payload]) {
            Ok(()) => break,
            Err(WriteError::Full { .. }) => backoff(&mut spins),
            Err(e) => panic!("write: {e}"),
        }
    }
    let _signal = w.commit().expect("commit");
}

/// Moves packets of `size` bytes for about `budget`; returns (payload bytes, time).
fn ring_run(size: usize, budget: Duration) -> (u64, Duration) {
    let words: Vec<AtomicU64> = (0..(1 + DATA_PAGES) * PAGE_SIZE / 8)
        .map(|_| AtomicU64::new(0))
        .collect();
    let region = Region::from_atomics(&words, Perms::RW);
    RegionRingMem::new(region)
        .expect("ring memory")
        .control()
        .initialize();

    thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut r = IncomingRing::new(RegionRingMem::new(region).expect("ring"))
                .expect("attach reader");
            // A polling reader masks interrupts, as Linux does while draining.
            r.mask_interrupts();
            let mut buf = vec![0u8; size.next_multiple_of(8)];
            let mut bytes = 0u64;
            let mut since_commit = 0;
            let mut spins = 0;
            let start = Instant::now();
            loop {
                match r.read() {
                    Ok(p) => {
                        spins = 0;
                        if p.transaction_id == STOP {
                            let _ = r.commit().expect("commit");
                            return (bytes, start.elapsed());
                        }
                        let n = r.copy_from(&p.payload, 0, &mut buf).expect("copy");
                        black_box(&buf);
                        bytes += n.min(size) as u64;
                        since_commit += 1;
                        if since_commit == 16 {
                            let _ = r.commit().expect("commit");
                            since_commit = 0;
                        }
                    }
                    Err(ReadError::Empty) => {
                        if since_commit > 0 {
                            let _ = r.commit().expect("commit");
                            since_commit = 0;
                        }
                        backoff(&mut spins);
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
        });
        let mut w =
            OutgoingRing::new(RegionRingMem::new(region).expect("ring")).expect("attach writer");
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let start = Instant::now();
        let mut txid = 0;
        while start.elapsed() < budget {
            for _ in 0..64 {
                send(&mut w, txid, &payload);
                txid += 1;
            }
        }
        send(&mut w, STOP, &[]);
        reader.join().expect("reader thread")
    })
}

/// The same packets written and read back on one thread: the ring's own cost,
/// without cache lines moving between cores.
fn ring_one_thread(size: usize, total: u64) -> Duration {
    let words: Vec<AtomicU64> = (0..(1 + DATA_PAGES) * PAGE_SIZE / 8)
        .map(|_| AtomicU64::new(0))
        .collect();
    let region = Region::from_atomics(&words, Perms::RW);
    let mem = RegionRingMem::new(region).expect("ring memory");
    mem.control().initialize();
    let mut w = OutgoingRing::new(mem).expect("attach writer");
    let mut r = IncomingRing::new(mem).expect("attach reader");
    r.mask_interrupts();
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut buf = vec![0u8; size.next_multiple_of(8)];
    let packets = (total / size as u64).max(1);
    let start = Instant::now();
    for txid in 0..packets {
        send(&mut w, txid, &payload);
        let p = r.read().expect("packet");
        r.copy_from(&p.payload, 0, &mut buf).expect("copy");
        black_box(&buf);
        let _ = r.commit().expect("commit");
    }
    start.elapsed()
}

/// Copies `total` bytes in `size` chunks between two buffers as large as the ring.
fn memcpy_run(size: usize, total: u64) -> Duration {
    let area = DATA_PAGES * PAGE_SIZE;
    let src: Vec<u8> = (0..area).map(|i| i as u8).collect();
    let mut dst = vec![0u8; area];
    let chunks = (total / size as u64).max(1);
    let per_lap = area / size;
    let start = Instant::now();
    for i in 0..chunks {
        let at = (i as usize % per_lap) * size;
        dst[at..at + size].copy_from_slice(black_box(&src[at..at + size]));
        black_box(&dst);
    }
    start.elapsed()
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0");
    let budget = Duration::from_millis(if quick { 250 } else { 2000 });
    println!(
        "vmbus ring throughput, {} KiB data area, writer + reader threads{}",
        DATA_PAGES * PAGE_SIZE / 1024,
        if quick { " (QUICK)" } else { "" }
    );
    println!(
        "{:>8} {:>11} {:>10} {:>12} {:>12} {:>7} {:>12}",
        "payload", "packets/s", "ring MB/s", "memcpy MB/s", "1-thread MB/s", "ratio", "1-thr ratio"
    );
    for size in [64usize, 1024, 16 * 1024] {
        // Warm up both paths so the first size is not penalised.
        ring_run(size, budget / 10);
        let (bytes, ring_time) = ring_run(size, budget);
        let copy_time = memcpy_run(size, bytes);
        let one_time = ring_one_thread(size, bytes);
        let ring = mb_per_s(bytes, ring_time);
        let copy = mb_per_s(bytes, copy_time);
        let one = mb_per_s(bytes, one_time);
        println!(
            "{:>7}B {:>11.0} {:>10.1} {:>12.1} {:>12.1} {:>7.3} {:>12.3}",
            size,
            (bytes / size as u64) as f64 / ring_time.as_secs_f64(),
            ring,
            copy,
            one,
            ring / copy,
            one / copy
        );
    }
}
