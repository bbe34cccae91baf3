//! The guest_sim image's build-time configuration: channel ids and the vTOM
//! (generated from the system descriptions by [`system_constants`], for the PD
//! named `guest`), the regions it maps, and where the guest keeps things in its
//! physical address space.
//!
//! | id | peer      | role                                                          |
//! |----|-----------|---------------------------------------------------------------|
//! | 0  | hvcall-pd | calls out: hypercall, CPUID and MSR exits                     |
//! | 1  | synic-pd  | calls out: SynIC MSRs; notifies when it drained the interrupt queue |
//! | 2  | tpm       | calls out: the CRB's register writes (when a vTPM is granted) |

pub use system_constants::channel::guest::{HVCALL, SYNIC, TPM};

/// Regions, by their `setvar_vaddr` names.
pub const GUEST_RAM: &str = "guest_ram";
pub const GUEST_SHARED: &str = "guest_shared";
pub const IRQ_QUEUE: &str = "irq_queue";

/// `guest_ram` is GPA 0 up; `guest_shared`, its host-visible alias, starts at the
/// vTOM (hvcall-pd's shared GPA boundary).
pub const SHARED_GPA: u64 = system_constants::GUEST_SHARED_GPA;
const _: () = assert!(system_constants::GUEST_RAM_GPA == 0);
pub const PAGE: u64 = hvdef::HV_PAGE_SIZE;

/// Private pages the guest's kernel uses.
pub const HYPERCALL_PAGE: u64 = 0x1000;
pub const INPUT_PAGE: u64 = 0x2000;
/// SynIC message and event-flag pages: [paravisor, hypervisor relay].
pub const SIMP: [u64; 2] = [0x3000, 0x5000];
pub const SIEFP: [u64; 2] = [0x4000, 0x6000];
/// Interrupt vectors for the VMBus SINT: [paravisor, hypervisor relay].
pub const VECTOR: [u8; 2] = [0xf2, 0xf3];

/// Ring GPADLs: private pages from here (confidential rings) ...
pub const PRIVATE_RING_PFN: u64 = 0x100;
/// ... and shared pages from here (rings a guest without Confidential VMBus makes
/// host-visible).
pub const SHARED_RING_PFN: u64 = SHARED_GPA / PAGE + 0x10;
/// Each ring: one control page and three data pages.
pub const RING_PAGES: u64 = 4;

/// How long any one wait for the paravisor may take before the run fails.
pub const WAIT: core::time::Duration = core::time::Duration::from_secs(5);
