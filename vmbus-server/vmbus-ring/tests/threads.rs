//! Both endpoints on their own threads, sleeping until signalled exactly when the
//! ring says a signal is due. A lost wake-up shows up as a sleeper that times out.

mod common;

use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::{in_band, Backing};
use vmbus_ring::{ReadError, WriteError};

/// A latched event, like a VMBus channel interrupt: a signal sent while nobody waits
/// is kept, so only a signal that was never sent can make a waiter time out.
#[derive(Default)]
struct Event {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    fn signal(&self) {
        *self.set.lock().expect("event lock") = true;
        self.cv.notify_one();
    }

    fn wait(&self, who: &str) {
        let guard = self.set.lock().expect("event lock");
        let (mut guard, timeout) = self
            .cv
            .wait_timeout_while(guard, Duration::from_secs(20), |set| !*set)
            .expect("event lock");
        assert!(!timeout.timed_out(), "{who} was never woken: lost wake-up");
        *guard = false;
    }
}

fn payload(txid: u64) -> Vec<u8> {
    let len = (txid * 7919 % 1500) as usize;
    (0..len).map(|i| (txid as usize + i) as u8).collect()
}

#[test]
fn signalled_endpoints_on_two_threads_never_lose_a_wake_up() {
    // Under Miri (scripts/test-all) every access is checked for races: fewer
    // packets, still many laps of the one-page ring.
    const PACKETS: u64 = if cfg!(miri) { 48 } else { 20_000 };
    let b = Backing::new(1);
    let to_reader = Event::default();
    let to_writer = Event::default();

    thread::scope(|s| {
        s.spawn(|| {
            let mut r = b.reader();
            let mut next = 0u64;
            let mut since_commit = 0;
            'outer: loop {
                r.mask_interrupts();
                loop {
                    match r.read() {
                        Ok(p) => {
                            assert_eq!(p.transaction_id, next, "order");
                            let want = payload(next);
                            let mut got = vec![0; want.len()];
                            assert_eq!(r.copy_from(&p.payload, 0, &mut got).unwrap(), got.len());
                            assert_eq!(got, want);
                            next += 1;
                            since_commit += 1;
                            if since_commit == 3 {
                                since_commit = 0;
                                if r.commit().unwrap() {
                                    to_writer.signal();
                                }
                            }
                            if next == PACKETS {
                                if r.commit().unwrap() {
                                    to_writer.signal();
                                }
                                break 'outer;
                            }
                        }
                        Err(ReadError::Empty) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                since_commit = 0;
                if r.commit().unwrap() {
                    to_writer.signal();
                }
                // Widen the window the re-check exists for: the writer publishes
                // while the mask is still set, so it will not signal.
                if next.is_multiple_of(2) {
                    thread::yield_now();
                }
                if r.unmask_interrupts().unwrap() {
                    continue;
                }
                to_reader.wait("reader");
            }
        });

        let mut w = b.writer();
        for txid in 0..PACKETS {
            let data = payload(txid);
            let mut waited = false;
            loop {
                match w.write_packet(&in_band(txid), &[&data]) {
                    Ok(()) => break,
                    Err(WriteError::Full { needed }) => {
                        waited = true;
                        if w.set_pending_send_size(needed).unwrap() {
                            continue;
                        }
                        to_writer.wait("writer");
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            if waited {
                w.clear_pending_send_size();
            }
            if w.commit().unwrap() {
                to_reader.signal();
            }
        }
    });
}
