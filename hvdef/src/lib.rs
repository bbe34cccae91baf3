//! Hyper-V guest ABI definitions, as the TLFS and Linux's `hvgdk_mini.h` lay them out.
//!
//! Everything a guest writes (hypercall control words, input pages, SynIC register
//! values, message slots) is described here as plain data: open enums are `u16`/`u32`
//! newtypes with associated consts, wire structs are `repr(C)` zerocopy types whose
//! sizes are pinned by const asserts, and register layouts are `u64` newtypes with
//! accessors plus a mask of the bits the guest must leave zero. Nothing here acts;
//! the PDs (hvcall-pd, synic-pd, the VMBus client) decide what the values mean.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod cpuid;
pub mod hypercall;
pub mod message;
pub mod msr;
mod named_values;
mod small_index;
pub mod status;
pub mod synic;
pub mod vtl;

pub use hypercall::{Control, HypercallCode, HypercallResult};
pub use message::{HvMessage, HvMessageHeader, HvMessageType};
pub use status::HvStatus;
pub use vtl::Vtl;

/// The page size every GPA in this ABI is counted in.
pub const HV_PAGE_SIZE: u64 = 4096;
pub const HV_PAGE_SHIFT: u32 = 12;

/// "This partition", in partition-id input fields.
pub const HV_PARTITION_ID_SELF: u64 = u64::MAX;
/// "The calling VP", in vp-index input fields.
pub const HV_VP_INDEX_SELF: u32 = 0xFFFF_FFFE;
