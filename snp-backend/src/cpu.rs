//! The machine as the VMPL0 paravisor reaches it: the SNP instructions, the GHCB
//! MSR and page, and its own private memory. Hardware implements this with
//! `asm!`; [`crate::model::SnpModel`] implements it for tests.

use crate::ghcb_page::Ghcb;
use crate::rmp::{Fault, PageSize, PvalidateResult};
use crate::vmsa::Vmsa;

/// The RMP instructions as VMPL0 executes them. Hardware runs PVALIDATE and
/// RMPADJUST; [`crate::rmp::Rmp`] is their model, so every test CPU shares it.
pub trait RmpInstructions {
    /// PVALIDATE on the private page `gpa`.
    fn pvalidate(
        &mut self,
        gpa: u64,
        size: PageSize,
        validate: bool,
    ) -> Result<PvalidateResult, Fault>;
    /// RMPADJUST; returns rAX.
    fn rmpadjust(&mut self, gpa: u64, size: PageSize, rdx: u64) -> Result<u32, Fault>;
}

pub trait SnpCpu {
    type Rmp: RmpInstructions;
    /// The RMP instructions of this CPU.
    fn rmp(&mut self) -> &mut Self::Rmp;
    /// WRMSR(GHCB, value); VMGEXIT; RDMSR(GHCB).
    fn msr_protocol(&mut self, value: u64) -> u64;
    /// The GHCB page the paravisor registered (shared memory).
    fn ghcb(&mut self) -> &mut Ghcb;
    /// WRMSR(GHCB, ghcb_gpa); VMGEXIT.
    fn vmgexit(&mut self, ghcb_gpa: u64);
    /// Reads host-visible memory at `gpa` (shared alias) into `buf`.
    fn read_shared(&mut self, gpa: u64, buf: &mut [u8]);
    /// Writes / reads a VMSA image in private memory at `gpa`.
    fn write_vmsa(&mut self, gpa: u64, vmsa: &Vmsa) -> Result<(), Fault>;
    fn read_vmsa(&mut self, gpa: u64) -> Result<Vmsa, Fault>;
}
