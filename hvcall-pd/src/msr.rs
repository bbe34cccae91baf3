//! The hypercall-interface MSRs: guest OS id, hypercall page, VP index.
//!
//! Semantics as the TLFS (and KVM's emulation of it) give them: the hypercall page
//! can only be enabled once a guest OS id is set; clearing the guest OS id disables
//! it again; a locked hypercall MSR ignores writes; enabling writes the calling
//! sequences into the page, which must be guest RAM.

use hvdef::msr::{HypercallMsr, HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL, HV_X64_MSR_VP_INDEX};
use hvdef::{Vtl, HV_PAGE_SIZE};

use crate::gateway::{HvcallCore, VTL_CALL_OFFSET, VTL_RETURN_OFFSET};
use crate::guest::GuestMemory;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MsrError {
    /// Inject #GP.
    Gp,
    /// Not one of hvcall-pd's MSRs; the vCPU PD asks elsewhere.
    NotMine,
}

/// The bytes of the hypercall page for a given hypercall instruction.
pub fn hypercall_page_code(insn: [u8; 3]) -> [u8; 0x1C] {
    let mut code = [0u8; 0x1C];
    // Plain hypercall: the guest has loaded RCX/RDX/R8 itself.
    code[0..3].copy_from_slice(&insn);
    code[3] = 0xC3; // ret
    for (offset, call_code) in [(VTL_CALL_OFFSET, 0x11u8), (VTL_RETURN_OFFSET, 0x12)] {
        let o = offset as usize;
        code[o..o + 3].copy_from_slice(&[0x48, 0x89, 0xC8]); // mov rax, rcx
        code[o + 3..o + 8].copy_from_slice(&[0xB9, call_code, 0, 0, 0]); // mov ecx, code
        code[o + 8..o + 11].copy_from_slice(&insn);
        code[o + 11] = 0xC3; // ret
    }
    code
}

impl<const VPS: usize, const ROUTES: usize> HvcallCore<VPS, ROUTES> {
    pub fn read_msr(&self, vp: u32, vtl: Vtl, msr: u32) -> Result<u64, MsrError> {
        let regs = self.regs.get(vtl.index()).ok_or(MsrError::Gp)?;
        match msr {
            HV_X64_MSR_GUEST_OS_ID => Ok(regs.guest_os_id),
            HV_X64_MSR_HYPERCALL => Ok(regs.hypercall.0),
            HV_X64_MSR_VP_INDEX => Ok(vp as u64),
            _ => Err(MsrError::NotMine),
        }
    }

    pub fn write_msr(
        &mut self,
        mem: &GuestMemory<'_>,
        _vp: u32,
        vtl: Vtl,
        msr: u32,
        value: u64,
    ) -> Result<(), MsrError> {
        let insn = self.config().hypercall_instruction();
        let regs = self.regs.get_mut(vtl.index()).ok_or(MsrError::Gp)?;
        match msr {
            HV_X64_MSR_GUEST_OS_ID => {
                regs.guest_os_id = value;
                if value == 0 {
                    regs.hypercall = HypercallMsr(regs.hypercall.0 & !1);
                }
                Ok(())
            }
            HV_X64_MSR_HYPERCALL => {
                if regs.hypercall.locked() || regs.guest_os_id == 0 {
                    // Ignored, as on Hyper-V: a locked MSR keeps its value, and the
                    // page stays off until the guest has identified itself.
                    return Ok(());
                }
                // Bits 2-11 are reserved-preserve; they read back as zero.
                let new = HypercallMsr(value & !HypercallMsr::RESERVED_MASK);
                if new.enabled() {
                    let page = mem
                        .range(new.gpa(), HV_PAGE_SIZE as usize)
                        .ok_or(MsrError::Gp)?;
                    page.write_bytes(0, &hypercall_page_code(insn))
                        .map_err(|_| MsrError::Gp)?;
                }
                regs.hypercall = new;
                Ok(())
            }
            HV_X64_MSR_VP_INDEX => Err(MsrError::Gp),
            _ => Err(MsrError::NotMine),
        }
    }
}
