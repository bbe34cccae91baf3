//! Guest instruction decoding for exits the CPU does not describe.
//!
//! Under QEMU TCG, SVM offers neither next-RIP saving nor decode assists, so for
//! every intercepted instruction the VMM must read the guest's code itself: walk the
//! guest's page tables from CS:RIP ([`paging`]), fetch up to 15 bytes across a page
//! boundary ([`fetch`]), then either check that the bytes are the instruction the
//! exit names and learn its length ([`fixed`]) or, for a nested page fault on MMIO,
//! learn what the instruction does to memory and registers ([`mmio`]).
//!
//! The bytes are the guest's and hostile: a guest may rewrite the code page between
//! the exit and our fetch (another vCPU, or DMA), so nothing here trusts that the
//! instruction matches the exit; mismatches are reported, never assumed away.
//!
//! Decoding itself is iced-x86 (no_std, decoder only) rather than a hand decoder:
//! x86 length decoding has many corners (legacy prefix runs, REX placement, VEX/EVEX
//! vs LES/BOUND, 0F38/0F3A maps, the 15-byte limit, invalid-LOCK rules) and one
//! mistake desynchronizes RIP, which corrupts the guest silently. iced is
//! table-generated, fuzzed upstream and exhaustively tested against the vendor
//! manuals; we keep our own code to the small semantic layer (which MMIO forms we
//! emulate and how their register results are written back).

pub mod fetch;
pub mod fixed;
pub mod memory;
pub mod mmio;
pub mod paging;

pub use fetch::{
    code_linear_address, fetch_instruction, fetch_with, next_rip, InstructionBytes,
    MAX_INSTRUCTION_LEN,
};
pub use fixed::{instruction_length, FixedInstruction, LengthError};
pub use memory::{FlatMemory, GuestMemory, MemError};
pub use mmio::{
    decode_mmio, write_back, Extension, MmioAccess, MmioDecodeError, MmioInstruction, ReadTarget,
};
pub use paging::{translate, Access, AccessKind, PageFault, Paging, PagingMode, TranslateError};

/// The processor mode the guest's code runs in, which fixes how bytes decode.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CodeMode {
    /// Real mode or 16-bit protected mode.
    Bits16,
    /// 32-bit protected mode or compatibility mode.
    Bits32,
    /// 64-bit mode (long mode with CS.L).
    Bits64,
}

impl CodeMode {
    /// The decoder's bitness argument.
    pub const fn bitness(self) -> u32 {
        match self {
            CodeMode::Bits16 => 16,
            CodeMode::Bits32 => 32,
            CodeMode::Bits64 => 64,
        }
    }
}

/// Control-register and page-table-entry bits this module reads (and boot and the
/// tests set).
pub mod bits {
    pub const CR0_PE: u64 = 1 << 0;
    pub const CR0_ET: u64 = 1 << 4;
    pub const CR0_NE: u64 = 1 << 5;
    pub const CR0_WP: u64 = 1 << 16;
    pub const CR0_PG: u64 = 1 << 31;
    pub const CR4_PSE: u64 = 1 << 4;
    pub const CR4_PAE: u64 = 1 << 5;
    pub const CR4_LA57: u64 = 1 << 12;
    pub const CR4_SMEP: u64 = 1 << 20;
    pub const CR4_SMAP: u64 = 1 << 21;
    pub const EFER_LME: u64 = 1 << 8;
    pub const EFER_LMA: u64 = 1 << 10;
    pub const EFER_NXE: u64 = 1 << 11;
    pub const RFLAGS_AC: u64 = 1 << 18;
    /// SVM segment attribute bits (VMCB format: type, S, DPL, P, AVL, L, D/B, G).
    pub const SEG_ATTR_L: u16 = 1 << 9;
    pub const SEG_ATTR_DB: u16 = 1 << 10;
    /// Page-table entry bits, the same at every level.
    pub const PTE_P: u64 = 1 << 0;
    pub const PTE_RW: u64 = 1 << 1;
    pub const PTE_US: u64 = 1 << 2;
    /// A large page, in an entry above the last level.
    pub const PTE_PS: u64 = 1 << 7;
    pub const PTE_XD: u64 = 1 << 63;
}

/// The guest state the decoder needs, as plain values from the exit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    /// RAX..R15 in x86 encoding order.
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// CS base (ignored in 64-bit mode, as by the CPU).
    pub cs_base: u64,
    /// CS attributes in SVM's 12-bit VMCB format.
    pub cs_attrib: u16,
    /// The current privilege level (the VMCB's CPL, i.e. SS.DPL).
    pub cpl: u8,
}

impl CpuState {
    /// How the code at CS:RIP decodes.
    pub const fn code_mode(&self) -> CodeMode {
        if self.cr0 & bits::CR0_PE == 0 {
            CodeMode::Bits16
        } else if self.efer & bits::EFER_LMA != 0 && self.cs_attrib & bits::SEG_ATTR_L != 0 {
            CodeMode::Bits64
        } else if self.cs_attrib & bits::SEG_ATTR_DB != 0 {
            CodeMode::Bits32
        } else {
            CodeMode::Bits16
        }
    }

    /// The page-table walker's view of this state.
    pub const fn paging(&self) -> Paging {
        Paging::from_registers(self.cr0, self.cr3, self.cr4, self.efer)
    }
}
