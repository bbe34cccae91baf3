//! The numeric rules of the system description: Microkit's, plus x86_64 facts.

/// The largest number of protection domains (children included) a system may have:
/// as many as the kernel's image holds (Microkit's limit too).
pub use kernel_abi::image::MAX_PDS;
/// Channel and irq ids index a 62-bit badge (two bits are taken by PPC and fault),
/// one of the kernel's channel slots.
pub const MAX_CHANNEL_ID: u64 = kernel_abi::image::CHANNELS as u64 - 1;
/// Child PD ids share the fault badge space, so they have the same bound.
pub const MAX_CHILD_ID: u64 = 61;
/// seL4 priority 255 is kept for the monitor.
pub const MAX_PRIORITY: u64 = 254;
/// The x86_64 page sizes a memory region may use: 4 KiB and 2 MiB.
pub const PAGE_SIZES: [u64; 2] = [0x1000, 0x20_0000];
pub const DEFAULT_PAGE_SIZE: u64 = 0x1000;
/// Microseconds; the period defaults to the budget.
pub const DEFAULT_BUDGET: u64 = 1000;
/// Two pages: Rust PD code with formatting does not fit Microkit's one-page default.
pub const DEFAULT_STACK_SIZE: u64 = 0x2000;
pub const MIN_STACK_SIZE: u64 = 0x1000;
pub const MAX_STACK_SIZE: u64 = 0x100_0000;
/// Maps must stay in the lower canonical half of a 48-bit x86_64 address space,
/// the kernel's user half.
pub use kernel_abi::layout::USER_END as USER_VADDR_END;
/// A system description larger than this is refused rather than read (guards against
/// `check /dev/zero`).
pub const MAX_SYSTEM_FILE_SIZE: u64 = 16 << 20;
/// `cpu=` is a u8 in the model.
pub const MAX_CPU: u64 = 255;
/// vCPUs per virtual machine: as many as the kernel's image holds.
pub use kernel_abi::image::MAX_VCPUS;
/// vCPU ids share the VMM's child-id space.
pub const MAX_VCPU_ID: u64 = MAX_CHILD_ID;
/// Guest-physical addresses end below 2^48 (four levels of nested page tables):
/// the kernel's image limit.
pub use kernel_abi::image::GPA_LIMIT as GPA_END;
/// The longest PD, VM or region name the plain-names policy allows (device-tree
/// paths get long).
pub const MAX_NAME_LEN: usize = 128;
