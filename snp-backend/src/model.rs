//! A model SNP machine: the RMP, the VMPL0 CPU and a model hypervisor that answers
//! the GHCB protocols the way the spec says, or lies in a chosen way.
//!
//! The model keeps the facts tests need to judge the paravisor: which pages the
//! host touched ([`SnpModel::host_touched`]), whether it was asked to terminate,
//! and the RMP itself. Addresses: system physical = private GPA (identity), the
//! shared alias is `gpa | 2^vtom_bit`.

use crate::backend::{AP_CREATE, AP_CREATION};
use crate::cpu::SnpCpu;
use crate::ghcb_host::HostRequest;
use crate::ghcb_msr::{MsrRequest, MsrResponse, PscOp, GHCB_PROTOCOL_VERSION};
use crate::ghcb_page::{hv, nae, off, Ghcb};
use crate::psc::{self, Psc};
use crate::rmp::{Fault, PageSize, Rmp};
use crate::vmsa::{self, Vmsa};

/// Ways the model host misbehaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lies {
    /// Report page-state changes done without doing the RMPUPDATE.
    pub psc_skip_rmpupdate: bool,
    /// The same for the MSR protocol's single-page change.
    pub msr_psc_skip: bool,
    /// Fail page-state changes with this sw_exit_info_2.
    pub psc_error: u64,
    /// Return without advancing `cur_entry`.
    pub psc_stall: bool,
    /// Rewrite the first entry's GFN.
    pub psc_rewrite_entry: bool,
    /// Answer MSR requests with a SEV_INFO response regardless.
    pub msr_wrong_response: bool,
    /// Offer only GHCB protocol version 1.
    pub old_protocol: bool,
    /// Register a different GHCB than asked.
    pub register_other: bool,
    /// Hypercall result with reserved bits set.
    pub hv_bad_result: bool,
    /// Make this private page hypervisor-owned behind the paravisor's back.
    pub steal_gfn: Option<u64>,
}

/// A scripted guest exit the model produces when the guest VMPL runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestExit {
    pub code: u64,
    pub info1: u64,
    pub info2: u64,
    pub rax: u64,
    pub rcx: u64,
}

const LOG: usize = 64;

/// The model machine with `N` pages of RAM from GPA 0.
#[derive(Debug)]
pub struct SnpModel<const N: usize> {
    pub rmp: Rmp<N>,
    pub vtom_bit: u8,
    pub lies: Lies,
    pub ghcb: Ghcb,
    pub registered_gfn: Option<u64>,
    pub terminated: Option<(u8, u8)>,
    pub next_exit: GuestExit,
    pub vmgexits: u32,
    touched: [u64; LOG],
    touched_len: usize,
    vmsas: [Option<(u64, Vmsa)>; 2],
    created_vcpu: Option<u64>,
    pub last_hypercall: Option<(u64, u64)>,
}

impl<const N: usize> SnpModel<N> {
    /// Every page assigned to the guest and not validated, as after launch for
    /// memory outside the measured image.
    pub fn new(vtom_bit: u8) -> Self {
        let mut rmp = Rmp::new(0);
        for i in 0..N as u64 {
            if let Some(e) = rmp.entry_mut(i * 0x1000) {
                e.assigned = true;
            }
        }
        Self {
            rmp,
            vtom_bit,
            lies: Lies::default(),
            ghcb: Ghcb::default(),
            registered_gfn: None,
            terminated: None,
            next_exit: GuestExit::default(),
            vmgexits: 0,
            touched: [0; LOG],
            touched_len: 0,
            vmsas: [None, None],
            created_vcpu: None,
            last_hypercall: None,
        }
    }

    fn boundary(&self) -> u64 {
        1 << self.vtom_bit
    }

    /// Hypervisor RMPUPDATE: assigning or reclaiming a page clears its
    /// validated bit, VMSA bit and VMPL permissions.
    pub fn rmpupdate(&mut self, spa: u64, assigned: bool) -> bool {
        match self.rmp.entry_mut(spa) {
            Some(e) => {
                *e = crate::rmp::RmpEntry {
                    assigned,
                    ..Default::default()
                };
                true
            }
            None => false,
        }
    }

    /// Pages (GFNs, private numbering) the host read or wrote.
    pub fn host_touched(&self) -> &[u64] {
        &self.touched[..self.touched_len]
    }

    /// The host touches `gpa` (any alias): recorded, and allowed only when the RMP
    /// lets the hypervisor have it.
    fn host_touch(&mut self, gpa: u64) -> bool {
        let spa = gpa & !self.boundary();
        if self.touched_len < LOG {
            self.touched[self.touched_len] = spa / 0x1000;
            self.touched_len += 1;
        }
        self.rmp.entry(spa).is_some_and(|e| !e.assigned)
    }

    fn msr_request(&mut self, v: u64) -> u64 {
        let Ok(req) = MsrRequest::decode(v) else {
            return 0;
        };
        if self.lies.msr_wrong_response {
            return MsrResponse::SevInfo {
                max: 2,
                min: 1,
                cbit: 51,
            }
            .encode();
        }
        let resp = match req {
            MsrRequest::SevInfo => {
                let max = if self.lies.old_protocol {
                    1
                } else {
                    GHCB_PROTOCOL_VERSION
                };
                MsrResponse::SevInfo {
                    max,
                    min: 1,
                    cbit: 51,
                }
            }
            MsrRequest::Cpuid { .. } => MsrResponse::Cpuid { value: 0 },
            MsrRequest::RegisterGhcb { gfn } => {
                let private = (gfn << 12) & !self.boundary();
                let shared = self.rmp.entry(private).is_some_and(|e| !e.assigned);
                let gfn = if self.lies.register_other {
                    gfn + 1
                } else if shared && gfn << 12 & self.boundary() != 0 {
                    self.registered_gfn = Some(gfn);
                    gfn
                } else {
                    (1 << 52) - 1
                };
                MsrResponse::RegisterGhcb { gfn }
            }
            MsrRequest::PageState { gfn, op } => {
                let ok = self.lies.msr_psc_skip || self.rmpupdate(gfn << 12, op == PscOp::Private);
                MsrResponse::PageState {
                    error: u32::from(!ok),
                }
            }
            MsrRequest::RunVmpl { .. } => MsrResponse::RunVmpl { error: 1 },
            MsrRequest::HvFeatures => MsrResponse::HvFeatures { features: 1 },
            MsrRequest::Terminate { set, reason } => {
                self.terminated = Some((set, reason));
                return 0;
            }
        };
        resp.encode()
    }

    fn psc(&mut self) -> u64 {
        let Some(scratch) = self.ghcb.field(off::SW_SCRATCH) else {
            return 1;
        };
        let expected = self
            .registered_gfn
            .map(|g| (g << 12) + off::SHARED_BUFFER as u64);
        if Some(scratch) != expected || self.lies.psc_error != 0 {
            return self.lies.psc_error.max(1);
        }
        let buf = self.ghcb.shared_buffer();
        let Ok(d) = Psc::parse(buf) else {
            return 2;
        };
        let (cur, end) = (d.cur_entry, d.end_entry);
        let mut todo = [(0u64, PscOp::Private); psc::MAX_ENTRIES];
        let mut n = 0;
        for i in cur..=end {
            match d.entry(i) {
                Ok(e) if e.size == PageSize::Size4K => {
                    todo[n] = (e.gfn, e.op);
                    n += 1;
                }
                _ => return 3,
            }
        }
        if self.lies.psc_stall {
            return 0;
        }
        if !self.lies.psc_skip_rmpupdate {
            for &(gfn, op) in &todo[..n] {
                if !self.rmpupdate(gfn << 12, op == PscOp::Private) {
                    return 4;
                }
            }
        }
        let buf = self.ghcb.shared_buffer_mut();
        psc::set_cur_entry(buf, end + 1);
        if self.lies.psc_rewrite_entry {
            if let Some(b) = buf.get_mut(psc::HEADER + 1..psc::HEADER + 2) {
                b[0] ^= 0x10;
            }
        }
        0
    }

    fn ghcb_exit(&mut self) {
        let request = HostRequest::decode(&self.ghcb);
        if let Ok(HostRequest::HvHypercall {
            control,
            output_gpa,
        }) = request
        {
            self.last_hypercall = Some((control, output_gpa));
            if output_gpa != 0 {
                self.host_touch(output_gpa);
            }
            let result = if self.lies.hv_bad_result { 1 << 20 } else { 0 };
            self.ghcb.set_u64(hv::CONTROL_OR_RESULT, result);
            return;
        }
        if self.ghcb.protocol_version() != GHCB_PROTOCOL_VERSION {
            return;
        }
        let Ok(HostRequest::Exit { code, info1, info2 }) = request else {
            return;
        };
        match code {
            Some(nae::PSC) => {
                let r = self.psc();
                self.ghcb.set_field(off::SW_EXIT_INFO_2, r);
            }
            Some(AP_CREATION) => {
                let (Some(i1), Some(gpa)) = (info1, info2) else {
                    return;
                };
                let is_vmsa = self.rmp.entry(gpa).is_some_and(|e| e.vmsa);
                let ok = i1 & 0xfff == AP_CREATE && (i1 >> 16) & 0xf == 2 && is_vmsa;
                if ok {
                    self.created_vcpu = Some(gpa);
                }
                self.ghcb.set_field(off::SW_EXIT_INFO_1, u64::from(!ok));
            }
            Some(nae::SNP_RUN_VMPL) => {
                let ok = info1 == Some(2) && self.created_vcpu.is_some();
                if ok {
                    self.run_guest();
                }
                self.ghcb.set_field(off::SW_EXIT_INFO_2, u64::from(!ok));
            }
            _ => {}
        }
    }

    fn run_guest(&mut self) {
        let Some(gpa) = self.created_vcpu else { return };
        let x = self.next_exit;
        if let Some(v) = self.vmsa_slot(gpa) {
            v.set_u64(vmsa::off::GUEST_EXIT_CODE, x.code);
            v.set_u64(vmsa::off::GUEST_EXIT_INFO_1, x.info1);
            v.set_u64(vmsa::off::GUEST_EXIT_INFO_2, x.info2);
            v.set_u64(vmsa::off::RAX, x.rax);
            v.set_u64(vmsa::off::RCX, x.rcx);
        }
    }

    fn vmsa_slot(&mut self, gpa: u64) -> Option<&mut Vmsa> {
        self.vmsas
            .iter_mut()
            .flatten()
            .find(|(g, _)| *g == gpa)
            .map(|(_, v)| v)
    }
}

impl<const N: usize> SnpCpu for SnpModel<N> {
    type Rmp = Rmp<N>;

    fn rmp(&mut self) -> &mut Rmp<N> {
        &mut self.rmp
    }

    fn msr_protocol(&mut self, value: u64) -> u64 {
        self.vmgexits += 1;
        self.msr_request(value)
    }

    fn ghcb(&mut self) -> &mut Ghcb {
        &mut self.ghcb
    }

    fn vmgexit(&mut self, ghcb_gpa: u64) {
        self.vmgexits += 1;
        if Some(ghcb_gpa >> 12) != self.registered_gfn {
            return;
        }
        self.host_touch(ghcb_gpa);
        self.ghcb_exit();
        if let Some(gfn) = self.lies.steal_gfn.take() {
            self.rmpupdate(gfn << 12, false);
        }
    }

    fn read_shared(&mut self, gpa: u64, buf: &mut [u8]) {
        buf.fill(0);
        let _ = gpa;
    }

    fn write_vmsa(&mut self, gpa: u64, v: &Vmsa) -> Result<(), Fault> {
        self.rmp
            .check_access(0, gpa, true, crate::rmp::AccessKind::Write)?;
        if let Some(slot) = self.vmsa_slot(gpa) {
            *slot = v.clone();
            return Ok(());
        }
        match self.vmsas.iter_mut().find(|s| s.is_none()) {
            Some(s) => {
                *s = Some((gpa, v.clone()));
                Ok(())
            }
            None => Err(Fault::Gp),
        }
    }

    fn read_vmsa(&mut self, gpa: u64) -> Result<Vmsa, Fault> {
        self.rmp
            .check_access(0, gpa, true, crate::rmp::AccessKind::Read)?;
        self.vmsa_slot(gpa).map(|v| v.clone()).ok_or(Fault::Gp)
    }
}
