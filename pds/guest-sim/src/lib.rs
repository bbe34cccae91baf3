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
//!
//! `no_std` + `alloc` without the `std` feature: with `metal`, the same guest runs as
//! a bare-metal PD on pd-rt (its heap, its console, the TSC as its clock).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(all(not(feature = "std"), not(feature = "metal")))]
compile_error!("guest-sim needs a platform: feature `std` (host-sim) or `metal` (pd-rt)");

/// The bare-metal guest prints to the kernel console. Defined before the modules so
/// their `println!` resolves to it.
#[cfg(not(feature = "std"))]
macro_rules! println {
    ($($arg:tt)*) => {
        pd_rt::println!($($arg)*)
    };
}

pub mod config;
pub mod echo;
pub mod junk;
pub mod scenario;
pub mod storage;
pub mod synic;
pub mod time;
pub mod vcpu;
pub mod vtpm;

/// A failed step, in words a person reading the run's output can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub alloc::string::String);

pub type Result<T> = core::result::Result<T, Failure>;

/// `Err(Failure(format!(..)))` unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($what:tt)*) => {
        if !$cond {
            return Err($crate::Failure(::alloc::format!($($what)*)));
        }
    };
}

pub(crate) fn fail<T>(what: impl Into<alloc::string::String>) -> Result<T> {
    Err(Failure(what.into()))
}
