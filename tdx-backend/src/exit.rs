//! Decoding TDG.VP.ENTER's output into a platform-neutral exit.
//!
//! After an L2 exit RAX carries a TDX status in bits 63:32 and the VMX exit reason
//! in bits 31:0 (basic reason 15:0, bit 31 = VM-entry failure); RCX the exit
//! qualification and R8 the faulting GPA. The L2's GPRs are in the guest-state
//! buffer the L1 passed in (private memory). The exit reason and qualification
//! are produced for a guest that may be hostile, so every value is decoded
//! without trusting it.

use isolation::{Gpa, IoExit, MsrAccess, VcpuExit};

use crate::cpu::Regs;
use crate::status::Status;

/// VMX basic exit reasons (Intel SDM vol. 3 appendix C).
pub mod reason {
    pub const CPUID: u16 = 10;
    pub const HLT: u16 = 12;
    pub const VMCALL: u16 = 18;
    pub const IO: u16 = 30;
    pub const RDMSR: u16 = 31;
    pub const WRMSR: u16 = 32;
    pub const EPT_VIOLATION: u16 = 48;
    pub const TDCALL: u16 = 77;
}

/// The L2 GPRs the decode needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L2Gprs {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
}

/// Why VP.ENTER's output is not an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitError {
    /// The TDX module refused the entry.
    Status(Status),
    /// VM-entry failure (exit reason bit 31).
    EntryFailure(u32),
}

/// The VP.ENTER VM-and-flags operand for L2 VM `vm` (RCX bits 53:52).
pub const fn vm_flags(vm: u8) -> u64 {
    ((vm & 3) as u64) << 52
}

pub fn decode(out: &Regs, guest: &L2Gprs) -> Result<VcpuExit, ExitError> {
    let status = Status(out.rax & 0xffff_ffff_0000_0000);
    if status.is_error() {
        return Err(ExitError::Status(status));
    }
    let exit_reason = out.rax as u32;
    if exit_reason & (1 << 31) != 0 {
        return Err(ExitError::EntryFailure(exit_reason));
    }
    let q = out.rcx;
    let code = u64::from(exit_reason);
    Ok(match exit_reason as u16 {
        reason::CPUID => VcpuExit::Cpuid {
            leaf: guest.rax as u32,
            subleaf: guest.rcx as u32,
        },
        reason::HLT => VcpuExit::Halt,
        reason::VMCALL => VcpuExit::Hypercall,
        reason::IO => {
            // Qualification: size-1 in 2:0 (0, 1 or 3), bit 3 = IN, bit 4 string,
            // bit 5 REP, 31:16 port. The next RIP is the paravisor's to find.
            let size = match q & 7 {
                0 => 1,
                1 => 2,
                3 => 4,
                _ => return Ok(VcpuExit::Other { code }),
            };
            VcpuExit::Io(IoExit {
                port: (q >> 16) as u16,
                size,
                write: q & (1 << 3) == 0,
                string: q & (1 << 4) != 0,
                rep: q & (1 << 5) != 0,
                next_rip: None,
            })
        }
        reason::RDMSR => VcpuExit::Msr {
            index: guest.rcx as u32,
            access: MsrAccess::Read,
        },
        reason::WRMSR => VcpuExit::Msr {
            index: guest.rcx as u32,
            access: MsrAccess::Write((guest.rdx << 32) | (guest.rax & 0xffff_ffff)),
        },
        reason::EPT_VIOLATION => VcpuExit::MemoryFault {
            gpa: Gpa(out.r8),
            write: q & (1 << 1) != 0,
            // Qualification bit 2: an instruction fetch.
            fetch: q & (1 << 2) != 0,
        },
        _ => VcpuExit::Other { code },
    })
}
