//! The SNP implementation of `isolation::Isolation`, generic over [`SnpCpu`].
//!
//! Ordering rules it follows (each guarded by a test in `tests`):
//! - private -> shared: rescind validation (PVALIDATE 0) *before* the host's
//!   RMPUPDATE, so no validated page is ever handed to the host;
//! - shared -> private: the host's RMPUPDATE, then PVALIDATE 1; a fault there means
//!   the host claimed a change it did not make;
//! - every host answer (MSR response code, PSC progress, hypercall result) is
//!   decoded by a bounded parser and checked against the request before use.
//!
//! Not yet here: the backend keeps no page-state table of its own, so asking to
//! share a page that is already shared reaches PVALIDATE on a hypervisor-owned
//! page (#NPF on hardware, `HostViolation` here) partway through the range.

use isolation::backend::{require_class, IsoResult};
use isolation::{
    Gpa, GpaClass, GuestAccess, HostReply, Hypercall, Isolation, IsolationError, PageRange,
    Partition, PartitionKind, VcpuExit, VpIndex, PAGE_SIZE,
};

use crate::cpu::{RmpInstructions, SnpCpu};
use crate::ghcb_msr::{expect_response, MsrRequest, MsrResponse, PscOp, GHCB_PROTOCOL_VERSION};
use crate::ghcb_page::{self, hv, nae, off, read_hv_result, usage};
use crate::psc::{self, Psc, PscEntry, MAX_ENTRIES};
use crate::rmp::{code, Fault, PageSize, Perms, RmpAdjust};
use crate::vmsa::{self, check_guest_vmsa, Vmsa};

/// The guest's VMPL in the paravisor design.
pub const GUEST_VMPL: u8 = 2;

/// Termination reason set 0 (GHCB spec): general.
pub const TERM_SET_GENERAL: u8 = 0;

/// The SNP backend.
#[derive(Debug)]
pub struct SnpBackend<'a, C> {
    cpu: C,
    partition: Partition<'a>,
    ghcb_gpa: u64,
    guest_vmsa: Option<u64>,
}

fn hw(rax: u32) -> IsolationError {
    IsolationError::Hardware(u64::from(rax))
}

fn fault(f: Fault) -> IsolationError {
    match f {
        // VMPL0 faulting on a page means the host took it from us.
        Fault::Npf { .. } | Fault::VcNotValidated => IsolationError::HostViolation,
        Fault::Gp => IsolationError::Hardware(u64::MAX),
    }
}

impl<'a, C: SnpCpu> SnpBackend<'a, C> {
    /// Negotiates the GHCB protocol and registers the GHCB at `ghcb_gpa` (its
    /// shared alias). Refuses a host that offers no version 2 or registers a
    /// different page.
    pub fn new(mut cpu: C, partition: Partition<'a>, ghcb_gpa: Gpa) -> IsoResult<Self> {
        if !matches!(partition.kind(), PartitionKind::Snp { .. }) {
            return Err(IsolationError::Gpa(isolation::GpaError::BadPartition));
        }
        if partition.classify(ghcb_gpa)? != GpaClass::Shared || !ghcb_gpa.is_page_aligned() {
            return Err(IsolationError::WrongClass {
                gpa: ghcb_gpa,
                expected: GpaClass::Shared,
            });
        }
        let info = msr_call(&mut cpu, MsrRequest::SevInfo)?;
        let MsrResponse::SevInfo { max, min, .. } = info else {
            return Err(IsolationError::HostViolation);
        };
        if !(min..=max).contains(&GHCB_PROTOCOL_VERSION) {
            return Err(IsolationError::HostRefused(u64::from(max)));
        }
        share_ghcb_page(&mut cpu, &partition, ghcb_gpa)?;
        let gfn = ghcb_gpa.gfn();
        let reg = msr_call(&mut cpu, MsrRequest::RegisterGhcb { gfn })?;
        match reg {
            MsrResponse::RegisterGhcb { gfn: got } if got == gfn => {}
            MsrResponse::RegisterGhcb { gfn: got } => return Err(IsolationError::HostRefused(got)),
            _ => return Err(IsolationError::HostViolation),
        }
        Ok(Self {
            cpu,
            partition,
            ghcb_gpa: ghcb_gpa.0,
            guest_vmsa: None,
        })
    }

    pub fn cpu(&mut self) -> &mut C {
        &mut self.cpu
    }

    fn private_range(&self, range: PageRange) -> IsoResult<PageRange> {
        let start = self.partition.alias(range.start, GpaClass::Private)?;
        let r = PageRange::new(start, range.pages)?;
        self.require_private(r)?;
        Ok(r)
    }

    fn require_private(&self, range: PageRange) -> IsoResult {
        require_class(&self.partition, range, GpaClass::Private)
    }

    fn pvalidate(&mut self, gpa: Gpa, validate: bool) -> IsoResult<bool> {
        let r = self
            .cpu
            .rmp()
            .pvalidate(gpa.0, PageSize::Size4K, validate)
            .map_err(fault)?;
        if r.rax != code::SUCCESS {
            return Err(hw(r.rax));
        }
        Ok(!r.no_update)
    }

    /// One GHCB page-state change for up to [`MAX_ENTRIES`] pages, retried while
    /// the host makes progress.
    fn psc_chunk(&mut self, entries: &[PscEntry]) -> IsoResult {
        let shared_buffer = self.ghcb_gpa + off::SHARED_BUFFER as u64;
        let mut cur: u16 = 0;
        // Each round must complete at least one entry, so this bounds the rounds.
        for _ in 0..=entries.len() {
            let ghcb = self.cpu.ghcb();
            ghcb.clear_save_area();
            let len = psc::write(ghcb.shared_buffer_mut(), entries)
                .ok_or(IsolationError::HostViolation)?;
            psc::set_cur_entry(ghcb.shared_buffer_mut(), cur);
            ghcb.set_footer(GHCB_PROTOCOL_VERSION, usage::STANDARD);
            ghcb.set_field(off::SW_EXIT_CODE, nae::PSC);
            ghcb.set_field(off::SW_EXIT_INFO_1, 0);
            ghcb.set_field(off::SW_EXIT_INFO_2, 0);
            ghcb.set_field(off::SW_SCRATCH, shared_buffer);
            self.cpu.vmgexit(self.ghcb_gpa);
            let ghcb = self.cpu.ghcb();
            match ghcb.field(off::SW_EXIT_INFO_2) {
                Some(0) => {}
                Some(e) => return Err(IsolationError::HostRefused(e)),
                None => return Err(IsolationError::HostViolation),
            }
            let buf = ghcb
                .shared_buffer()
                .get(..len)
                .ok_or(IsolationError::HostViolation)?;
            let d = Psc::parse(buf).map_err(|_| IsolationError::HostViolation)?;
            let end =
                u16::try_from(entries.len() - 1).map_err(|_| IsolationError::HostViolation)?;
            if d.end_entry != end || d.cur_entry <= cur && !d.complete() {
                return Err(IsolationError::HostViolation);
            }
            // The host may only advance the 2 MiB progress field; a 4 KiB entry
            // that comes back different was rewritten under us.
            for (i, want) in (0..=end).zip(entries) {
                let got = d.entry(i).map_err(|_| IsolationError::HostViolation)?;
                if got.gfn != want.gfn || got.op != want.op || got.size != want.size {
                    return Err(IsolationError::HostViolation);
                }
            }
            if d.complete() {
                return Ok(());
            }
            cur = d.cur_entry;
        }
        Err(IsolationError::HostViolation)
    }

    fn page_state_change(&mut self, range: PageRange, op: PscOp) -> IsoResult {
        let mut buf = [PscEntry {
            gfn: 0,
            op,
            size: PageSize::Size4K,
            cur_page: 0,
        }; MAX_ENTRIES];
        let mut done = 0u64;
        while done < range.pages {
            let n = (range.pages - done).min(MAX_ENTRIES as u64) as usize;
            for (i, e) in buf.iter_mut().take(n).enumerate() {
                e.gfn = range.start.gfn() + done + i as u64;
            }
            self.psc_chunk(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    /// Checks, places and registers the guest's VMSA at private page `gpa`:
    /// RMPADJUST makes it a VMSA page, then the host is told to create the vCPU
    /// (NAE AP creation, GHCB spec §4.1.8).
    pub fn create_guest_vcpu(&mut self, gpa: Gpa, apic_id: u32, v: &Vmsa) -> IsoResult {
        self.require_private(PageRange::new(gpa, 1)?)?;
        check_guest_vmsa(v, GUEST_VMPL, self.partition.boundary())
            .map_err(|_| IsolationError::Hardware(0))?;
        self.cpu.write_vmsa(gpa.0, v).map_err(fault)?;
        let adj = RmpAdjust {
            target_vmpl: 1,
            perms: Perms::NONE,
            vmsa: true,
        };
        let rax = self
            .cpu
            .rmp()
            .rmpadjust(gpa.0, PageSize::Size4K, adj.to_rdx())
            .map_err(fault)?;
        if rax != code::SUCCESS {
            return Err(hw(rax));
        }
        let ghcb = self.cpu.ghcb();
        ghcb.clear_save_area();
        ghcb.set_footer(GHCB_PROTOCOL_VERSION, usage::STANDARD);
        ghcb.set_field(off::SW_EXIT_CODE, AP_CREATION);
        ghcb.set_field(
            off::SW_EXIT_INFO_1,
            u64::from(apic_id) << 32 | u64::from(GUEST_VMPL) << 16 | AP_CREATE,
        );
        ghcb.set_field(off::SW_EXIT_INFO_2, gpa.0);
        ghcb.set_field(off::RAX, v.u64_at(vmsa::off::SEV_FEATURES));
        self.cpu.vmgexit(self.ghcb_gpa);
        match self.cpu.ghcb().field(off::SW_EXIT_INFO_1) {
            Some(0) => {}
            Some(e) => return Err(IsolationError::HostRefused(e)),
            None => return Err(IsolationError::HostViolation),
        }
        self.guest_vmsa = Some(gpa.0);
        Ok(())
    }
}

/// NAE AP creation and its "create now" request.
pub const AP_CREATION: u64 = 0x8000_0013;
pub const AP_CREATE: u64 = 1;

/// Before any GHCB exists, the GHCB page goes from launch state (private) to
/// hypervisor-owned through the MSR protocol's page-state change: rescind
/// validation first, then ask; a non-zero error or a wrong response code stops boot.
fn share_ghcb_page<C: SnpCpu>(cpu: &mut C, partition: &Partition<'_>, ghcb_gpa: Gpa) -> IsoResult {
    let private = partition.alias(ghcb_gpa, GpaClass::Private)?;
    let r = cpu
        .rmp()
        .pvalidate(private.0, PageSize::Size4K, false)
        .map_err(fault)?;
    if r.rax != code::SUCCESS {
        return Err(hw(r.rax));
    }
    let req = MsrRequest::PageState {
        gfn: private.gfn(),
        op: PscOp::Shared,
    };
    match msr_call(cpu, req)? {
        MsrResponse::PageState { error: 0 } => Ok(()),
        MsrResponse::PageState { error } => Err(IsolationError::HostRefused(u64::from(error))),
        _ => Err(IsolationError::HostViolation),
    }
}

fn msr_call<C: SnpCpu>(cpu: &mut C, req: MsrRequest) -> IsoResult<MsrResponse> {
    let v = req
        .encode()
        .ok_or(IsolationError::Gpa(isolation::GpaError::BadPartition))?;
    let back = cpu.msr_protocol(v);
    expect_response(req, back).map_err(|_| IsolationError::HostViolation)
}

/// SVM exit codes found in the guest VMSA after a VMPL switch returns (the svm
/// platform's table: the VMSA's guest exit fields have the VMCB's encoding).
pub use isolation::svm::code as exit;

/// Decodes the guest's exit from its VMSA (written by the CPU, so trusted in
/// layout, but the values are the guest's own) with the svm decoder.
pub fn decode_guest_exit(v: &Vmsa) -> VcpuExit {
    isolation::svm::decode_exit(&isolation::svm::SvmExit {
        code: v.u64_at(vmsa::off::GUEST_EXIT_CODE),
        info1: v.u64_at(vmsa::off::GUEST_EXIT_INFO_1),
        info2: v.u64_at(vmsa::off::GUEST_EXIT_INFO_2),
        rax: v.u64_at(vmsa::off::RAX),
        rcx: v.u64_at(vmsa::off::RCX),
        rdx: v.u64_at(vmsa::off::RDX),
    })
}

impl<'a, C: SnpCpu> Isolation for SnpBackend<'a, C> {
    fn partition(&self) -> Partition<'_> {
        self.partition
    }

    fn run_vcpu(&mut self, vp: VpIndex) -> IsoResult<VcpuExit> {
        let vmsa_gpa = match (vp, self.guest_vmsa) {
            (VpIndex(0), Some(g)) => g,
            _ => return Err(IsolationError::Gpa(isolation::GpaError::Empty)),
        };
        let ghcb = self.cpu.ghcb();
        ghcb.clear_save_area();
        ghcb.set_footer(GHCB_PROTOCOL_VERSION, usage::STANDARD);
        ghcb.set_field(off::SW_EXIT_CODE, nae::SNP_RUN_VMPL);
        ghcb.set_field(off::SW_EXIT_INFO_1, u64::from(GUEST_VMPL));
        ghcb.set_field(off::SW_EXIT_INFO_2, 0);
        self.cpu.vmgexit(self.ghcb_gpa);
        match self.cpu.ghcb().field(off::SW_EXIT_INFO_2) {
            Some(0) => {}
            Some(e) => return Err(IsolationError::HostRefused(e)),
            None => return Err(IsolationError::HostViolation),
        }
        let v = self.cpu.read_vmsa(vmsa_gpa).map_err(fault)?;
        Ok(decode_guest_exit(&v))
    }

    fn accept_private(&mut self, range: PageRange) -> IsoResult {
        self.require_private(range)?;
        for page in range.iter() {
            if !self.pvalidate(page, true)? {
                return Err(IsolationError::AlreadyDone(page));
            }
        }
        Ok(())
    }

    fn set_visibility(&mut self, range: PageRange, to: GpaClass) -> IsoResult {
        let private = self.private_range(range)?;
        match to {
            GpaClass::Shared => {
                for page in private.iter() {
                    self.pvalidate(page, false)?;
                }
                self.page_state_change(private, PscOp::Shared)
            }
            GpaClass::Private => {
                self.page_state_change(private, PscOp::Private)?;
                for page in private.iter() {
                    if !self.pvalidate(page, true)? {
                        // Still validated: the host never took it through RMPUPDATE.
                        return Err(IsolationError::HostViolation);
                    }
                }
                Ok(())
            }
        }
    }

    fn set_guest_access(&mut self, range: PageRange, access: GuestAccess) -> IsoResult {
        self.require_private(range)?;
        let perms = access.bits(
            Perms::READ,
            Perms::WRITE,
            Perms::EXEC_USER.union(Perms::EXEC_SUPER),
        );
        let rdx = RmpAdjust {
            target_vmpl: GUEST_VMPL,
            perms,
            vmsa: false,
        }
        .to_rdx();
        for page in range.iter() {
            let rax = self
                .cpu
                .rmp()
                .rmpadjust(page.0, PageSize::Size4K, rdx)
                .map_err(fault)?;
            if rax != code::SUCCESS {
                return Err(hw(rax));
            }
        }
        Ok(())
    }

    fn forward_hypercall(&mut self, call: Hypercall) -> IsoResult<HostReply> {
        let mut data = [0u8; hv::DATA_LEN];
        if let Some(inp) = call.input {
            let room = (PAGE_SIZE - inp.0 % PAGE_SIZE) as usize;
            let n = room.min(hv::DATA_LEN);
            self.cpu.read_shared(inp.0, &mut data[..n]);
        }
        let ghcb = self.cpu.ghcb();
        ghcb.0.fill(0);
        ghcb.0[hv::DATA..hv::DATA + hv::DATA_LEN].copy_from_slice(&data);
        ghcb.set_u64(hv::OUTPUT_GPA, call.output.map_or(0, |g| g.0));
        ghcb.set_u64(hv::CONTROL_OR_RESULT, call.control);
        ghcb.set_footer(GHCB_PROTOCOL_VERSION, usage::HYPERV_HYPERCALL);
        self.cpu.vmgexit(self.ghcb_gpa);
        let r = read_hv_result(self.cpu.ghcb(), call.control)
            .map_err(|_| IsolationError::HostViolation)?;
        Ok(HostReply::Hypercall {
            result: u64::from(r.status) | u64::from(r.reps_done) << 32,
        })
    }

    fn forward_terminate(&mut self, reason: u16) -> IsoResult<HostReply> {
        let req = MsrRequest::Terminate {
            set: TERM_SET_GENERAL,
            reason: reason as u8,
        };
        let v = req.encode().ok_or(IsolationError::HostViolation)?;
        self.cpu.msr_protocol(v);
        // A host that returns from termination is not one to keep talking to.
        Err(IsolationError::HostViolation)
    }
}

// Keeps the GHCB layout constant used by tests and the model in one import path.
pub use ghcb_page::Ghcb;
