//! The SEV-SNP guest-hypervisor communication block (GHCB) as an SNP guest with a
//! paravisor uses it to reach the *hypervisor*: the GHCB MSR protocol (version
//! negotiation, termination) and the GHCB page for Hyper-V hypercalls (usage 1) and
//! MSR accesses of the hypervisor's SynIC (default usage, exit code MSR). A guest
//! triggers both with VMGEXIT (`rep vmmcall`), which a non-SEV vCPU executes as
//! VMMCALL; the VMM tells the two apart by the REP prefix.
//!
//! On this platform there is no hypervisor below the paravisor, so the VMM plays
//! it: hypercalls go to hvcall-pd, SynIC MSRs to synic-pd's hypervisor instance.
//! Everything in the page is the guest's and hostile: it is read once into a copy,
//! checked, and only the result fields are written back.

use crate::loader::GuestRam;
use synic_pd::Instance;

use crate::peers::{MsrOutcome, Peers};

/// MSR_AMD64_SEV_ES_GHCB.
pub const MSR_GHCB: u32 = 0xc001_0130;

/// GHCB MSR protocol requests and responses (GHCB specification, 2.3.1).
pub mod info {
    pub const SEV_INFO_RESP: u64 = 0x001;
    pub const SEV_INFO_REQ: u64 = 0x002;
    pub const TERM_REQ: u64 = 0x100;
    pub const MASK: u64 = 0xfff;
}

/// The GHCB protocol versions this VMM speaks.
pub const PROTOCOL_MIN: u64 = 1;
pub const PROTOCOL_MAX: u64 = 2;
/// The C-bit position reported in SEV_INFO (the guest uses the vTOM, not the C-bit;
/// 51 is what SNP parts report).
const C_BIT: u64 = 51;

/// Offsets in the GHCB page.
mod at {
    // Save area (VMSA layout) and its valid bitmap.
    pub const RAX: usize = 0x1f8;
    pub const RCX: usize = 0x308;
    pub const RDX: usize = 0x310;
    pub const SW_EXIT_CODE: usize = 0x390;
    pub const SW_EXIT_INFO_1: usize = 0x398;
    pub const VALID_BITMAP: usize = 0x3f0;
    pub const USAGE: usize = 0xffc;
    // The Hyper-V hypercall layout (usage 1): input data at 0, then these.
    pub const HV_OUTPUT_GPA: usize = 0xfe8;
    pub const HV_CONTROL: usize = 0xff0;
}

/// `ghcb_usage`.
pub mod usage {
    pub const DEFAULT: u32 = 0;
    pub const HYPERV_CALL: u32 = 1;
}

/// SVM_EXIT_MSR.
const EXIT_MSR: u64 = 0x7c;
/// sw_exit_info_1 when the hypervisor refuses: bit 0 set, reason in the upper half
/// (GHCB spec: "1 = error, exception in exit_info_2"); Linux only checks low 32 bits.
const EXIT_INFO_ERROR: u64 = 1;

pub const PAGE: u64 = 4096;

/// Where the paravisor puts the guest's GHCB: a page of the legacy hole that the
/// e820 map reserves, so the guest never takes it as RAM.
pub const PAGE_GPA: u64 = 0xa_0000;

/// What a VMGEXIT came to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The guest asked to be terminated (reason set and code from the request).
    Terminate {
        set: u8,
        reason: u8,
    },
    /// The GHCB named memory the VMM cannot reach, or a peer did not answer.
    Failed(&'static str),
}

/// One vCPU's GHCB MSR.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ghcb {
    msr: u64,
    /// The page the paravisor set up for the guest (its GPA below the vTOM).
    page: u64,
}

impl Ghcb {
    /// A vCPU whose GHCB MSR starts out holding `page` (4 KiB aligned), as the
    /// paravisor registers it before the guest runs.
    pub fn new(page: u64) -> Self {
        let page = page & !(PAGE - 1);
        Self { msr: page, page }
    }

    pub fn read_msr(&self) -> u64 {
        self.msr
    }

    pub fn write_msr(&mut self, value: u64) {
        self.msr = value;
    }

    /// Handles a VMGEXIT. `ram` is guest RAM; the GHCB page must be the one the
    /// paravisor registered (a guest cannot make the VMM write anywhere else).
    /// `hypervisor_synic` is the SynIC instance that stands for the hypervisor's.
    pub fn vmgexit(
        &mut self,
        ram: &dyn GuestRam,
        peers: &mut dyn Peers,
        hypervisor_synic: Instance,
    ) -> Outcome {
        let request = self.msr & info::MASK;
        if request != 0 {
            return self.msr_protocol(request);
        }
        if self.msr != self.page {
            return Outcome::Failed("the GHCB MSR names a page the paravisor did not register");
        }
        let mut page = [0u8; PAGE as usize];
        if ram.read_gpa(self.page, &mut page).is_err() {
            return Outcome::Failed("the GHCB page is not guest RAM");
        }
        match u32_at(&page, at::USAGE) {
            usage::HYPERV_CALL => {
                let control = u64_at(&page, at::HV_CONTROL);
                let output = u64_at(&page, at::HV_OUTPUT_GPA);
                // The input is the page's own head; a slow call reads it there.
                let Some(result) = peers.hypercall(control, self.page, output) else {
                    return Outcome::Failed("hvcall-pd did not answer a GHCB hypercall");
                };
                self.write(ram, at::HV_CONTROL, result)
            }
            usage::DEFAULT => self.default_exit(ram, &page, peers, hypervisor_synic),
            // Unknown usages: nothing to do, nothing written (the guest sees no
            // answer, as from a hypervisor that ignores them).
            _ => Outcome::Done,
        }
    }

    fn msr_protocol(&mut self, request: u64) -> Outcome {
        match request {
            info::SEV_INFO_REQ => {
                self.msr = info::SEV_INFO_RESP
                    | (PROTOCOL_MAX << 48)
                    | (PROTOCOL_MIN << 32)
                    | (C_BIT << 24);
                Outcome::Done
            }
            info::TERM_REQ => Outcome::Terminate {
                set: ((self.msr >> 12) & 0xf) as u8,
                reason: ((self.msr >> 16) & 0xff) as u8,
            },
            // Requests this VMM does not serve get the "unsupported" answer of the
            // spec: the MSR is left as the guest wrote it.
            _ => Outcome::Done,
        }
    }

    fn default_exit(
        &mut self,
        ram: &dyn GuestRam,
        page: &[u8],
        peers: &mut dyn Peers,
        synic: Instance,
    ) -> Outcome {
        let valid = |offset: usize| {
            let bit = offset / 8;
            page.get(at::VALID_BITMAP + bit / 8)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        };
        if u64_at(page, at::SW_EXIT_CODE) != EXIT_MSR || !valid(at::RCX) {
            return self.write(ram, at::SW_EXIT_INFO_1, EXIT_INFO_ERROR);
        }
        let msr = u64_at(page, at::RCX) as u32;
        let is_write = u64_at(page, at::SW_EXIT_INFO_1) == 1;
        if is_write && !(valid(at::RAX) && valid(at::RDX)) {
            return self.write(ram, at::SW_EXIT_INFO_1, EXIT_INFO_ERROR);
        }
        let value = (u64_at(page, at::RAX) & 0xffff_ffff) | (u64_at(page, at::RDX) << 32);
        match peers.synic_msr(synic, msr, is_write.then_some(value)) {
            MsrOutcome::Done(read) => {
                if !is_write {
                    let r = self.write(ram, at::RAX, read & 0xffff_ffff);
                    if r != Outcome::Done {
                        return r;
                    }
                    let r = self.write(ram, at::RDX, read >> 32);
                    if r != Outcome::Done {
                        return r;
                    }
                }
                self.write(ram, at::SW_EXIT_INFO_1, 0)
            }
            MsrOutcome::Gp | MsrOutcome::NotMine => {
                self.write(ram, at::SW_EXIT_INFO_1, EXIT_INFO_ERROR)
            }
            MsrOutcome::Failed => Outcome::Failed("synic-pd did not answer a GHCB MSR access"),
        }
    }

    fn write(&self, ram: &dyn GuestRam, offset: usize, value: u64) -> Outcome {
        match ram.write_gpa(self.page + offset as u64, &value.to_le_bytes()) {
            Ok(()) => Outcome::Done,
            Err(_) => Outcome::Failed("the GHCB page is not guest RAM"),
        }
    }
}

fn u64_at(page: &[u8], offset: usize) -> u64 {
    page.get(offset..offset + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn u32_at(page: &[u8], offset: usize) -> u32 {
    page.get(offset..offset + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

#[cfg(test)]
mod tests;
