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
//!
//! The page layout, the MSR protocol's encodings and the hypervisor-side decoding
//! of a page are snp-backend's ([`snp_backend::ghcb_msr`], [`snp_backend::ghcb_page`],
//! [`snp_backend::ghcb_host`]): one GHCB implementation for the paravisor's own
//! use of the GHCB on SNP, its model host, and this VMM.

use snp_backend::ghcb_host::{msr_read_answer, HostRequest, EXIT_INFO_ERROR};
use snp_backend::ghcb_msr::{MsrRequest, MsrResponse};
use snp_backend::ghcb_page::{hv, off, Ghcb as GhcbPage, GHCB_SIZE};
use synic_pd::Instance;

use crate::loader::GuestRam;
use crate::peers::{MsrOutcome, Peers};

pub use snp_backend::ghcb_msr::MSR_GHCB;

/// GHCB MSR protocol codes (snp-backend's), under the names the exit tests use.
pub mod info {
    pub use snp_backend::ghcb_msr::info::*;
    pub const TERM_REQ: u64 = TERMINATE_REQ;
    /// GHCBInfo, the request code in the MSR's low 12 bits.
    pub const MASK: u64 = 0xfff;
}

/// The GHCB protocol versions this VMM speaks.
pub const PROTOCOL_MIN: u64 = 1;
pub const PROTOCOL_MAX: u64 = 2;
/// The C-bit position reported in SEV_INFO (the guest uses the vTOM, not the C-bit;
/// 51 is what SNP parts report).
const C_BIT: u8 = 51;

pub const PAGE: u64 = GHCB_SIZE as u64;

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
        if self.msr & info::MASK != 0 {
            return self.msr_protocol();
        }
        if self.msr != self.page {
            return Outcome::Failed("the GHCB MSR names a page the paravisor did not register");
        }
        let mut page = GhcbPage::default();
        if ram.read_gpa(self.page, &mut page.0).is_err() {
            return Outcome::Failed("the GHCB page is not guest RAM");
        }
        match HostRequest::decode(&page) {
            Ok(HostRequest::HvHypercall {
                control,
                output_gpa,
            }) => {
                // The input is the page's own head; a slow call reads it there.
                let Some(result) = peers.hypercall(control, self.page, output_gpa) else {
                    return Outcome::Failed("hvcall-pd did not answer a GHCB hypercall");
                };
                self.write(ram, &[(hv::CONTROL_OR_RESULT, result)])
            }
            Ok(HostRequest::Msr { index, write }) => {
                match peers.synic_msr(hypervisor_synic, index, write) {
                    MsrOutcome::Done(read) if write.is_none() => {
                        self.write(ram, &msr_read_answer(read))
                    }
                    MsrOutcome::Done(_) => self.write(ram, &[(off::SW_EXIT_INFO_1, 0)]),
                    MsrOutcome::Gp | MsrOutcome::NotMine => self.refuse(ram),
                    MsrOutcome::Failed => {
                        Outcome::Failed("synic-pd did not answer a GHCB MSR access")
                    }
                }
            }
            // Only MSR exits are served here; anything else, or an MSR exit
            // without its registers, gets the error answer.
            Ok(HostRequest::Exit { .. }) | Err(_) => self.refuse(ram),
            // Unknown usages: nothing to do, nothing written (the guest sees no
            // answer, as from a hypervisor that ignores them).
            Ok(HostRequest::OtherUsage(_)) => Outcome::Done,
        }
    }

    fn msr_protocol(&mut self) -> Outcome {
        // Like KVM, the hypervisor side ignores the reserved bits of the two
        // requests it serves: only their defined fields are decoded.
        let defined = match self.msr & info::MASK {
            info::SEV_INFO_REQ => info::SEV_INFO_REQ,
            info::TERMINATE_REQ => self.msr & 0xff_ffff,
            _ => return Outcome::Done,
        };
        match MsrRequest::decode(defined) {
            Ok(MsrRequest::SevInfo) => {
                self.msr = MsrResponse::SevInfo {
                    max: PROTOCOL_MAX as u16,
                    min: PROTOCOL_MIN as u16,
                    cbit: C_BIT,
                }
                .encode();
                Outcome::Done
            }
            Ok(MsrRequest::Terminate { set, reason }) => Outcome::Terminate { set, reason },
            // Requests this VMM does not serve get the "unsupported" answer of the
            // spec: the MSR is left as the guest wrote it.
            _ => Outcome::Done,
        }
    }

    fn refuse(&self, ram: &dyn GuestRam) -> Outcome {
        self.write(ram, &[(off::SW_EXIT_INFO_1, EXIT_INFO_ERROR)])
    }

    /// Writes the answer's fields into the registered page, in order.
    fn write(&self, ram: &dyn GuestRam, fields: &[(usize, u64)]) -> Outcome {
        for &(offset, value) in fields {
            if ram
                .write_gpa(self.page + offset as u64, &value.to_le_bytes())
                .is_err()
            {
                return Outcome::Failed("the GHCB page is not guest RAM");
            }
        }
        Outcome::Done
    }
}

#[cfg(test)]
mod tests;
