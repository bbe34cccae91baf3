//! Two threads, one queue, a million items, and real sleeping: each side blocks on a
//! sticky binary semaphore (the shape of an seL4 notification) whenever the signal
//! protocol lets it. A lost wake-up leaves both sides blocked, which the watchdog
//! turns into a failure instead of a hang.
#![allow(clippy::unwrap_used)] // test and bench helpers outside #[test] fns

use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ipc::queue::protocol::Role;
use ipc::queue::{QueueEnd, QueueEntry};
use ipc::{Consumer, Perms, Producer, Queue, Region};

#[path = "common/item.rs"]
mod common_item;
use common_item::{item, Item};

#[path = "common/notification.rs"]
mod notification;
use notification::Notification;

/// A tiny deterministic generator for batch sizes.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

const ITEMS: u32 = 1_000_000;
const CAPACITY: u32 = 64;
/// Each side pauses once per this many items, so the other must sleep.
const STALL_EVERY: u32 = 100_000;

#[derive(Debug, Default)]
struct SideStats {
    sleeps: u64,
    notifies_sent: u64,
}

/// What either side does after each step, so both follow the signal protocol the
/// same way: wake the peer when it asked, stall now and then so the peer must sleep,
/// and when nothing moved sleep (after the protocol's re-check).
struct Pace {
    stats: SideStats,
    next_stall: u32,
    sleep_on: Arc<Notification>,
    wake: Arc<Notification>,
}

impl Pace {
    fn new(first_stall: u32, sleep_on: &Arc<Notification>, wake: &Arc<Notification>) -> Self {
        Self {
            stats: SideStats::default(),
            next_stall: first_stall,
            sleep_on: sleep_on.clone(),
            wake: wake.clone(),
        }
    }

    fn after_step<T: QueueEntry, R: Role>(
        &mut self,
        q: &mut QueueEnd<T, R>,
        moved: usize,
        done: u32,
    ) {
        if moved > 0 {
            if q.take_signal_request() {
                self.stats.notifies_sent += 1;
                self.wake.notify();
            }
            if done >= self.next_stall {
                self.next_stall += STALL_EVERY;
                thread::sleep(Duration::from_millis(2));
            }
        } else if q.prepare_to_sleep().unwrap() {
            self.stats.sleeps += 1;
            self.sleep_on.wait();
        }
    }
}

#[test]
fn a_million_items_cross_threads_with_signalled_sleeps() {
    let bytes = Queue::<Item>::layout_size(CAPACITY).unwrap();
    let mem: &'static [AtomicU64] = Vec::leak((0..bytes / 8).map(|_| AtomicU64::new(0)).collect());
    let region = Region::from_atomics(mem, Perms::RW);
    // Start near the wrap so the run crosses u32::MAX under concurrency too.
    Queue::<Item>::init_at_index(&region, CAPACITY, u32::MAX - 1000).unwrap();

    let to_consumer = Arc::new(Notification::default());
    let to_producer = Arc::new(Notification::default());
    let (done_tx, done_rx) = mpsc::channel();

    let producer = {
        let mut pace = Pace::new(STALL_EVERY, &to_producer, &to_consumer);
        let done = done_tx.clone();
        thread::spawn(move || {
            let mut q = Producer::<Item>::new(region, CAPACITY).unwrap();
            let mut rng = 0x1234_5678_9abc_def1u64;
            let mut seq = 0u32;
            let mut batch = Vec::with_capacity(32);
            while seq < ITEMS {
                let r = next_rand(&mut rng);
                let sent = if r.is_multiple_of(4) {
                    usize::from(q.try_enqueue(item(seq)).is_ok())
                } else {
                    let n = (1 + (r % 32) as u32).min(ITEMS - seq);
                    batch.clear();
                    batch.extend((seq..seq + n).map(item));
                    q.enqueue_batch(&batch).unwrap()
                };
                seq += sent as u32;
                pace.after_step(&mut q, sent, seq);
            }
            done.send(("producer", pace.stats)).unwrap();
        })
    };

    // The consumer stalls out of step with the producer, so each side in turn
    // finds the queue full or empty.
    let consumer = {
        let mut pace = Pace::new(STALL_EVERY / 2, &to_consumer, &to_producer);
        let done = done_tx;
        thread::spawn(move || {
            let mut q = Consumer::<Item>::new(region, CAPACITY).unwrap();
            let mut rng = 0x0fed_cba9_8765_4321u64;
            let mut expected = 0u32;
            let mut out = [item(0); 32];
            while expected < ITEMS {
                let r = next_rand(&mut rng);
                let got = if r.is_multiple_of(4) {
                    match q.dequeue().unwrap() {
                        Some(v) => {
                            out[0] = v;
                            1
                        }
                        None => 0,
                    }
                } else {
                    let n = 1 + (r % 32) as usize;
                    q.dequeue_batch(&mut out[..n]).unwrap()
                };
                for v in &out[..got] {
                    assert_eq!(*v, item(expected), "lost, duplicated or reordered");
                    expected += 1;
                }
                pace.after_step(&mut q, got, expected);
            }
            assert_eq!(q.dequeue().unwrap(), None, "more items than were sent");
            done.send(("consumer", pace.stats)).unwrap();
        })
    };

    let mut finished = Vec::new();
    for _ in 0..2 {
        match done_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(side) => finished.push(side),
            Err(_) => panic!("no progress for 120 s: a wake-up was lost (finished: {finished:?})"),
        }
    }
    producer.join().unwrap();
    consumer.join().unwrap();
    for (side, stats) in &finished {
        // The stalls above force each side to sleep at least once, so the signal path
        // was really exercised; a side that slept was woken by the other's notify.
        assert!(stats.sleeps > 0, "{side} never slept: {stats:?}");
    }
    let stats = |name: &str| {
        finished
            .iter()
            .find(|(side, _)| *side == name)
            .map(|(_, s)| s)
            .unwrap()
    };
    // Every sleep ended by consuming a notification, and notifications coalesce.
    assert!(stats("consumer").sleeps <= stats("producer").notifies_sent);
    assert!(stats("producer").sleeps <= stats("consumer").notifies_sent);
    eprintln!("{finished:?}");
}
