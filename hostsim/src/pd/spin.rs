//! Polling for a short while before sleeping, where it pays.
//!
//! A PD blocked in `epoll_wait` or `recv` is woken by the host kernel: when its CPU
//! went idle that is an IPI and an exit from idle, several microseconds each inside
//! a VM, and a nested call (guest -> hvcall-pd -> synic-pd) needs four of them.
//! A PD that has just done work is likely to get more very soon (the reply to the
//! call it made, a peer's next request or notification), so it polls for a while
//! first, yielding now and then so a peer sharing the CPU can run.
//!
//! On an oversubscribed host polling only steals the CPU from the peer we wait for
//! (measured: 2 vCPUs at load 8-12, HvSignalEvent 79 us sleeping, 213 us polling),
//! so nobody polls while no CPU is spare ([`spare_cpu`]: more tasks runnable right
//! now than CPUs). Not the load average: it lags by a minute and counts the
//! pollers themselves, so two pollers on two CPUs switched their own polling off.
//! The runnable count has the same flaw in one state: while the guest sleeps, the
//! PDs that carry its interrupts (synic-pd, storvsp calling it) poll between
//! requests, and the guest counts them as one task too many; it would not poll,
//! and they would keep polling. So a count at most twice the CPUs earns a trial
//! window of polling: with our own pollers the excess, it ends with no more tasks
//! than CPUs and polling stays on; with someone else's, the next trial waits
//! longer (up to [`MAX_TRIAL_GAP`] windows).
//! Otherwise the budget adapts as an adaptive mutex does: a wait that ended while
//! polling doubles it (up to [`MAX_BUDGET`]), one that had to sleep halves it, down
//! to none; with none, one wait in [`PROBE_EVERY`] polls briefly to notice when
//! polling pays again.

use std::time::{Duration, Instant};

/// Longest poll: covers a round trip through two more PDs on an idle host.
pub(crate) const MAX_BUDGET: Duration = Duration::from_micros(50);
/// Below this a budget is not worth a clock read; it becomes zero.
const MIN_BUDGET: Duration = Duration::from_micros(2);
/// With a zero budget, every this many waits polls for `MIN_BUDGET` anyway.
const PROBE_EVERY: u32 = 64;
/// Polls between clock reads.
const POLLS_PER_CLOCK: u32 = 8;
/// Polls between yields for a poller that may share its CPU with what it waits
/// for: each yield lets the peer run.
const POLLS_PER_SHARED_CHECK: u32 = 4;
/// How often a poll with a CPU of its own yields it and the event loop looks for
/// notifications: a system call each, ~0.3-1 us in a VM, which every 4 polls
/// delayed noticing a polled request. Not longer: a poller judged to have a CPU of
/// its own may still share one with the peer it waits for (the verdict is 50 ms
/// old, or forced), and then every hand-off waits for a yield. storage_io, qd1
/// 4 KiB at load 3-4: 4.2-8.3 us with 1 us, 6.4-9.0 with 2, 9.8-10.1 with 20
/// (44 us with polling forced `own` without `chrt`), for ~0.1 us gained with
/// the PDs under `chrt -f` (1.9-2.0 vs 2.0-2.1 us; the guest noticed its
/// completion 240 ns after storvsp published it, not 300). Yielding only every
/// 10 us while still looking every 1 us was tried too: storage_io's qd1 4 KiB
/// ratio did not move (0.27 either way, 12 alternating runs) and HvSignalEvent
/// through host-sim went from 5.2 to 21.9 us, the chain's PDs handing over at
/// the slower yields. A poll that may share its CPU with what it
/// waits for (three PDs in a chain of calls on two CPUs) yields every
/// [`POLLS_PER_SHARED_CHECK`] polls instead: at a 5 us pace a call through
/// hvcall-pd to synic-pd took 15 us, not 5.
const CHECK_EVERY: Duration = Duration::from_micros(1);
/// The same for a [`Poller`] waiting for work a peer does between its polls
/// (host-sim's guest for a VSP's completions, [`Poller::up_to`]). Such a wait
/// ends a disk read later, ~1.2-1.4 us for 4 KiB, so a yield every 1 us
/// fell just where the completion came and delayed noticing it by the yield's
/// ~0.2 us: storage_io's qd1 4 KiB went 1.9 -> 1.8 us (ratio 0.29 -> 0.31, 12
/// alternating runs) and TEST UNIT READY 0.9 -> 0.8 us with 3 us. Callers
/// waiting for replies keep `CHECK_EVERY`: with 3 us for them too, HvSignalEvent
/// through host-sim went from 6.7 to 7.7 us (medians of 5).
const LONG_WAIT_CHECK_EVERY: Duration = Duration::from_micros(3);

/// The budget of one place that waits (the event loop, the caller side of calls).
#[derive(Debug)]
pub(crate) struct Adaptive {
    budget: Duration,
    /// The longest poll.
    max: Duration,
    waits: u32,
}

/// Environment variable (microseconds) that caps the budget; 0 switches polling
/// off, e.g. to compare in one run (tests/benches/hv_signal_event.rs) or on a host
/// known to be oversubscribed. PDs see only the environment the supervisor gives
/// them (`SimOptions::env`).
pub const SPIN_ENV: &str = "HOSTSIM_SPIN_US";

/// Environment variable to measure the polled path on a busy host (the figures
/// then say what polling costs when it is not throttled, not what a loaded host
/// gets): `always` polls whether or not a CPU is spare, as a poller that may
/// share its CPU; `own` as one with a CPU of its own, as on an idle host (right
/// when the PDs run at a priority above the host's other work, e.g. under
/// `chrt -f`). Decided before the load is looked at, so the knob itself costs
/// a forced poll nothing.
pub const POLL_ENV: &str = "HOSTSIM_POLL";

/// What [`POLL_ENV`] forces the verdict to.
fn forced() -> Option<Cpus> {
    static ENV: std::sync::OnceLock<Option<Cpus>> = std::sync::OnceLock::new();
    *ENV.get_or_init(|| match std::env::var(POLL_ENV).as_deref() {
        Ok("always") => Some(Cpus::Shared),
        Ok("own") => Some(Cpus::Own),
        _ => None,
    })
}

/// `limit`, or less if [`SPIN_ENV`] says so; zero when below [`MIN_BUDGET`].
fn max_budget(limit: Duration) -> Duration {
    static ENV: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    let env = *ENV.get_or_init(|| {
        std::env::var(SPIN_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros)
    });
    let max = env.map_or(limit, |e| e.min(limit));
    if max < MIN_BUDGET {
        Duration::ZERO
    } else {
        max
    }
}

impl Default for Adaptive {
    fn default() -> Self {
        Self::up_to(MAX_BUDGET)
    }
}

impl Adaptive {
    /// A budget of at most `limit` (and the environment's cap).
    pub fn up_to(limit: Duration) -> Self {
        let max = max_budget(limit);
        Self {
            budget: max,
            max,
            waits: 0,
        }
    }
}

/// How often the runnable tasks are counted again.
const LOAD_RECHECK: Duration = Duration::from_millis(50);
/// Most windows between two trials while tasks keep outnumbering CPUs.
const MAX_TRIAL_GAP: u32 = 16;

/// What the runnable tasks say about polling in one window.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Cpus {
    /// More tasks than CPUs: sleep.
    Busy,
    /// No more tasks than CPUs: every poller has a CPU of its own.
    Own,
    /// Polling with more tasks than CPUs (a trial, or [`POLL_ENV`]): a poller may
    /// share its CPU with the peer it waits for.
    Shared,
}

/// The spare-CPU verdict, one window ([`LOAD_RECHECK`]) at a time.
#[derive(Debug)]
struct Load {
    /// This window polls on trial.
    trying: bool,
    /// Windows to go before the next trial.
    wait: u32,
    /// Windows between trials: doubles after each that failed.
    gap: u32,
}

impl Load {
    const fn new() -> Self {
        Self {
            trying: false,
            wait: 0,
            gap: 1,
        }
    }

    /// Whether the next window polls, from the tasks runnable now (the caller
    /// included): no more than CPUs, or a trial when at most twice as many and
    /// the last trial is far enough back.
    fn judge(&mut self, running: usize, cpus: usize) -> Cpus {
        let tried = core::mem::take(&mut self.trying);
        if running <= cpus {
            self.wait = 0;
            self.gap = 1;
            return Cpus::Own;
        }
        if tried {
            // Still too many with us polling: not (only) our own pollers.
            self.gap = (self.gap * 2).min(MAX_TRIAL_GAP);
            self.wait = self.gap;
            return Cpus::Busy;
        }
        if self.wait == 0 && running <= 2 * cpus {
            self.trying = true;
            return Cpus::Shared;
        }
        self.wait = self.wait.saturating_sub(1);
        Cpus::Busy
    }
}

/// Whether a CPU is left over for polling: no more tasks runnable than the CPUs
/// this process may run on, counting this one (a poller spinning on each CPU is
/// fine; one more task, a compiler on a shared machine, would wait for a CPU),
/// or a trial ([`Load`]). Without /proc the one-minute load average decides, as
/// before.
fn spare_cpu() -> Cpus {
    use std::sync::Mutex;
    if let Some(forced) = forced() {
        return forced;
    }
    static STATE: Mutex<(Option<(Instant, Cpus)>, Load)> = Mutex::new((None, Load::new()));
    let Ok(mut state) = STATE.lock() else {
        return Cpus::Busy;
    };
    let (last, load) = &mut *state;
    let now = Instant::now();
    match *last {
        Some((at, verdict)) if now.duration_since(at) < LOAD_RECHECK => verdict,
        _ => {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let verdict = match crate::sys::runnable_tasks() {
                Ok(running) => load.judge(running as usize, cpus),
                Err(_) if crate::sys::load_average().is_ok_and(|l| l + 1.0 <= cpus as f64) => {
                    Cpus::Own
                }
                Err(_) => Cpus::Busy,
            };
            *last = Some((now, verdict));
            verdict
        }
    }
}

/// Polling for what another process puts in shared memory, under the rules the
/// PDs' own waits follow: only while a CPU is spare, for a budget that adapts
/// (host-sim's guest polls its completion rings with it, callers their replies).
#[derive(Debug)]
pub struct Poller {
    adaptive: Adaptive,
    /// How often a poll with a CPU of its own yields it.
    check_every: Duration,
    /// The last poll that gave up: judged at the next one (by then what it
    /// waited for has come), as the event loop judges a wait that slept.
    missed: Option<Spin>,
}

impl Default for Poller {
    fn default() -> Self {
        Self {
            adaptive: Adaptive::default(),
            check_every: CHECK_EVERY,
            missed: None,
        }
    }
}

impl Poller {
    /// Polls of at most `limit` (the default: the PDs' own 50 µs),
    /// for what may take longer than a round trip through two PDs: a batch of
    /// requests a VSP serves one after another. They yield at the slower
    /// [`LONG_WAIT_CHECK_EVERY`] pace.
    pub fn up_to(limit: Duration) -> Self {
        Self {
            adaptive: Adaptive::up_to(limit),
            check_every: LONG_WAIT_CHECK_EVERY,
            missed: None,
        }
    }

    /// Calls `ready` until it says `true` or the budget is spent; whether it did.
    /// Never calls it when polling is off: then the caller sleeps at once.
    pub fn poll(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        if let Some(missed) = self.missed.take() {
            self.adaptive.slept(&missed);
        }
        let mut spin = self.adaptive.start_checking(self.check_every);
        if !spin.is_off() {
            loop {
                if ready() {
                    self.adaptive.finish(&spin, true);
                    return true;
                }
                if !spin.again() {
                    break;
                }
            }
        }
        self.missed = Some(spin);
        false
    }
}

impl Adaptive {
    /// Starts one wait.
    pub fn start(&mut self) -> Spin {
        self.start_checking(CHECK_EVERY)
    }

    /// Starts one wait that yields its CPU every `check_every` when it has one
    /// of its own.
    fn start_checking(&mut self, check_every: Duration) -> Spin {
        match spare_cpu() {
            Cpus::Own => self.plan(check_every),
            Cpus::Shared => self.plan(Duration::ZERO),
            Cpus::Busy => {
                let now = Instant::now();
                Spin {
                    started: now,
                    until: now,
                    next_check: now,
                    check_every: Duration::ZERO,
                    polls: 0,
                    checked: false,
                    budget: Duration::ZERO,
                    spare: false,
                }
            }
        }
    }

    /// The adaptive budget for one wait, a CPU being spare; yielding it
    /// `check_every`.
    fn plan(&mut self, check_every: Duration) -> Spin {
        self.waits = self.waits.wrapping_add(1);
        let probe = self.waits.is_multiple_of(PROBE_EVERY) && !self.max.is_zero();
        let budget = if self.budget.is_zero() && probe {
            MIN_BUDGET
        } else {
            self.budget
        };
        let now = Instant::now();
        Spin {
            started: now,
            until: now + budget,
            next_check: now + check_every,
            check_every,
            polls: 0,
            checked: false,
            budget,
            spare: true,
        }
    }

    /// Ends a wait: `polled` if what we waited for came while polling.
    pub fn finish(&mut self, spin: &Spin, polled: bool) {
        if spin.budget.is_zero() {
            return;
        }
        self.budget = if polled {
            (spin.budget * 2).clamp(MIN_BUDGET, self.max)
        } else {
            let half = self.budget / 2;
            if half < MIN_BUDGET {
                Duration::ZERO
            } else {
                half
            }
        };
    }

    /// Ends a wait that slept (the event loop's): what it waited for came
    /// `spin`'s start plus however long it slept. If that is within the longest
    /// poll, polling (longer) would have caught it: the budget grows to cover
    /// it, so a budget that shrank while nothing came (start-up, idle spells)
    /// does not stay shrunk once work comes at a polling pace again.
    pub fn slept(&mut self, spin: &Spin) {
        if !spin.spare {
            return;
        }
        let waited = spin.started.elapsed();
        let max = self.max;
        if waited > max || max.is_zero() {
            self.finish(spin, false);
        } else {
            self.budget = (self.budget * 2).max(waited).clamp(MIN_BUDGET, max);
        }
    }

    /// Ends a wait of the event loop: `polled` as [`Self::finish`], else it slept.
    pub fn ended(&mut self, spin: &Spin, polled: bool) {
        if polled {
            self.finish(spin, true);
        } else {
            self.slept(spin);
        }
    }

    #[cfg(test)]
    fn budget(&self) -> Duration {
        self.budget
    }
}

/// One wait's polling.
#[derive(Debug)]
pub(crate) struct Spin {
    started: Instant,
    until: Instant,
    /// When the next poll yields and looks for notifications, and how often.
    next_check: Instant,
    check_every: Duration,
    polls: u32,
    /// The last [`Self::again`] yielded.
    checked: bool,
    budget: Duration,
    /// A CPU was spare when the wait started (else it tells nothing of polling).
    spare: bool,
}

impl Spin {
    /// Whether this wait sleeps at once.
    pub fn is_off(&self) -> bool {
        self.budget.is_zero()
    }

    /// Whether to poll once more; `false` once the budget is spent.
    pub fn again(&mut self) -> bool {
        self.checked = false;
        if self.budget.is_zero() {
            return false;
        }
        self.polls = self.polls.wrapping_add(1);
        let per_clock = if self.check_every.is_zero() {
            POLLS_PER_SHARED_CHECK
        } else {
            POLLS_PER_CLOCK
        };
        if !self.polls.is_multiple_of(per_clock) {
            std::hint::spin_loop();
            return true;
        }
        let now = Instant::now();
        if now >= self.next_check {
            self.checked = true;
            self.next_check = now + self.check_every;
            std::thread::yield_now();
        }
        now < self.until
    }

    /// Whether the last [`Self::again`] yielded: the event loop looks for
    /// notifications (a syscall) at the same pace, not every poll.
    pub fn checked(&self) -> bool {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spin_runs_out_after_its_budget_or_does_not_start_without_a_spare_cpu() {
        let mut adaptive = Adaptive::default();
        let start = Instant::now();
        let mut spin = adaptive.start();
        let mut polls = 0u64;
        while spin.again() {
            polls += 1;
        }
        if spin.budget.is_zero() {
            assert_eq!(polls, 0);
        } else {
            assert!(start.elapsed() >= MAX_BUDGET);
        }
    }

    #[test]
    fn a_count_above_the_cpus_earns_a_trial_that_backs_off_while_it_fails() {
        // Runnable tasks at each recheck on 2 CPUs, and the verdict.
        let mut table: Vec<(usize, bool)> = vec![
            (2, true),
            // One too many, maybe our own pollers: a trial.
            (3, true),
            // It ended with no more tasks than CPUs: polling stays on.
            (2, true),
            (4, true),
            // Still too many with us polling: off, two windows to the next trial.
            (3, false),
            (3, false),
            (3, false),
            (3, true),
            (3, false),
        ];
        // The gap doubles: four windows off, a trial, eight...
        table.extend([(3, false); 4]);
        table.extend([(4, true), (3, false)]);
        table.extend([(3, false); 8]);
        table.extend([(3, true), (3, false)]);
        // ...and stops at MAX_TRIAL_GAP, however many times it failed.
        for _ in 0..3 {
            table.extend(vec![(3, false); MAX_TRIAL_GAP as usize]);
            table.extend([(3, true), (3, false)]);
        }
        // More than twice the CPUs: no trial; windows still count down.
        table.extend(vec![(5, false); MAX_TRIAL_GAP as usize]);
        table.extend([(3, true), (2, true)]);
        // Spare again: the next excess gets its trial at once.
        table.extend([(3, true), (2, true), (5, false), (4, true)]);
        let mut load = Load::new();
        for (i, &(running, spare)) in table.iter().enumerate() {
            let verdict = load.judge(running, 2);
            assert_eq!(
                verdict != Cpus::Busy,
                spare,
                "window {i}: {running} running"
            );
            // A poll on trial may share its CPU; one with enough CPUs has its own.
            assert_eq!(verdict == Cpus::Own, running <= 2, "window {i}");
        }
    }

    #[test]
    fn failed_polls_switch_polling_off_and_probes_switch_it_back_on() {
        let mut adaptive = Adaptive::default();
        // Every wait sleeps: the budget halves to nothing.
        for _ in 0..10 {
            let spin = adaptive.plan(CHECK_EVERY);
            adaptive.finish(&spin, false);
        }
        assert_eq!(adaptive.budget(), Duration::ZERO);
        // Waits without a budget do not poll, except the periodic probe.
        let mut probes = 0;
        for _ in 0..PROBE_EVERY {
            let mut spin = adaptive.plan(CHECK_EVERY);
            if spin.again() {
                probes += 1;
                // The probe's wait ends while polling: polling pays again.
                adaptive.finish(&spin, true);
                break;
            }
            adaptive.finish(&spin, false);
        }
        assert_eq!(probes, 1);
        assert_eq!(adaptive.budget(), MIN_BUDGET * 2);
        for _ in 0..10 {
            let spin = adaptive.plan(CHECK_EVERY);
            adaptive.finish(&spin, true);
        }
        assert_eq!(adaptive.budget(), MAX_BUDGET);
    }

    #[test]
    fn work_that_comes_soon_after_a_sleep_restores_the_budget() {
        let mut adaptive = Adaptive::default();
        // Long sleeps (start-up, idle spells): the budget halves to nothing.
        for _ in 0..10 {
            let spin = adaptive.plan(CHECK_EVERY);
            std::thread::sleep(MAX_BUDGET * 2);
            adaptive.slept(&spin);
        }
        assert_eq!(adaptive.budget(), Duration::ZERO);
        // Then requests come at a polling pace, each just after polling gave
        // up: a longer poll would have caught them, so the budget grows back.
        for _ in 0..10 {
            let spin = adaptive.plan(CHECK_EVERY);
            adaptive.slept(&spin);
        }
        assert_eq!(adaptive.budget(), MAX_BUDGET);
        // A wait without a spare CPU says nothing about polling.
        let off = Spin {
            started: Instant::now() - MAX_BUDGET * 4,
            until: Instant::now(),
            next_check: Instant::now(),
            check_every: Duration::ZERO,
            polls: 0,
            checked: false,
            budget: Duration::ZERO,
            spare: false,
        };
        adaptive.slept(&off);
        assert_eq!(adaptive.budget(), MAX_BUDGET);
    }
}
