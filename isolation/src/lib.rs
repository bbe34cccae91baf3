//! The isolation interface: what the paravisor asks of the platform it runs on.
//!
//! Three platforms sit behind it: `svm` (software isolation on nested SVM, the path
//! QEMU runs), `snp` (the paravisor at VMPL0, the guest at VMPL2 in vTOM mode) and
//! `tdx` (the paravisor as L1 of a partitioned TD, the guest as its L2). Everything
//! here is sans-IO: the backends ([`svm`] here, `snp-backend`, `tdx-backend`) do
//! the instructions through a small CPU trait each; callers only see typed
//! requests, exits and errors. `conformance` (feature `conformance`) holds the
//! platform-independent flows all three backends pass on their models.
//!
//! [`gpa`] is the single place that decides whether a guest-physical address is
//! private or host-visible; PDs must ask it rather than keep their own constants.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod backend;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod gpa;
pub mod guest_memory;
pub mod svm;

pub use backend::{
    ExitKind, GuestAccess, HostCall, HostReply, Hypercall, IoExit, IsoResult, Isolation,
    IsolationError, MsrAccess, VcpuExit, VpIndex,
};
pub use gpa::{Gpa, GpaClass, GpaError, PageRange, Partition, PartitionKind, RamRange, PAGE_SIZE};
pub use guest_memory::GuestMemory;
