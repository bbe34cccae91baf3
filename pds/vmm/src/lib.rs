//! The VMM PD: owns the guest's `virtual_machine` in system.xml and runs its vCPU
//! (kernel `VM_ENTER`). It presents the platform a stock Linux kernel expects:
//! the x86 boot protocol and ACPI tables ([`boot`], [`acpi`]), the x2APIC, a 16550
//! and benign legacy ports ([`devices`]), and decodes the instructions behind MMIO
//! exits ([`decode`]); Hyper-V CPUID leaves, MSRs and hypercalls go to hvcall-pd and
//! synic-pd. Everything here is sans-IO and host-tested; guest bytes are hostile.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod acpi;
pub mod boot;
pub mod cpuid;
pub mod decode;
pub mod devices;
pub mod exits;
pub mod ghcb;
pub mod loader;
pub mod msr;
pub mod peers;
pub mod platform;
pub mod run;
pub mod state;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
