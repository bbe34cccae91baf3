//! The host stand-in for an seL4 notification, shared by the threaded queue test
//! and the throughput bench.

use std::sync::{Condvar, Mutex};

/// A sticky binary semaphore: `notify` sets a pending bit, `wait` blocks until it
/// is set and clears it. No spurious wake-ups, so a missing notify really blocks
/// forever.
#[derive(Default)]
pub struct Notification {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Notification {
    pub fn notify(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }

    pub fn wait(&self) {
        let mut pending = self.pending.lock().unwrap();
        while !*pending {
            pending = self.cv.wait(pending).unwrap();
        }
        *pending = false;
    }
}
