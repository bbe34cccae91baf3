//! guest-sim: a guest and its vCPU PD in one protection domain, standing in for the
//! vCPU PD and a Linux guest until the kernel can run a real one.
//!
//! It does what Linux's Hyper-V and VMBus code does, through the same interfaces a
//! VM exit would reach: CPUID and MSR exits and hypercalls are protected calls to
//! hvcall-pd (as the vCPU PD makes them on an exit), SynIC MSRs go to synic-pd, and
//! everything the paravisor sends back is read from the guest's own mapping of guest
//! RAM (SynIC message and event-flag pages, ring buffers), woken by the interrupt
//! requests synic-pd queues for the vCPU. The VMBus protocol itself is
//! `vmbus-client`, which behaves as Linux's hv_vmbus does.
//!
//! [`scenario::run`] negotiates, lists offers, builds a ring GPADL, opens the echo
//! channel, exchanges packets, closes, tears down and unloads, and reports; the
//! hostile variant first floods every PD with malformed messages and corrupts a ring.

pub mod config;
pub mod echo;
pub mod junk;
pub mod scenario;
pub mod synic;
pub mod vcpu;

/// A failed step, in words a person reading the run's output can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

pub type Result<T> = std::result::Result<T, Failure>;

/// `Err(Failure(format!(..)))` unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($what:tt)*) => {
        if !$cond {
            return Err($crate::Failure(format!($($what)*)));
        }
    };
}

pub(crate) fn fail<T>(what: impl Into<String>) -> Result<T> {
    Err(Failure(what.into()))
}
