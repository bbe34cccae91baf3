//! The guest's clock and how it idles while waiting for the paravisor.
//!
//! On the host that is `std::time` and the scheduler. On bare metal the guest reads
//! the TSC and counts it at a nominal 1 GHz: exact under QEMU's `-icount shift=0`
//! (one instruction per nanosecond of virtual time, and the TSC counts instructions),
//! approximate elsewhere. Idling there is just spinning: the guest is the lowest
//! priority PD, so every PD with work to do has run before it polls again.

#[cfg(feature = "std")]
pub use std::time::Instant;

#[cfg(not(feature = "std"))]
pub use metal::Instant;

/// One step of a wait that has gone on for `spins` steps.
#[cfg(feature = "std")]
pub fn pause(spins: u32) {
    // Briefly yield the core, then sleep in short steps, so a PD process on the same
    // core gets to answer.
    if spins < 64 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(core::time::Duration::from_micros(20));
    }
}

#[cfg(not(feature = "std"))]
pub fn pause(_spins: u32) {
    core::hint::spin_loop();
}

/// Halts until a notification may have come (the interrupt queue asked for one),
/// for at most `limit`. On host-sim that is the PD's notification descriptors, as
/// a vCPU thread blocks until its interrupt is injected; a lost or missing wake-up
/// costs `limit`, never a hang.
#[cfg(feature = "hostsim")]
pub fn halt(limit: core::time::Duration) {
    hostsim::wait_for_notification(limit);
}

#[cfg(all(feature = "std", not(feature = "hostsim")))]
pub fn halt(limit: core::time::Duration) {
    std::thread::sleep(limit);
}

/// How the guest polls a completion ring before it waits for an interrupt: on
/// host-sim by the PDs' own rule (only while a CPU is spare, for an adaptive
/// budget), so that with the VSP polling too a request needs no wake-up at all.
#[cfg(feature = "hostsim")]
pub use hostsim::Poller;

/// Elsewhere the guest does not poll before it halts: bare metal's halt already
/// spins (see [`halt`]), and a plain std build has no PDs to poll against.
#[cfg(not(feature = "hostsim"))]
#[derive(Debug, Default)]
pub struct Poller;

#[cfg(not(feature = "hostsim"))]
impl Poller {
    pub fn up_to(_limit: core::time::Duration) -> Self {
        Self
    }

    pub fn poll(&mut self, _ready: impl FnMut() -> bool) -> bool {
        false
    }
}

/// Bare metal: the guest is the lowest-priority PD, so spinning lets every PD with
/// work run first.
#[cfg(not(feature = "std"))]
pub fn halt(_limit: core::time::Duration) {
    core::hint::spin_loop();
}

#[cfg(not(feature = "std"))]
mod metal {
    use core::ops::Add;
    use core::time::Duration;

    /// TSC ticks per second assumed (see the module docs).
    const TSC_HZ: u64 = 1_000_000_000;

    /// A TSC reading.
    #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Instant(u64);

    impl Instant {
        pub fn now() -> Self {
            Self(pd_rt::sys::rdtsc())
        }

        pub fn elapsed(&self) -> Duration {
            let ticks = Self::now().0.saturating_sub(self.0);
            Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / TSC_HZ))
        }
    }

    impl Add<Duration> for Instant {
        type Output = Self;

        fn add(self, d: Duration) -> Self {
            let ticks = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) / (1_000_000_000 / TSC_HZ);
            Self(self.0.saturating_add(ticks))
        }
    }
}
