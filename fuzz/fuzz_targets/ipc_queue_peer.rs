//! The SPSC queue with a hostile peer: the input is a script of queue operations on
//! both ends interleaved with arbitrary writes to the shared header and entries.
//! Nothing may panic or touch memory outside the queue's region (that would surface
//! as `QueueError::Region`); every error must be `PeerMisbehaved`. Until the first
//! scribble the queue must also behave as a FIFO of the values put in.
#![no_main]

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;

use ipc::queue::HEADER_SIZE;
use ipc::{Consumer, Perms, Producer, Queue, QueueError, Region, TryEnqueueError};
use libfuzzer_sys::fuzz_target;

/// 12 bytes: entries straddle 8-byte words.
type Entry = [u32; 3];

fn entry(seq: u32) -> Entry {
    [seq, !seq, seq.wrapping_mul(0x9e37_79b9)]
}

fn check_err(e: QueueError) {
    assert!(
        matches!(e, QueueError::PeerMisbehaved { .. }),
        "unexpected queue error {e:?}"
    );
}

struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.byte()?;
        }
        Some(u32::from_le_bytes(b))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script(data);
    let (Some(shape), Some(start)) = (script.byte(), script.u32()) else {
        return;
    };
    let capacity = 1u32 << (shape % 6);
    let len = Queue::<Entry>::layout_size(capacity).unwrap();
    let mem: Vec<AtomicU64> = (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
    // Exactly the queue's size, so any stray access is out of bounds.
    let region = Region::from_atomics(&mem, Perms::RW)
        .subregion(0, len)
        .unwrap();
    Queue::<Entry>::init_at_index(&region, capacity, start).unwrap();
    let mut p = Producer::<Entry>::new(region, capacity).unwrap();
    let mut c = Consumer::<Entry>::new(region, capacity).unwrap();

    // FIFO oracle, valid while the header and entries are untouched by the "peer".
    let mut honest = true;
    let mut model = VecDeque::new();
    let mut next = 0u32;

    while let Some(op) = script.byte() {
        match op % 12 {
            0 => match p.try_enqueue(entry(next)) {
                Ok(()) => {
                    model.push_back(next);
                    next += 1;
                }
                Err(TryEnqueueError::Full(v)) => {
                    assert_eq!(v, entry(next));
                    assert!(!honest || model.len() == capacity as usize);
                }
                Err(TryEnqueueError::Queue(e)) => check_err(e),
            },
            1 => match c.dequeue() {
                Ok(v) => {
                    if honest {
                        assert_eq!(v, model.pop_front().map(entry));
                    }
                }
                Err(e) => check_err(e),
            },
            2 => {
                let n = usize::from(script.byte().unwrap_or(0) % 80);
                let values: Vec<Entry> = (next..next + n as u32).map(entry).collect();
                match p.enqueue_batch(&values) {
                    Ok(done) => {
                        assert!(done <= n && done <= capacity as usize);
                        model.extend(next..next + done as u32);
                        next += done as u32;
                    }
                    Err(e) => check_err(e),
                }
            }
            3 => {
                let n = usize::from(script.byte().unwrap_or(0) % 80);
                let mut out = vec![[0u32; 3]; n];
                match c.dequeue_batch(&mut out) {
                    Ok(done) => {
                        assert!(done <= n && done <= capacity as usize);
                        if honest {
                            for v in &out[..done] {
                                assert_eq!(Some(*v), model.pop_front().map(entry));
                            }
                        }
                    }
                    Err(e) => check_err(e),
                }
            }
            4 => match c.prepare_to_sleep() {
                Ok(sleeps) => assert!(!honest || sleeps == model.is_empty()),
                Err(e) => check_err(e),
            },
            5 => match p.prepare_to_sleep() {
                Ok(sleeps) => assert!(!honest || sleeps == (model.len() == capacity as usize)),
                Err(e) => check_err(e),
            },
            6 => {
                let word = usize::from(script.byte().unwrap_or(0) % 4);
                let value = script.u32().unwrap_or(0);
                // Small values land near the real indices, where the checks are subtle.
                let value = if value < 64 { start.wrapping_add(value) } else { value };
                region.write(word * 64, &value).unwrap();
                honest = false;
            }
            7 => {
                let at = usize::from(script.byte().unwrap_or(0));
                let byte = script.byte().unwrap_or(0);
                region
                    .write(HEADER_SIZE + at % (len - HEADER_SIZE), &byte)
                    .unwrap();
                honest = false;
            }
            8 => match Producer::new(region, capacity) {
                Ok(fresh) => p = fresh,
                Err(e) => check_err(e),
            },
            9 => match Consumer::new(region, capacity) {
                Ok(fresh) => c = fresh,
                Err(e) => check_err(e),
            },
            10 => {
                let _ = p.take_signal_request();
            }
            _ => {
                let _ = c.take_signal_request();
            }
        }
    }
});
