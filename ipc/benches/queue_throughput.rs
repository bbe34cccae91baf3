//! SPSC queue throughput against baselines measured in the same run.
//!
//! A producer thread and a consumer thread move 64-byte messages through an
//! `ipc::Queue` over a `Region` (capacity 512, batch operations, the full signal
//! protocol with real sleeping when a side runs dry). Baselines: a plain memcpy of the
//! same total bytes through a buffer the size of the ring, and std's bounded
//! `mpsc::sync_channel` with the same capacity. Also the queue driven from one thread
//! (enqueue batch, dequeue batch), which isolates the copy and index cost from the
//! cross-core traffic.
//!
//!     cargo bench -p ipc --bench queue_throughput            (a few seconds; ~12 s on a loaded 2-core box)
//!     QUICK=1 cargo bench -p ipc --bench queue_throughput    (smoke test, about 1 s)
#![allow(clippy::unwrap_used)] // test and bench helpers outside #[test] fns

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ipc::queue::protocol::Role;
use ipc::queue::{QueueEnd, QueueEntry};
use ipc::{Consumer, Perms, Producer, Queue, Region};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[repr(C)]
#[derive(Copy, Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Msg {
    seq: u64,
    payload: [u64; 7],
}

const MSG_BYTES: usize = size_of::<Msg>();
const _: () = assert!(MSG_BYTES == 64);
const CAPACITY: u32 = 512;
const BATCH: usize = 32;
/// Polls before falling back to request-signal-and-sleep.
const SPINS: u32 = 200;

fn msg(seq: u64) -> Msg {
    Msg {
        seq,
        payload: [seq; 7],
    }
}

#[path = "../tests/common/notification.rs"]
mod notification;
use notification::Notification;

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    producer_sleeps: u64,
    consumer_sleeps: u64,
}

/// How both ends wait: after each try wake the peer if it asked; when nothing
/// moved, spin a while, then sleep (after the protocol's re-check).
#[derive(Default)]
struct Waiter {
    spins: u32,
    sleeps: u64,
}

impl Waiter {
    fn after<T: QueueEntry, R: Role>(
        &mut self,
        q: &mut QueueEnd<'_, T, R>,
        moved: usize,
        wake: &Notification,
        sleep_on: &Notification,
    ) {
        if moved > 0 {
            self.spins = 0;
            if q.take_signal_request() {
                wake.notify();
            }
        } else if self.spins < SPINS {
            self.spins += 1;
            std::hint::spin_loop();
        } else if q.prepare_to_sleep().unwrap() {
            self.sleeps += 1;
            sleep_on.wait();
        }
    }
}

fn queue_two_threads(messages: u64) -> (Duration, Counts) {
    let bytes = Queue::<Msg>::layout_size(CAPACITY).unwrap();
    let mem: Vec<AtomicU64> = (0..bytes.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
    let region = Region::from_atomics(&mem, Perms::RW);
    Queue::<Msg>::init(&region, CAPACITY).unwrap();
    let to_consumer = Notification::default();
    let to_producer = Notification::default();
    let start = Barrier::new(3);

    thread::scope(|s| {
        let producer = s.spawn(|| {
            let mut q = Producer::<Msg>::new(region, CAPACITY).unwrap();
            let mut batch = [msg(0); BATCH];
            let mut waiter = Waiter::default();
            let mut seq = 0u64;
            start.wait();
            while seq < messages {
                let n = (messages - seq).min(BATCH as u64) as usize;
                for (i, m) in batch[..n].iter_mut().enumerate() {
                    m.seq = seq + i as u64;
                }
                let mut sent = 0;
                while sent < n {
                    let done = q.enqueue_batch(&batch[sent..n]).unwrap();
                    sent += done;
                    waiter.after(&mut q, done, &to_consumer, &to_producer);
                }
                seq += n as u64;
            }
            waiter.sleeps
        });
        let consumer = s.spawn(|| {
            let mut q = Consumer::<Msg>::new(region, CAPACITY).unwrap();
            let mut out = [msg(0); BATCH];
            let mut waiter = Waiter::default();
            let mut expected = 0u64;
            start.wait();
            let t0 = Instant::now();
            while expected < messages {
                let n = q.dequeue_batch(&mut out).unwrap();
                waiter.after(&mut q, n, &to_producer, &to_consumer);
                for m in &out[..n] {
                    assert_eq!(m.seq, expected, "queue lost or reordered a message");
                    expected += 1;
                }
            }
            (t0.elapsed(), waiter.sleeps)
        });
        start.wait();
        let producer_sleeps = producer.join().unwrap();
        let (elapsed, consumer_sleeps) = consumer.join().unwrap();
        (
            elapsed,
            Counts {
                producer_sleeps,
                consumer_sleeps,
            },
        )
    })
}

fn queue_one_thread(messages: u64) -> Duration {
    let bytes = Queue::<Msg>::layout_size(CAPACITY).unwrap();
    let mem: Vec<AtomicU64> = (0..bytes.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
    let region = Region::from_atomics(&mem, Perms::RW);
    let mut p = Producer::<Msg>::new(region, CAPACITY).unwrap();
    let mut c = Consumer::<Msg>::new(region, CAPACITY).unwrap();
    let mut batch = [msg(0); BATCH];
    let mut out = [msg(0); BATCH];
    let t0 = Instant::now();
    let mut seq = 0;
    while seq < messages {
        for (i, m) in batch.iter_mut().enumerate() {
            m.seq = seq + i as u64;
        }
        let n = p.enqueue_batch(&batch).unwrap();
        black_box(p.take_signal_request());
        let got = c.dequeue_batch(&mut out).unwrap();
        black_box(c.take_signal_request());
        assert_eq!((n, got, out[0].seq), (BATCH, BATCH, seq));
        seq += BATCH as u64;
    }
    t0.elapsed()
}

/// The same bytes copied through a ring-sized buffer, as one thread's memcpy.
fn memcpy(messages: u64) -> Duration {
    let ring = CAPACITY as usize * MSG_BYTES;
    let src: Vec<u8> = (0..ring).map(|i| i as u8).collect();
    let mut dst = vec![0u8; ring];
    let rounds = (messages * MSG_BYTES as u64).div_ceil(ring as u64);
    let t0 = Instant::now();
    for _ in 0..rounds {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    t0.elapsed()
}

fn mpsc_channel(messages: u64) -> Duration {
    let (tx, rx) = mpsc::sync_channel::<Msg>(CAPACITY as usize);
    let start = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            start.wait();
            for seq in 0..messages {
                tx.send(msg(seq)).unwrap();
            }
        });
        start.wait();
        let t0 = Instant::now();
        for seq in 0..messages {
            assert_eq!(rx.recv().unwrap().seq, seq);
        }
        t0.elapsed()
    })
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

struct Rate {
    msgs_per_s: f64,
    gb_per_s: f64,
}

fn rate(messages: u64, d: Duration) -> Rate {
    let secs = d.as_secs_f64().max(1e-9);
    Rate {
        msgs_per_s: messages as f64 / secs,
        gb_per_s: (messages * MSG_BYTES as u64) as f64 / secs / 1e9,
    }
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0")
        || std::env::args().any(|a| a == "--quick");
    let (messages, reps) = if quick {
        (300_000u64, 1)
    } else {
        (8u64 << 20, 5)
    };
    let mpsc_messages = messages / 4;

    println!(
        "queue_throughput: {messages} messages x {MSG_BYTES} B, capacity {CAPACITY}, batch {BATCH}, median of {reps}{}",
        if quick { " (QUICK)" } else { "" }
    );

    // Warm up page tables and frequency before timing anything.
    black_box(memcpy(messages / 8));
    black_box(queue_two_threads(messages / 8));

    let mut counts = Counts::default();
    let mut two = Vec::new();
    let mut one = Vec::new();
    let mut copy = Vec::new();
    let mut chan = Vec::new();
    for _ in 0..reps {
        copy.push(memcpy(messages));
        let (d, c) = queue_two_threads(messages);
        two.push(d);
        counts.producer_sleeps += c.producer_sleeps;
        counts.consumer_sleeps += c.consumer_sleeps;
        one.push(queue_one_thread(messages));
        chan.push(mpsc_channel(mpsc_messages));
    }
    let copy = rate(messages, median(copy));
    let two = rate(messages, median(two));
    let one = rate(messages, median(one));
    let chan = rate(mpsc_messages, median(chan));

    let line = |name: &str, r: &Rate| {
        println!(
            "  {name:<28} {:>8.2} Mmsg/s {:>7.2} GB/s   ratio vs memcpy {:.3}",
            r.msgs_per_s / 1e6,
            r.gb_per_s,
            r.gb_per_s / copy.gb_per_s
        );
    };
    line("memcpy (baseline)", &copy);
    line("ipc queue, 2 threads", &two);
    line("ipc queue, 1 thread", &one);
    line("std mpsc::sync_channel", &chan);
    println!(
        "  queue / mpsc: {:.2}x; sleeps over all runs: producer {}, consumer {}",
        two.msgs_per_s / chan.msgs_per_s,
        counts.producer_sleeps,
        counts.consumer_sleeps
    );
}
