//! The hypervisor's reading of a guest-written GHCB page: which request a VMGEXIT
//! carries. One decoder for both hypervisors this tree has: the model host the
//! backend is tested against ([`crate::model`]) and the VMM PD, which plays the
//! hypervisor for an SNP-style guest on the svm platform (pds/vmm `ghcb`).
//!
//! The page is the guest's and hostile; it is decoded from a copy ([`Ghcb`] is a
//! fixed 4 KiB array) and every save-area register is taken only when the valid
//! bitmap marks it (GHCB spec 56421 §2.3.2, "valid bitmap").

use crate::ghcb_page::{hv, off, usage, Ghcb};

/// SVM_EXIT_MSR: the automatic exit code a guest puts in sw_exit_code to ask the
/// hypervisor for an MSR access (the svm platform's exit code table).
pub use isolation::svm::code::MSR as EXIT_MSR;

/// sw_exit_info_1 when the hypervisor refuses a request: 1 in the low 32 bits
/// ("error, exception in exit_info_2"; Linux checks only those).
pub const EXIT_INFO_ERROR: u64 = 1;

/// A request in a GHCB page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRequest {
    /// Hyper-V's hypercall layout (usage 1): the control word and output GPA; the
    /// input is the page's head.
    HvHypercall { control: u64, output_gpa: u64 },
    /// An MSR exit: RCX names the MSR, RDX:RAX the value of a write.
    Msr { index: u32, write: Option<u64> },
    /// Any other exit in the standard layout, with the fields marked valid.
    Exit {
        code: Option<u64>,
        info1: Option<u64>,
        info2: Option<u64>,
    },
    /// A usage this decoder does not know (a hypervisor ignores it).
    OtherUsage(u32),
}

/// Why a request cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// An MSR exit without RCX (or, for a write, RAX and RDX) marked valid.
    MsrRegisters,
}

impl HostRequest {
    pub fn decode(page: &Ghcb) -> Result<Self, RequestError> {
        match page.usage() {
            usage::HYPERV_HYPERCALL => Ok(HostRequest::HvHypercall {
                control: page.u64_at(hv::CONTROL_OR_RESULT),
                output_gpa: page.u64_at(hv::OUTPUT_GPA),
            }),
            usage::STANDARD => {
                let code = page.field(off::SW_EXIT_CODE);
                let info1 = page.field(off::SW_EXIT_INFO_1);
                if code != Some(EXIT_MSR) {
                    let info2 = page.field(off::SW_EXIT_INFO_2);
                    return Ok(HostRequest::Exit { code, info1, info2 });
                }
                let index = page.field(off::RCX).ok_or(RequestError::MsrRegisters)? as u32;
                if info1 != Some(1) {
                    return Ok(HostRequest::Msr { index, write: None });
                }
                match (page.field(off::RAX), page.field(off::RDX)) {
                    (Some(rax), Some(rdx)) => Ok(HostRequest::Msr {
                        index,
                        write: Some((rax & 0xffff_ffff) | (rdx << 32)),
                    }),
                    _ => Err(RequestError::MsrRegisters),
                }
            }
            other => Ok(HostRequest::OtherUsage(other)),
        }
    }
}

/// The fields a hypervisor writes back into the guest's page to answer an MSR
/// read with `value` (EDX:EAX, then success).
pub fn msr_read_answer(value: u64) -> [(usize, u64); 3] {
    [
        (off::RAX, value & 0xffff_ffff),
        (off::RDX, value >> 32),
        (off::SW_EXIT_INFO_1, 0),
    ]
}
