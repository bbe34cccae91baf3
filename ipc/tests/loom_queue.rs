//! Model check of the queue's index/flag protocol with loom.
//!
//! Runs `ipc::queue::protocol`, the exact code `Producer`/`Consumer` use, over loom
//! atomics (only the four words and the slot array are swapped out), and explores all
//! interleavings and weak-memory outcomes up to a preemption bound. Checked:
//! - every item arrives once, in order, with the value written (acquire/release make
//!   the relaxed slot copies visible, and a slot is not overwritten before it is read);
//! - no lost wake-up: each side sleeps on a loom `Notify` whenever the protocol says
//!   it may; if a wake-up were lost, both threads would block and loom would report a
//!   deadlock.
//!
//! `sleep_decision_probe` checks the sleep decision alone; with the SeqCst fences
//! switched off it must (and does) fail, so the check is not vacuous. Likewise,
//! publishing `tail` with Relaxed instead of Release fails the value check.
//!
//! Limits of loom to keep in mind: it does not explore load buffering, so it cannot
//! tell whether the producer's Acquire on `head` is needed (it is: it orders the
//! consumer's slot reads before our overwrite); and its modification order for RMWs
//! is imprecise, which is one reason the protocol uses no RMW.
//!
//! Run (about 10 s in release; LOOM_MAX_PREEMPTIONS overrides the default bound of
//! 3; bound 5 also passes but takes minutes):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release -p ipc --test loom_queue
//! ```
#![allow(clippy::unwrap_used)] // test and bench helpers outside #[test] fns
#![cfg(loom)]

use std::sync::atomic::Ordering::{self, Relaxed};

use ipc::queue::protocol::{
    Capacity, ConsumerIndex, Consuming, Index, ProducerIndex, Producing, Role, Word,
};
use ipc::SharedWords;
use loom::sync::atomic::{fence, AtomicU32};
use loom::sync::{Arc, Notify};
use loom::thread;

struct LoomWords {
    words: [AtomicU32; 4],
    fences: bool,
}

impl LoomWords {
    fn new(start: u32, fences: bool) -> Self {
        Self {
            words: [
                AtomicU32::new(start),
                AtomicU32::new(start),
                AtomicU32::new(0),
                AtomicU32::new(0),
            ],
            fences,
        }
    }

    fn word(&self, word: Word) -> &AtomicU32 {
        let i = match word {
            Word::Tail => 0,
            Word::Head => 1,
            Word::ConsumerWantsSignal => 2,
            Word::ProducerWantsSignal => 3,
        };
        &self.words[i]
    }
}

impl SharedWords<Word> for LoomWords {
    fn load(&self, word: Word, order: Ordering) -> u32 {
        self.word(word).load(order)
    }

    fn store(&self, word: Word, value: u32, order: Ordering) {
        self.word(word).store(value, order);
    }

    fn fence_seq_cst(&self) {
        if self.fences {
            fence(Ordering::SeqCst);
        }
    }
}

struct Shared {
    words: LoomWords,
    /// Slots are copied with relaxed accesses, as `Region` copies entries.
    slots: Vec<AtomicU32>,
    to_consumer: Notify,
    to_producer: Notify,
}

#[derive(Copy, Clone, Debug)]
struct Scenario {
    capacity: u32,
    items: u32,
    /// Largest batch per publish/release.
    batch: u32,
    start: u32,
    fences: bool,
}

fn value(i: u32) -> u32 {
    0x5a00 + i
}

/// One end's loop, the same on both sides: sleep (through the protocol's re-check)
/// while there is no room, move up to `batch` entries with `step(index, done, n)`,
/// publish them with one index store, and wake the peer if it asked.
fn run_end<R: Role>(
    s: &Shared,
    sc: Scenario,
    (sleep_on, wake): (&Notify, &Notify),
    mut step: impl FnMut(&Index<R>, u32, u32),
) -> Index<R> {
    let capacity = Capacity::new(sc.capacity).unwrap();
    let mut index = Index::<R>::attach(&s.words, capacity).unwrap();
    let mut done = 0;
    while done < sc.items {
        let room = index.room(&s.words, 1).unwrap();
        if room == 0 {
            if index.prepare_to_sleep(&s.words).unwrap() {
                sleep_on.wait();
            }
            continue;
        }
        let n = room.min(sc.batch).min(sc.items - done);
        step(&index, done, n);
        index.advance(&s.words, n);
        done += n;
        if index.take_signal_request(&s.words) {
            wake.notify();
        }
    }
    index
}

fn producer(s: &Shared, sc: Scenario) {
    let ends = (&s.to_producer, &s.to_consumer);
    run_end::<Producing>(s, sc, ends, |p, next, n| {
        for i in 0..n {
            s.slots[p.slot(i) as usize].store(value(next + i), Relaxed);
        }
    });
}

fn consumer(s: &Shared, sc: Scenario) {
    let ends = (&s.to_consumer, &s.to_producer);
    let mut c = run_end::<Consuming>(s, sc, ends, |c, expected, n| {
        for i in 0..n {
            let got = s.slots[c.slot(i) as usize].load(Relaxed);
            assert_eq!(got, value(expected + i), "lost, duplicated or stale entry");
        }
    });
    assert_eq!(c.refresh(&s.words).unwrap(), 0, "more entries than sent");
}

fn check(sc: Scenario) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        let s = Arc::new(Shared {
            words: LoomWords::new(sc.start, sc.fences),
            slots: (0..sc.capacity).map(|_| AtomicU32::new(0)).collect(),
            to_consumer: Notify::new(),
            to_producer: Notify::new(),
        });
        let p = {
            let s = s.clone();
            thread::spawn(move || producer(&s, sc))
        };
        consumer(&s, sc);
        p.join().unwrap();
    });
}

#[test]
fn single_slot_queue_hands_over_each_item() {
    check(Scenario {
        capacity: 1,
        items: 3,
        batch: 1,
        start: 0,
        fences: true,
    });
}

#[test]
fn batches_fill_and_drain_across_the_index_wrap() {
    check(Scenario {
        capacity: 2,
        items: 4,
        batch: 2,
        start: u32::MAX - 1,
        fences: true,
    });
}

#[test]
fn single_items_through_a_two_slot_queue() {
    check(Scenario {
        capacity: 2,
        items: 3,
        batch: 1,
        start: u32::MAX,
        fences: true,
    });
}

/// The sleep decision alone, without blocking: one side prepares to sleep while the
/// other makes the transfer that should wake it. Lost wake-up = the sleeper decided to
/// sleep and the other side decided not to notify. (A deadlock in `check` shows the
/// same bug, but loom aborts the process on a deadlock, which `should_panic` cannot
/// catch; this formulation fails with an ordinary assertion.)
fn sleep_decision_probe(side: Side, fences: bool) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        let start = u32::MAX;
        let capacity = Capacity::new(1).unwrap();
        // Empty when the consumer is the sleeper, full when the producer is.
        let words = LoomWords::new(start, fences);
        if side == Side::Producer {
            words.word(Word::Tail).store(start.wrapping_add(1), Relaxed);
        }
        let words = Arc::new(words);
        let other = {
            let words = words.clone();
            thread::spawn(move || match side {
                Side::Consumer => {
                    let mut p = ProducerIndex::attach(&*words, capacity).unwrap();
                    p.advance(&*words, 1);
                    p.take_signal_request(&*words)
                }
                Side::Producer => {
                    let mut c = ConsumerIndex::attach(&*words, capacity).unwrap();
                    c.advance(&*words, 1);
                    c.take_signal_request(&*words)
                }
            })
        };
        let sleeps = match side {
            Side::Consumer => ConsumerIndex::attach(&*words, capacity)
                .unwrap()
                .prepare_to_sleep(&*words)
                .unwrap(),
            Side::Producer => ProducerIndex::attach(&*words, capacity)
                .unwrap()
                .prepare_to_sleep(&*words)
                .unwrap(),
        };
        let notifies = other.join().unwrap();
        assert!(!sleeps || notifies, "{side:?} sleeps and is never notified");
    });
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Side {
    Consumer,
    Producer,
}

#[test]
fn a_sleeping_consumer_is_always_notified() {
    sleep_decision_probe(Side::Consumer, true);
}

#[test]
fn a_sleeping_producer_is_always_notified() {
    sleep_decision_probe(Side::Producer, true);
}

/// Without the SeqCst fences the Dekker pattern breaks, and loom must find it.
#[test]
#[should_panic(expected = "sleeps and is never notified")]
fn without_fences_a_consumer_wake_up_is_lost() {
    sleep_decision_probe(Side::Consumer, false);
}

#[test]
#[should_panic(expected = "sleeps and is never notified")]
fn without_fences_a_producer_wake_up_is_lost() {
    sleep_decision_probe(Side::Producer, false);
}
