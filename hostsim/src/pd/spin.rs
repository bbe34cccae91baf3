//! Polling for a short while before sleeping.
//!
//! A PD blocked in `epoll_wait` or `recv` is woken by the host kernel: when its CPU
//! went idle that is an IPI and an exit from idle, several microseconds each inside
//! a VM, and a nested call (guest -> hvcall-pd -> synic-pd) needs four of them.
//! A PD that has just done work is likely to get more very soon (the reply to the
//! call it made, a peer's next request or notification), so it keeps polling for
//! [`BUDGET`] first and only then sleeps. Polls yield the CPU now and then, so a
//! peer that shares this CPU still gets to run and produce what we wait for.

use std::time::{Duration, Instant};

/// How long to keep polling after the last piece of work. Long enough to cover a
/// round trip through two more PDs, short enough that an idle system goes to sleep
/// at once on a human time scale.
pub(crate) const BUDGET: Duration = Duration::from_micros(50);

/// Polls between clock reads and yields.
const POLLS_PER_CHECK: u32 = 4;

#[derive(Debug)]
pub(crate) struct Spin {
    until: Instant,
    polls: u32,
}

impl Spin {
    pub fn new() -> Self {
        Self {
            until: Instant::now() + BUDGET,
            polls: 0,
        }
    }

    /// Whether to poll once more; `false` once the budget is spent.
    pub fn again(&mut self) -> bool {
        self.polls += 1;
        if !self.polls.is_multiple_of(POLLS_PER_CHECK) {
            std::hint::spin_loop();
            return true;
        }
        std::thread::yield_now();
        Instant::now() < self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_runs_out() {
        let start = Instant::now();
        let mut spin = Spin::new();
        let mut polls = 0u64;
        while spin.again() {
            polls += 1;
        }
        assert!(start.elapsed() >= BUDGET);
        assert!(polls >= u64::from(POLLS_PER_CHECK - 1));
    }
}
