//! Per-packet cost of the ring against the cheapest thing that could move the same
//! bytes: two memcpys (payload into the ring's slot, slot out into a buffer) at the
//! offsets the ring would use. One thread, 256 KiB data area, in-band packets with
//! completion requested; each packet is written, committed, read, copied out and
//! committed. The ratio (memcpy time / ring time, higher is better) is what the
//! README's benchmark table and issue 16 quote; both sides run in the same process
//! and the same run, best of five rounds each.
//!
//! `cargo bench -p vmbus-ring --bench ring_packet`; `QUICK=1` for a ~1 s run.
//! (OpenVMM's vmbus_ring was measured with this same loop in a harness outside the
//! tree; CI has no OpenVMM checkout, so only our side runs here.)

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use ipc::{Perms, Region};
use vmbus_ring::protocol::PAGE_SIZE;
use vmbus_ring::{in_band_packet_size, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing};
use vmbus_ring::{RegionRingMem, RingMem};

const DATA_LEN: usize = 256 * 1024;
const DESCRIPTOR_LEN: usize = 16;

/// The ring's own work for `packets` packets of `size` bytes.
fn ring(size: usize, packets: u64) -> Duration {
    let words: Vec<AtomicU64> = (0..(PAGE_SIZE + DATA_LEN) / 8)
        .map(|_| AtomicU64::new(0))
        .collect();
    let mem = RegionRingMem::new(Region::from_atomics(&words, Perms::RW)).expect("ring memory");
    mem.control().initialize();
    let mut tx = OutgoingRing::new(mem).expect("writer");
    let mut rx = IncomingRing::new(mem).expect("reader");
    rx.mask_interrupts();
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut out = vec![0u8; size];
    let start = Instant::now();
    for transaction_id in 0..packets {
        let packet = OutgoingPacket {
            transaction_id,
            completion_requested: true,
            kind: OutgoingKind::InBand,
        };
        tx.write_packet(&packet, &[black_box(&payload[..])])
            .expect("write");
        black_box(tx.commit().expect("commit"));
        let got = rx.read().expect("read");
        rx.copy_from(&got.payload, 0, black_box(&mut out[..]))
            .expect("copy");
        black_box(rx.commit().expect("commit"));
    }
    black_box(&out);
    start.elapsed()
}

/// Copies `src` into `area` at `at`, wrapping at the end as the ring does.
fn copy_in(area: &mut [u8], at: usize, src: &[u8]) {
    let first = (area.len() - at).min(src.len());
    area[at..at + first].copy_from_slice(&src[..first]);
    area[..src.len() - first].copy_from_slice(&src[first..]);
}

fn copy_out(area: &[u8], at: usize, dst: &mut [u8]) {
    let first = (area.len() - at).min(dst.len());
    let rest = dst.len() - first;
    dst[..first].copy_from_slice(&area[at..at + first]);
    dst[first..].copy_from_slice(&area[..rest]);
}

/// The baseline: the payload copied in and out at the same slot offsets.
fn memcpy(size: usize, packets: u64) -> Duration {
    let mut area = vec![0u8; DATA_LEN];
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut out = vec![0u8; size];
    let slot = in_band_packet_size(size);
    let mut at = 0;
    let start = Instant::now();
    for _ in 0..packets {
        let payload_at = (at + DESCRIPTOR_LEN) % DATA_LEN;
        copy_in(black_box(&mut area), payload_at, black_box(&payload));
        copy_out(black_box(&area), payload_at, black_box(&mut out));
        at = (at + slot) % DATA_LEN;
    }
    black_box(&out);
    start.elapsed()
}

fn nanos_per(time: Duration, packets: u64) -> f64 {
    time.as_nanos() as f64 / packets as f64
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0");
    let bytes: u64 = if quick { 64 << 20 } else { 2 << 30 };
    println!(
        "vmbus ring per packet, one thread, {} KiB data area{}",
        DATA_LEN / 1024,
        if quick { " (QUICK)" } else { "" }
    );
    println!(
        "{:>8} {:>12} {:>10} {:>7}",
        "payload", "2x memcpy ns", "ring ns", "ratio"
    );
    for size in [64usize, 1024, 16 * 1024] {
        let packets = (bytes / size as u64).clamp(50_000, 20_000_000);
        let (mut base, mut ours) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            base = base.min(memcpy(size, packets));
            ours = ours.min(ring(size, packets));
        }
        let (base, ours) = (nanos_per(base, packets), nanos_per(ours, packets));
        println!(
            "{:>7}B {:>12.1} {:>10.1} {:>7.3}",
            size,
            base,
            ours,
            base / ours
        );
    }
}
