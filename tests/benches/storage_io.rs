//! Disk I/O through the whole host-sim system against the same I/O on the same file
//! directly. The root system.xml runs with its disk (`disk0`) backed by an image
//! file; the guest PD times requests that move no data (TEST UNIT READY: the path's
//! own cost), sequential 64 KiB writes and reads and random 4 KiB reads (queue
//! depths 1 and 8), each request going guest ring -> HvSignalEvent ->
//! hvcall-pd -> storvsp PD (pread/pwrite on the image, straight into the guest's
//! pages) -> completion -> synic-pd -> guest interrupt. Then this process does the
//! same requests with pread/pwrite on the same file, and prints both and the ratio.
//!
//! `cargo bench -p system-tests --bench storage_io`; `QUICK=1` moves 2 MiB per run
//! only, to check that it works.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use hostsim::SimExit;

const DISK_REGION: &str = "disk0";

/// One timed run: (name, queue depth, ops, bytes, ns, [signals, waits]).
type Run = (String, u64, u64, u64, u128, [u64; 2]);

fn parse(line: &str) -> Option<Run> {
    // "guest_sim: bench <name> qd<n>: <ops> ops, <bytes> bytes, <ns> ns,
    //  <s> signals, <w> waits"
    let rest = line.strip_prefix("guest_sim: bench ")?;
    let (head, tail) = rest.split_once(": ")?;
    let (name, qd) = head.split_once(" qd")?;
    let nums: Vec<&str> = tail.split(' ').collect();
    Some((
        name.to_string(),
        qd.parse().ok()?,
        nums.first()?.parse().ok()?,
        nums.get(2)?.parse().ok()?,
        nums.get(4)?.parse().ok()?,
        [nums.get(6)?.parse().ok()?, nums.get(8)?.parse().ok()?],
    ))
}

fn host_sim(image: &Path, mib: u32) -> Vec<Run> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    let system = sdf::load(Path::new(path)).unwrap_or_else(|d| panic!("{d}"));
    let mib = mib.to_string();
    let mut env = vec![
        ("GUEST_SIM_SCENARIO", "storage-bench"),
        ("GUEST_SIM_BENCH_MIB", mib.as_str()),
    ];
    // The polled path's own cost on a busy host: `HOSTSIM_POLL=always` polls
    // whether or not a CPU is spare, `own` as if each poller had its own CPU
    // (with the PDs under `chrt -f`, what an idle host would show).
    let poll = std::env::var(hostsim::POLL_ENV).ok();
    env.extend(poll.as_deref().map(|v| (hostsim::POLL_ENV, v)));
    let mut opts = common::options(600, &env);
    opts.echo = false;
    opts.region_files = vec![(DISK_REGION.into(), image.to_path_buf())];
    let outcome = common::run(&system, &opts);
    assert_eq!(
        outcome.exit,
        SimExit::Exited {
            pd: "guest".into(),
            code: 0
        },
        "{:#?}",
        outcome.log
    );
    outcome.stdout_of("guest").filter_map(parse).collect()
}

/// The same requests with pread/pwrite on the file, one at a time, over the first
/// `area` bytes; ns.
fn direct(file: &File, name: &str, ops: u64, area: u64) -> u128 {
    let random = name.starts_with("rand");
    let size = if random { 4096u64 } else { 65536 };
    let mut buf = vec![0xa5u8; size as usize];
    let mut seed = 0x5354_4f52_4147_4521u64;
    let t = Instant::now();
    for i in 0..ops {
        let off = if random {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % (area / size) * size
        } else {
            i * size
        };
        if name.starts_with("seq-write") {
            file.write_all_at(&buf, off).expect("pwrite");
        } else {
            file.read_exact_at(&mut buf, off).expect("pread");
        }
    }
    t.elapsed().as_nanos()
}

/// One workload of one round: the host-sim run and the direct time (none for
/// requests that move no data).
#[derive(Clone)]
struct Round {
    run: Run,
    direct_ns: Option<u128>,
}

/// The workload's median round by ratio (by host-sim time without data), with the
/// range of the ratios.
fn print_line(rounds: &mut [Round]) {
    let ratio = |r: &Round| r.direct_ns.map_or(0.0, |d| d as f64 / r.run.4 as f64);
    rounds.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)).then(b.run.4.cmp(&a.run.4)));
    let lowest = rounds.first().map_or(0.0, ratio);
    let highest = rounds.last().map_or(0.0, ratio);
    let Some(median) = rounds.get(rounds.len() / 2) else {
        return;
    };
    let (name, qd, ops, bytes, ns, [signals, waits]) = &median.run;
    let sim_us = *ns as f64 / 1e3 / *ops as f64;
    // Signals sent and interrupts waited for per request: the wake-ups that
    // polling with the rings masked saves.
    let wakes = format!(
        "{:.2}/{:.2}",
        *signals as f64 / *ops as f64,
        *waits as f64 / *ops as f64
    );
    let Some(d) = median.direct_ns else {
        // No data: the round trip guest -> storvsp -> guest alone.
        println!(
            "storage_io: {name:<16} {qd:>3} {ops:>8} {sim_us:>12.2} {:>12} {:>9} {:>9} {:>6} {:>11} {wakes:>11}",
            "-", "", "", "", ""
        );
        return;
    };
    let dir_us = d as f64 / 1e3 / *ops as f64;
    let mbs = |ns: f64| *bytes as f64 / (ns / 1e9) / 1e6;
    let range = format!("{lowest:.2}-{highest:.2}");
    println!(
        "storage_io: {name:<16} {qd:>3} {ops:>8} {sim_us:>12.2} {dir_us:>12.2} {:>9.0} {:>9.0} {:>6.2} {range:>11} {wakes:>11}",
        mbs(*ns as f64),
        mbs(d as f64),
        ratio(median)
    );
}

fn main() {
    let bench = common::Bench::start("storage_io");
    let mib = bench.size(2, 32);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    let system = sdf::load(Path::new(path)).unwrap_or_else(|d| panic!("{d}"));
    let size = system
        .memory_region(DISK_REGION)
        .expect("system.xml has a disk")
        .size;
    // Next to the build output: the same file system a developer's images live on.
    let dir = common::bin_dir().join("storage-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let image = dir.join(format!("disk-{}.img", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&image)
        .expect("image");
    file.set_len(size).expect("image size");
    // Allocate the timed area first, so neither side pays for allocating blocks.
    let area = u64::from(mib) << 20;
    let chunk = vec![0u8; 1 << 20];
    for off in (0..area).step_by(chunk.len()) {
        file.write_all_at(&chunk, off).expect("prefill");
    }
    file.sync_all().expect("sync");

    // Rounds alternate host-sim and direct, and each line is the median round:
    // one pass of 2048 random 4 KiB reads takes about a millisecond, and single
    // passes of the direct side alone ranged 0.5-0.7 us a read on one idle VM.
    let rounds = bench.size(1, 9);
    let mut rounds_of: Vec<Vec<Round>> = Vec::new();
    for round in 0..rounds {
        let runs = host_sim(&image, mib);
        assert_eq!(runs.len(), 8, "expected 4 workloads x 2 queue depths");
        if round == 0 {
            rounds_of = vec![Vec::new(); runs.len()];
        }
        for (i, run) in runs.into_iter().enumerate() {
            // Direct: the same ops, one at a time (pread/pwrite return when done).
            let direct_ns = (run.3 != 0).then(|| direct(&file, &run.0, run.2, area));
            let same = rounds_of[i].first().is_none_or(|r| r.run.0 == run.0);
            assert!(same, "workloads came in another order");
            rounds_of[i].push(Round { run, direct_ns });
        }
    }
    println!(
        "storage_io: {mib} MiB per run, image {} ({} MiB), area preallocated, page cache warm, \
         median of {rounds} alternating rounds",
        image.display(),
        size >> 20
    );
    println!(
        "storage_io: {:<16} {:>3} {:>8} {:>12} {:>12} {:>9} {:>9} {:>6} {:>11} {:>11}",
        "workload",
        "qd",
        "ops",
        "sim us/op",
        "direct us/op",
        "sim MB/s",
        "dir MB/s",
        "ratio",
        "ratio range",
        "sig/wait/op"
    );
    for workload in &mut rounds_of {
        print_line(workload);
    }
    println!("storage_io: ratio = direct time / host-sim time (1.0 = as fast as pread/pwrite on the file)");
    bench.finish();
    drop(file);
    std::fs::remove_file(&image).ok();
}
