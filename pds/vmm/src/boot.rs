//! The Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst): parse a
//! bzImage's setup header, lay the kernel, initrd, command line, boot_params and
//! early page tables out in guest RAM, and describe the vCPU state for the 64-bit
//! entry point. The image and everything in it are hostile bytes: every field is
//! bounds-checked and a bad one is a [`BootError`], never a panic.
//!
//! The VMM receives the kernel, initrd and command line in one region the image
//! builder filled from a file ([`payload`]).
//!
//! Use: [`BzImage::parse`] → [`plan`] → write each [`GuestWrite`] into guest RAM
//! (resolving [`WriteSource::Kernel`] / [`WriteSource::Initrd`] to the caller's
//! slices, so the 30 MB image is never copied twice) → load [`VcpuState`].

mod cpu;
mod error;
mod header;
pub mod layout;
pub mod payload;
mod plan;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod zero_page;

pub use cpu::{Segment, TableRegister, VcpuState};
pub use error::BootError;
pub use header::{BzImage, SetupHeader};
pub use layout::{e820_map, E820Entry, E820Type};
pub use payload::{GuestPayload, PayloadError, PayloadFlags};
pub use plan::{plan, AcpiBlob, BootPlan, GuestWrite, PlanInput, WriteSource};
pub use zero_page::ZeroPage;

#[cfg(test)]
mod tests;
