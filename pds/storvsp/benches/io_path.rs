//! Side by side in one run: sequential 64 KiB reads and writes and 4 KiB random
//! reads through guest storvsc -> VMBus rings -> storvsp -> image file, against
//! pread/pwrite on the same file. Both sides run on one thread, so the ratio is
//! the CPU cost of the whole path relative to the bare system call.
//!
//! `cargo bench -p storvsp --bench io_path` (QUICK=1 for a short run).

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::vmbus::{rw16, GuestBuf, Machine, Storvsc, Vsp, DATA_PFN, PAGE};
use storvsp::FileBackend;
use storvsp_protocol::DataDirection;

const IMAGE: u64 = 64 << 20;
const RAM_PAGES: usize = 256;
const DATA_GPA: u64 = DATA_PFN * PAGE as u64;

#[derive(Copy, Clone)]
enum Kind {
    SeqRead,
    SeqWrite,
    RandRead,
}

fn ops(kind: Kind, quick: bool) -> (usize, u64) {
    match kind {
        Kind::SeqRead | Kind::SeqWrite => (if quick { 64 } else { 256 }, 64 * 1024),
        Kind::RandRead => (if quick { 500 } else { 4000 }, 4096),
    }
}

fn offsets(kind: Kind, n: usize, size: u64) -> Vec<u64> {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    (0..n as u64)
        .map(|i| match kind {
            Kind::RandRead => rng.below(IMAGE / size) * size,
            _ => (i * size) % IMAGE,
        })
        .collect()
}

fn direct(file: &std::fs::File, kind: Kind, offs: &[u64], size: u64) -> Duration {
    let mut buf = vec![0x5Au8; size as usize];
    let start = Instant::now();
    for &o in offs {
        match kind {
            Kind::SeqWrite => file.write_all_at(&buf, o).expect("pwrite"),
            _ => file.read_exact_at(&mut buf, o).expect("pread"),
        }
    }
    start.elapsed()
}

fn through_vsp(
    guest: &mut Storvsc<'_>,
    vsp: &mut Vsp<'_>,
    kind: Kind,
    offs: &[u64],
    size: u64,
) -> Duration {
    let blocks = (size / 512) as u32;
    let buf = GuestBuf::at(DATA_GPA, size as u32);
    let (op, dir) = match kind {
        Kind::SeqWrite => (0x8A, DataDirection::WRITE),
        _ => (0x88, DataDirection::READ),
    };
    let start = Instant::now();
    for &o in offs {
        let r = guest.srb(vsp, &rw16(op, o / 512, blocks), dir, Some(&buf));
        assert_eq!(r.srb().scsi_status, 0);
    }
    start.elapsed()
}

/// Just the protocol: TEST UNIT READY round trips (no data moves).
fn round_trip(guest: &mut Storvsc<'_>, vsp: &mut Vsp<'_>, n: usize) -> Duration {
    let p = Storvsc::srb_payload(&[0; 6], DataDirection::UNKNOWN, 0);
    let start = Instant::now();
    for _ in 0..n {
        let r = guest.call(vsp, &p, None);
        assert_eq!(r.srb().scsi_status, 0);
    }
    start.elapsed()
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("disk.img");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("image");
    file.set_len(IMAGE).expect("size");
    // Allocate every block first so both sides read from the page cache.
    let chunk = vec![0xA5u8; 1 << 20];
    for o in (0..IMAGE).step_by(chunk.len()) {
        file.write_all_at(&chunk, o).expect("fill");
    }

    let machine = Machine::new(RAM_PAGES);
    let backend = FileBackend::open(&path, false).expect("backend");
    let (mut guest, mut vsp) = machine.parts(Box::new(backend));
    guest.negotiate(&mut vsp);

    println!("storvsp I/O path vs pread/pwrite on the same file (one thread, page cache)");
    println!(
        "{:<22} {:>12} {:>12} {:>8}",
        "workload", "direct MB/s", "storvsp MB/s", "ratio"
    );
    // Short rounds, best of many: the minimum is what the path costs when nothing
    // else competes for the CPU (the build machine is shared).
    let rounds = if quick { 2 } else { 15 };
    for (name, kind) in [
        ("seq read 64 KiB", Kind::SeqRead),
        ("seq write 64 KiB", Kind::SeqWrite),
        ("rand read 4 KiB", Kind::RandRead),
    ] {
        let (n, size) = ops(kind, quick);
        let offs = offsets(kind, n, size);
        let mut best_direct = Duration::MAX;
        let mut best_vsp = Duration::MAX;
        for _ in 0..rounds {
            best_direct = best_direct.min(direct(&file, kind, &offs, size));
            best_vsp = best_vsp.min(through_vsp(&mut guest, &mut vsp, kind, &offs, size));
        }
        let mb = (n as u64 * size) as f64 / 1e6;
        let d = mb / best_direct.as_secs_f64();
        let v = mb / best_vsp.as_secs_f64();
        println!("{name:<22} {d:>12.0} {v:>12.0} {:>8.2}", v / d);
        if matches!(kind, Kind::RandRead) {
            println!(
                "{:<22} {:>10.2} us {:>9.2} us",
                "  per 4 KiB op",
                best_direct.as_secs_f64() * 1e6 / n as f64,
                best_vsp.as_secs_f64() * 1e6 / n as f64
            );
        }
    }
    let n = if quick { 2000 } else { 20000 };
    let t = round_trip(&mut guest, &mut vsp, n);
    println!(
        "{:<22} {:>10.2} us per request (protocol + rings, no data)",
        "TEST UNIT READY",
        t.as_secs_f64() * 1e6 / n as f64
    );
}
