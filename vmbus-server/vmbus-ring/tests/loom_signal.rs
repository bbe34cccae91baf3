//! Model check of the ring's signalling protocol with loom: the very functions of
//! `vmbus_ring::signal` that `IncomingRing` and `OutgoingRing` run, over loom
//! atomics standing in for the control page.
//!
//! Checked:
//! - no lost wake-up when the reader polls with `interrupt_mask` set and, before
//!   it sleeps, unmasks and looks again, while the writer signals only on empty to
//!   non-empty with the mask clear; nor when the writer waits for space through
//!   `pending_send_size`. Each side sleeps on a loom `Notify` (an eventfd: a
//!   signal before the wait is kept) whenever the protocol lets it; a lost signal
//!   leaves both asleep and loom reports the deadlock;
//! - every packet arrives once, in order, with the value written.
//!
//! The two `*_probe` tests check each sleep decision alone and fail with an
//! ordinary assertion; their `broken` variants (the reader looks before it
//! unmasks, the writer looks before it asks for space) must fail, so the checks
//! are not vacuous. (loom aborts on a deadlock, which `should_panic` cannot catch.)
//!
//! Run (seconds in release; LOOM_MAX_PREEMPTIONS overrides the bound of 3):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release -p vmbus-ring --test loom_signal
//! ```
#![allow(clippy::unwrap_used)]
#![cfg(loom)]

use std::sync::atomic::Ordering::{self, Acquire, Relaxed};

use ipc::SharedWords;
use loom::sync::atomic::{fence, AtomicU32};
use loom::sync::{Arc, Notify};
use loom::thread;
use vmbus_ring::protocol::FEATURE_PENDING_SEND_SIZE;
use vmbus_ring::signal::{self, Word};

/// Bytes per packet in the model: one ring word, the smallest packet's alignment.
const PACKET: u32 = 8;

struct Control([AtomicU32; 5]);

impl Control {
    fn new() -> Self {
        Self([
            AtomicU32::new(0),
            AtomicU32::new(0),
            AtomicU32::new(0),
            AtomicU32::new(0),
            AtomicU32::new(FEATURE_PENDING_SEND_SIZE),
        ])
    }
}

impl SharedWords<Word> for Control {
    fn load(&self, word: Word, order: Ordering) -> u32 {
        self.0[word as usize].load(order)
    }

    fn store(&self, word: Word, value: u32, order: Ordering) {
        self.0[word as usize].store(value, order);
    }

    fn fence_seq_cst(&self) {
        fence(Ordering::SeqCst);
    }
}

/// A ring of `slots` packets' bytes: both ends' control words, the packet bytes,
/// and the two sides' sleeps.
struct Ring {
    control: Control,
    data: Vec<AtomicU32>,
    to_reader: Notify,
    to_writer: Notify,
}

impl Ring {
    fn new(slots: u32) -> Self {
        Self {
            control: Control::new(),
            data: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            to_reader: Notify::new(),
            to_writer: Notify::new(),
        }
    }

    fn size(&self) -> u32 {
        self.data.len() as u32 * PACKET
    }

    /// Bytes from `from` forward to `to`, as the ring's geometry counts them.
    fn distance(&self, from: u32, to: u32) -> u32 {
        (to + self.size() - from) % self.size()
    }
}

fn value(i: u32) -> u32 {
    0x5a00 + i
}

/// The writer: `packets` packets, one at a time; a full ring (a packet fits only
/// if strictly less than the free space) asks for space and sleeps.
fn writer(ring: &Ring, packets: u32) {
    let c = &ring.control;
    let mut write = 0;
    let mut read = 0;
    let mut asked = false;
    for i in 0..packets {
        loop {
            let free = ring.size() - ring.distance(read, write);
            if PACKET < free {
                break;
            }
            read = signal::request_space(c, PACKET);
            asked = true;
            if PACKET < ring.size() - ring.distance(read, write) {
                continue;
            }
            ring.to_writer.wait();
            read = c.load(Word::ReadIndex, Acquire);
        }
        if asked {
            signal::withdraw_space_request(c);
            asked = false;
        }
        ring.data[(write / PACKET) as usize].store(value(i), Relaxed);
        let before = write;
        write = (write + PACKET) % ring.size();
        if let Some(raw_read) = signal::publish_write(c, write) {
            read = raw_read;
            if signal::writer_must_signal(before, raw_read) {
                ring.to_reader.notify();
            }
        }
    }
}

/// The reader: polls `polls` times with the mask set, then unmasks, looks again
/// and sleeps; reads everything there is, one commit per batch.
fn reader(ring: &Ring, packets: u32, polls: u32) {
    let c = &ring.control;
    let mut read = 0;
    let mut got = 0;
    while got < packets {
        signal::mask(c);
        let mut write = read;
        for _ in 0..polls {
            write = c.load(Word::WriteIndex, Acquire);
            if write != read {
                break;
            }
        }
        if write == read {
            write = signal::unmask(c);
            if write == read {
                ring.to_reader.wait();
                continue;
            }
        }
        let before = read;
        while read != write {
            let v = ring.data[(read / PACKET) as usize].load(Relaxed);
            assert_eq!(v, value(got), "lost, duplicated or stale packet");
            got += 1;
            read = (read + PACKET) % ring.size();
        }
        if let Some((pending, raw_write)) = signal::publish_read(c, read) {
            let free_now = ring.size() - ring.distance(read, raw_write);
            let freed = ring.distance(before, read);
            if signal::reader_must_signal(free_now, freed, pending) {
                ring.to_writer.notify();
            }
        }
    }
    assert_eq!(c.load(Word::WriteIndex, Acquire), read, "more than sent");
}

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder
}

fn check(slots: u32, packets: u32, polls: u32) {
    builder().check(move || {
        let ring = Arc::new(Ring::new(slots));
        let w = {
            let ring = ring.clone();
            thread::spawn(move || writer(&ring, packets))
        };
        reader(&ring, packets, polls);
        w.join().unwrap();
    });
}

#[test]
fn a_polling_reader_and_a_writer_never_both_sleep() {
    // Three slots hold two packets: the writer also waits for space.
    check(3, 3, 1);
}

#[test]
fn a_reader_that_sleeps_at_once_is_still_woken() {
    check(3, 3, 0);
}

#[test]
fn a_roomy_ring_needs_no_space_requests() {
    check(8, 3, 2);
}

/// The reader parks on an empty ring while the writer commits one packet. Lost
/// wake-up: the reader decided to sleep and the writer not to signal. `broken`
/// looks at the write index before unmasking.
fn reader_sleep_probe(broken: bool) {
    builder().check(move || {
        let ring = Arc::new(Ring::new(4));
        signal::mask(&ring.control);
        let w = {
            let ring = ring.clone();
            thread::spawn(move || {
                signal::publish_write(&ring.control, PACKET)
                    .is_some_and(|read| signal::writer_must_signal(0, read))
            })
        };
        let sleeps = if broken {
            let write = ring.control.load(Word::WriteIndex, Acquire);
            signal::unmask(&ring.control);
            write == 0
        } else {
            signal::unmask(&ring.control) == 0
        };
        let signals = w.join().unwrap();
        assert!(
            !sleeps || signals,
            "the reader sleeps and is never signalled"
        );
    });
}

/// The writer, with the ring full, asks for space while the reader takes one
/// packet. `broken` looks at the read index before asking.
fn writer_sleep_probe(broken: bool) {
    builder().check(move || {
        let ring = Arc::new(Ring::new(2));
        let c = &ring.control;
        // One packet in a two-packet ring: full (one more would fill it exactly).
        c.store(Word::WriteIndex, PACKET, Relaxed);
        let r = {
            let ring = ring.clone();
            thread::spawn(move || {
                signal::publish_read(&ring.control, PACKET).is_some_and(|(pending, write)| {
                    let free_now = ring.size() - ring.distance(PACKET, write);
                    signal::reader_must_signal(free_now, PACKET, pending)
                })
            })
        };
        let read = if broken {
            let read = c.load(Word::ReadIndex, Acquire);
            signal::request_space(c, PACKET);
            read
        } else {
            signal::request_space(c, PACKET)
        };
        let sleeps = PACKET >= ring.size() - ring.distance(read, PACKET);
        let signals = r.join().unwrap();
        assert!(
            !sleeps || signals,
            "the writer sleeps and is never signalled"
        );
    });
}

#[test]
fn a_parking_reader_is_seen_or_sees() {
    reader_sleep_probe(false);
}

#[test]
#[should_panic(expected = "never signalled")]
fn a_reader_looking_before_it_unmasks_can_sleep_forever() {
    reader_sleep_probe(true);
}

#[test]
fn a_writer_waiting_for_space_is_seen_or_sees() {
    writer_sleep_probe(false);
}

#[test]
#[should_panic(expected = "never signalled")]
fn a_writer_looking_before_it_asks_can_sleep_forever() {
    writer_sleep_probe(true);
}
