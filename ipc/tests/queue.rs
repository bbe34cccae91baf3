//! Single-threaded behaviour of the SPSC queue: a model check against a VecDeque,
//! the u32 wrap, construction errors, and a hostile peer scribbling on the header.
#![allow(clippy::unwrap_used)] // test and bench helpers outside #[test] fns

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;

use ipc::queue::{QueueHeader, HEADER_SIZE};
use ipc::{Consumer, Perms, Producer, Queue, QueueError, Region, TryEnqueueError};
use proptest::prelude::*;

#[path = "common/item.rs"]
mod common_item;
use common_item::{item, Item};

/// Zeroed memory for a queue of `capacity` items, read-write. Leaked so the region
/// outlives this helper: about 1 KiB a queue here, about 1 MiB over all proptest cases.
fn queue_region(capacity: u32) -> Region<'static> {
    let bytes = Queue::<Item>::layout_size(capacity).unwrap();
    let words: Vec<AtomicU64> = (0..bytes.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
    Region::from_atomics(words.leak(), Perms::RW)
}

const TAIL: usize = std::mem::offset_of!(QueueHeader, tail);
const HEAD: usize = std::mem::offset_of!(QueueHeader, head);
const CONSUMER_WANTS: usize = std::mem::offset_of!(QueueHeader, consumer_wants_signal);

fn is_peer_misbehaved<T>(r: &Result<T, QueueError>) -> bool {
    matches!(r, Err(QueueError::PeerMisbehaved { .. }))
}

#[derive(Clone, Debug)]
enum Op {
    Enqueue,
    Dequeue,
    EnqueueBatch(usize),
    DequeueBatch(usize),
    ConsumerSleeps,
    ProducerSleeps,
    Reattach,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Enqueue),
        4 => Just(Op::Dequeue),
        3 => (0usize..80).prop_map(Op::EnqueueBatch),
        3 => (0usize..80).prop_map(Op::DequeueBatch),
        1 => Just(Op::ConsumerSleeps),
        1 => Just(Op::ProducerSleeps),
        1 => Just(Op::Reattach),
    ]
}

fn start_index() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        (0u32..300).prop_map(|k| u32::MAX - k),
        any::<u32>(),
    ]
}

/// Runs `ops` against the queue and a VecDeque side by side. Items carry unique,
/// increasing sequence numbers, so equality with the model at every dequeue is no
/// loss, no duplication and FIFO order at once. The signal flags are modelled too:
/// a side that prepared to sleep must be told to by exactly the next transfer.
fn run_model(capacity: u32, start: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let region = queue_region(capacity);
    Queue::<Item>::init_at_index(&region, capacity, start).unwrap();
    let mut producer = Producer::<Item>::new(region, capacity).unwrap();
    let mut consumer = Consumer::<Item>::new(region, capacity).unwrap();
    let cap = capacity as usize;

    let mut model = VecDeque::new();
    let mut next = 0u32;
    let mut consumer_asleep = false;
    let mut producer_asleep = false;

    for op in ops {
        let (enqueued, dequeued) = match *op {
            Op::Enqueue => {
                let r = producer.try_enqueue(item(next));
                if model.len() < cap {
                    prop_assert_eq!(r, Ok(()));
                    model.push_back(next);
                    next += 1;
                    (1, 0)
                } else {
                    prop_assert_eq!(r, Err(TryEnqueueError::Full(item(next))));
                    (0, 0)
                }
            }
            Op::Dequeue => {
                let got = consumer.dequeue().unwrap();
                prop_assert_eq!(got, model.pop_front().map(item));
                (0, usize::from(got.is_some()))
            }
            Op::EnqueueBatch(n) => {
                let values: Vec<Item> = (next..next + n as u32).map(item).collect();
                let done = producer.enqueue_batch(&values).unwrap();
                prop_assert_eq!(done, n.min(cap - model.len()));
                model.extend(next..next + done as u32);
                next += done as u32;
                (done, 0)
            }
            Op::DequeueBatch(n) => {
                let mut out = vec![item(u32::MAX); n];
                let done = consumer.dequeue_batch(&mut out).unwrap();
                prop_assert_eq!(done, n.min(model.len()));
                for got in &out[..done] {
                    prop_assert_eq!(Some(*got), model.pop_front().map(item));
                }
                // Slots past the count are left alone.
                prop_assert!(out[done..].iter().all(|i| *i == item(u32::MAX)));
                (0, done)
            }
            Op::ConsumerSleeps => {
                consumer_asleep = consumer.prepare_to_sleep().unwrap();
                prop_assert_eq!(consumer_asleep, model.is_empty());
                (0, 0)
            }
            Op::ProducerSleeps => {
                producer_asleep = producer.prepare_to_sleep().unwrap();
                prop_assert_eq!(producer_asleep, model.len() == cap);
                (0, 0)
            }
            Op::Reattach => {
                producer = Producer::new(region, capacity).unwrap();
                consumer = Consumer::new(region, capacity).unwrap();
                (0, 0)
            }
        };
        if enqueued > 0 {
            prop_assert_eq!(producer.take_signal_request(), consumer_asleep);
            consumer_asleep = false;
        }
        if dequeued > 0 {
            prop_assert_eq!(consumer.take_signal_request(), producer_asleep);
            producer_asleep = false;
        }
        prop_assert_eq!(consumer.len().unwrap() as usize, model.len());
        prop_assert_eq!(producer.free_slots().unwrap() as usize, cap - model.len());
        let tail: u32 = region.read(TAIL).unwrap();
        let head: u32 = region.read(HEAD).unwrap();
        prop_assert_eq!(tail, start.wrapping_add(next));
        prop_assert_eq!(tail.wrapping_sub(head) as usize, model.len());
    }
    Ok(())
}

#[test]
fn indices_wrap_across_u32_max() {
    let capacity = 4;
    let region = queue_region(capacity);
    Queue::<Item>::init_at_index(&region, capacity, u32::MAX - 1).unwrap();
    let mut p = Producer::<Item>::new(region, capacity).unwrap();
    let mut c = Consumer::<Item>::new(region, capacity).unwrap();

    // The batch straddles both the slot-array end and the index wrap.
    let values: Vec<Item> = (0..4).map(item).collect();
    assert_eq!(p.enqueue_batch(&values).unwrap(), 4);
    assert_eq!(region.read::<u32>(TAIL).unwrap(), 2);
    assert!(matches!(
        p.try_enqueue(item(4)),
        Err(TryEnqueueError::Full(_))
    ));

    let mut out = [item(0); 3];
    assert_eq!(c.dequeue_batch(&mut out).unwrap(), 3);
    assert_eq!(out.to_vec(), values[..3].to_vec());
    assert_eq!(region.read::<u32>(HEAD).unwrap(), 1);

    for seq in 4..4 + 1000 {
        p.try_enqueue(item(seq)).unwrap();
        assert_eq!(c.dequeue().unwrap(), Some(item(seq - 1)));
    }
    assert_eq!(c.dequeue().unwrap(), Some(item(1003)));
    assert_eq!(c.dequeue().unwrap(), None);
}

#[test]
fn construction_rejects_bad_regions_and_capacities() {
    for bad in [0u32, 3, 6, 100, u32::MAX] {
        assert_eq!(
            Queue::<Item>::layout_size(bad),
            Err(QueueError::BadCapacity(bad))
        );
    }
    assert_eq!(Queue::<Item>::layout_size(8), Ok(HEADER_SIZE + 8 * 12));
    assert!(Queue::<[u8; 1 << 40]>::layout_size(1 << 31).is_err());

    let region = queue_region(8);
    let needed = Queue::<Item>::layout_size(8).unwrap();

    let short = region.subregion(0, needed - 1).unwrap();
    assert_eq!(
        Producer::<Item>::new(short, 8).unwrap_err(),
        QueueError::RegionTooSmall {
            needed,
            len: needed - 1
        }
    );
    assert!(matches!(
        Consumer::<Item>::new(short, 8),
        Err(QueueError::RegionTooSmall { .. })
    ));

    let shifted = region
        .subregion(4, Queue::<Item>::layout_size(4).unwrap())
        .unwrap();
    assert!(Producer::<Item>::new(shifted, 4).is_ok());

    let read_only = region.restrict(Perms::R);
    assert_eq!(
        Consumer::<Item>::new(read_only, 8).unwrap_err(),
        QueueError::ReadOnly
    );
    assert_eq!(
        Queue::<Item>::init(&read_only, 8),
        Err(QueueError::ReadOnly)
    );
    assert_eq!(
        Producer::<Item>::new(region, 7).unwrap_err(),
        QueueError::BadCapacity(7)
    );
}

#[test]
fn misaligned_region_is_an_error() {
    let region = queue_region(16);
    let len = Queue::<Item>::layout_size(4).unwrap();
    for offset in [1, 2, 3, 5] {
        let sub = region.subregion(offset, len).unwrap();
        assert_eq!(
            Producer::<Item>::new(sub, 4).unwrap_err(),
            QueueError::Misaligned {
                address: region.base_address() + offset
            }
        );
    }
}

#[test]
fn consumer_rejects_a_tail_past_capacity() {
    let region = queue_region(8);
    let mut c = Consumer::<Item>::new(region, 8).unwrap();
    region.write(TAIL, &9u32).unwrap();
    assert!(is_peer_misbehaved(&c.dequeue()));
    assert!(is_peer_misbehaved(&c.dequeue_batch(&mut [item(0); 4])));
    assert!(is_peer_misbehaved(&c.len()));
    assert!(is_peer_misbehaved(&c.prepare_to_sleep()));
    // Exactly full is legal.
    region.write(TAIL, &8u32).unwrap();
    assert_eq!(c.len(), Ok(8));
    // Attaching to a corrupt queue is refused too.
    region.write(TAIL, &u32::MAX).unwrap();
    assert!(is_peer_misbehaved(&Consumer::<Item>::new(region, 8)));
}

#[test]
fn consumer_rejects_a_tail_moving_backwards() {
    let region = queue_region(8);
    let mut p = Producer::<Item>::new(region, 8).unwrap();
    let mut c = Consumer::<Item>::new(region, 8).unwrap();
    p.enqueue_batch(&[item(0), item(1), item(2), item(3)])
        .unwrap();
    assert_eq!(c.dequeue().unwrap(), Some(item(0)));
    // Entries 1..4 were seen published; taking back two of them is a lie, even though
    // the new tail is still ahead of head.
    region.write(TAIL, &2u32).unwrap();
    assert!(is_peer_misbehaved(&c.len()));
    // Behind head altogether.
    region.write(TAIL, &0u32).unwrap();
    assert!(is_peer_misbehaved(&c.len()));
    // Our own head is never re-read: a peer moving it changes nothing for us.
    region.write(TAIL, &4u32).unwrap();
    region.write(HEAD, &3u32).unwrap();
    assert_eq!(c.dequeue().unwrap(), Some(item(1)));
    assert_eq!(region.read::<u32>(HEAD).unwrap(), 2);
}

#[test]
fn producer_rejects_impossible_heads() {
    let region = queue_region(4);
    let mut p = Producer::<Item>::new(region, 4).unwrap();
    p.enqueue_batch(&[item(0), item(1), item(2)]).unwrap();
    // Consuming more than was published.
    region.write(HEAD, &4u32).unwrap();
    assert!(is_peer_misbehaved(&p.free_slots()));
    region.write(HEAD, &2u32).unwrap();
    assert_eq!(p.free_slots(), Ok(3));
    // Head going back would let us overwrite entries the consumer has not read.
    region.write(HEAD, &1u32).unwrap();
    assert!(is_peer_misbehaved(&p.free_slots()));
    assert!(matches!(
        p.enqueue_batch(&[item(3); 8]),
        Err(QueueError::PeerMisbehaved { .. })
    ));
    // Room the last valid head already showed is used without re-reading head...
    assert_eq!(p.try_enqueue(item(9)), Ok(()));
    // ...but the next read of head checks it again.
    assert!(is_peer_misbehaved(&p.prepare_to_sleep()));
}

#[test]
fn any_nonzero_flag_is_a_request_and_is_consumed() {
    let region = queue_region(4);
    let mut p = Producer::<Item>::new(region, 4).unwrap();
    region.write(CONSUMER_WANTS, &0xdead_beefu32).unwrap();
    p.try_enqueue(item(0)).unwrap();
    assert!(p.take_signal_request());
    assert_eq!(region.read::<u32>(CONSUMER_WANTS).unwrap(), 0);
    assert!(!p.take_signal_request());
}

#[derive(Clone, Debug)]
enum Hostile {
    Producer(Op),
    Consumer(Op),
    /// The peer writes any value to any header word (offset = word index * 64).
    Scribble {
        word: usize,
        value: u32,
    },
    /// The peer rewrites entry bytes under us.
    Garble {
        offset: usize,
        byte: u8,
    },
}

fn hostile() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        3 => op().prop_map(Hostile::Producer),
        3 => op().prop_map(Hostile::Consumer),
        2 => (0usize..4, prop_oneof![any::<u32>(), 0u32..40]).prop_map(|(word, value)| Hostile::Scribble { word, value }),
        1 => (0usize..2048, any::<u8>()).prop_map(|(offset, byte)| Hostile::Garble { offset, byte }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn queue_matches_a_fifo_model(
        capacity in (0u32..=6).prop_map(|e| 1u32 << e),
        start in start_index(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run_model(capacity, start, &ops)?;
    }

    /// Whatever the peer writes, each end either works or reports PeerMisbehaved:
    /// no panic, no access outside the region (the region is exactly layout_size
    /// bytes, and every access is bounds-checked by Region, so an escape would have
    /// to show up as QueueError::Region, which is asserted never to happen).
    #[test]
    fn hostile_header_writes_never_panic_or_escape(
        capacity in (0u32..=5).prop_map(|e| 1u32 << e),
        start in start_index(),
        steps in prop::collection::vec(hostile(), 1..200),
    ) {
        let full = queue_region(capacity);
        let region = full.subregion(0, Queue::<Item>::layout_size(capacity).unwrap()).unwrap();
        Queue::<Item>::init_at_index(&region, capacity, start).unwrap();
        let mut p = Producer::<Item>::new(region, capacity).unwrap();
        let mut c = Consumer::<Item>::new(region, capacity).unwrap();
        let ok_or_peer = |r: Result<usize, QueueError>| -> Result<(), TestCaseError> {
            match r {
                Ok(n) => prop_assert!(n <= capacity as usize),
                Err(e) => prop_assert!(matches!(e, QueueError::PeerMisbehaved { .. }), "{e}"),
            }
            Ok(())
        };
        for step in steps {
            match step {
                Hostile::Producer(op) => match op {
                    Op::Enqueue => match p.try_enqueue(item(1)) {
                        Ok(()) | Err(TryEnqueueError::Full(_)) => {}
                        Err(TryEnqueueError::Queue(e)) => ok_or_peer(Err(e))?,
                    },
                    Op::EnqueueBatch(n) => ok_or_peer(p.enqueue_batch(&vec![item(2); n]))?,
                    Op::ProducerSleeps | Op::ConsumerSleeps => ok_or_peer(p.prepare_to_sleep().map(usize::from))?,
                    Op::Reattach => match Producer::new(region, capacity) {
                        Ok(fresh) => p = fresh,
                        Err(e) => ok_or_peer(Err(e))?,
                    },
                    Op::Dequeue | Op::DequeueBatch(_) => ok_or_peer(p.free_slots().map(|n| n as usize))?,
                },
                Hostile::Consumer(op) => match op {
                    Op::Dequeue => ok_or_peer(c.dequeue().map(|v| usize::from(v.is_some())))?,
                    Op::DequeueBatch(n) => ok_or_peer(c.dequeue_batch(&mut vec![item(0); n]))?,
                    Op::ProducerSleeps | Op::ConsumerSleeps => ok_or_peer(c.prepare_to_sleep().map(usize::from))?,
                    Op::Reattach => match Consumer::new(region, capacity) {
                        Ok(fresh) => c = fresh,
                        Err(e) => ok_or_peer(Err(e))?,
                    },
                    Op::Enqueue | Op::EnqueueBatch(_) => ok_or_peer(c.len().map(|n| n as usize))?,
                },
                Hostile::Scribble { word, value } => {
                    // Small values land near the real indices, where checks are subtle.
                    let value = if value < 40 { start.wrapping_add(value) } else { value };
                    region.write(word * 64, &value).unwrap();
                }
                Hostile::Garble { offset, byte } => {
                    let entries = region.len() - HEADER_SIZE;
                    region.write(HEADER_SIZE + offset % entries, &byte).unwrap();
                }
            }
            let _ = p.take_signal_request();
            let _ = c.take_signal_request();
        }
    }
}
