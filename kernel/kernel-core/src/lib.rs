//! The microkernel's logic with no hardware in it: what each system call, fault and
//! interrupt does to the PDs' states, who runs next, and how page tables are
//! built. The x86_64 glue (`kernel/metal`) owns registers and memory and applies the
//! effects this crate asks for through the [`Effects`] trait, so every transition is
//! tested on the host against a recording fake.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod console;
pub mod guest;
pub mod iopm;
pub mod paging;
mod ready;
mod sched;
pub mod vmcb;

pub use ready::ReadyQueue;
pub use sched::{Cap, Effects, GuestLimits, Kernel, PdConfig, PdId, Ret, State};
