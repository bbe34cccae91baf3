//! The TDX implementation of `isolation::Isolation`, generic over [`TdxCpu`].
//!
//! Rules it follows (each guarded by a test in `tests`):
//! - private memory is used only after TDG.MEM.PAGE.ACCEPT returned SUCCESS;
//!   PAGE_ALREADY_ACCEPTED (a warning, bit 63 clear) is reported, never ignored;
//! - shared -> private: MapGPA, then ACCEPT of every page; a page the host claims
//!   converted but that is not pending (walk fails, or already accepted) is a lie;
//! - MapGPA RETRY must make progress inside the request (GHCI R11);
//! - hypercalls leave the TD only with host-visible buffers.

use isolation::backend::{require_class, IsoResult};
use isolation::{
    Gpa, GpaClass, GuestAccess, HostReply, Hypercall, Isolation, IsolationError, PageRange,
    Partition, PartitionKind, VcpuExit, VpIndex,
};

use crate::cpu::{L2State, Regs, TdxCpu};
use crate::exit::{self, vm_flags, ExitError};
use crate::model::attr;
use crate::status::{leaf, Status};
use crate::vmcall::{ghci, map_gpa_reply, MapGpaReply, Vmcall};

/// The guest's L2 VM index.
pub const GUEST_VM: u8 = 1;

#[derive(Debug)]
pub struct TdxBackend<'a, C> {
    cpu: C,
    partition: Partition<'a>,
}

fn hw(s: Status) -> IsolationError {
    IsolationError::Hardware(s.0)
}

impl<'a, C: TdxCpu + L2State> TdxBackend<'a, C> {
    pub fn new(cpu: C, partition: Partition<'a>) -> IsoResult<Self> {
        if !matches!(partition.kind(), PartitionKind::Tdx { .. }) {
            return Err(IsolationError::Gpa(isolation::GpaError::BadPartition));
        }
        Ok(Self { cpu, partition })
    }

    pub fn cpu(&mut self) -> &mut C {
        &mut self.cpu
    }

    fn call(&mut self, mut regs: Regs) -> Regs {
        self.cpu.tdcall(&mut regs);
        regs
    }

    fn accept(&mut self, page: Gpa) -> IsoResult {
        let out = self.call(Regs {
            rax: leaf::MEM_PAGE_ACCEPT,
            rcx: page.0,
            ..Regs::default()
        });
        let s = Status(out.rax);
        if s.is(Status::SUCCESS) {
            Ok(())
        } else if s.is(Status::PAGE_ALREADY_ACCEPTED) {
            Err(IsolationError::AlreadyDone(page))
        } else {
            Err(hw(s))
        }
    }

    fn vmcall(&mut self, call: Vmcall) -> IsoResult<Regs> {
        let out = self.call(call.to_regs());
        if Status(out.rax).is_error() {
            return Err(hw(Status(out.rax)));
        }
        Ok(out)
    }

    /// MapGPA of `[gpa, gpa + size)`, following RETRY while the host progresses.
    fn map_gpa(&mut self, gpa: u64, size: u64) -> IsoResult {
        let end = gpa + size;
        let mut from = gpa;
        // Each RETRY must advance by at least one page.
        for _ in 0..=size / 4096 {
            let out = self.vmcall(Vmcall::MapGpa {
                gpa: from,
                size: end - from,
            })?;
            match map_gpa_reply(&out, from, end - from) {
                Ok(MapGpaReply::Done) => return Ok(()),
                Ok(MapGpaReply::Retry { from: next }) => from = next,
                Ok(MapGpaReply::Refused(s)) => return Err(IsolationError::HostRefused(s)),
                Err(_) => return Err(IsolationError::HostViolation),
            }
        }
        Err(IsolationError::HostViolation)
    }

    fn require_private(&self, range: PageRange) -> IsoResult {
        require_class(&self.partition, range, GpaClass::Private)
    }
}

impl<'a, C: TdxCpu + L2State> Isolation for TdxBackend<'a, C> {
    fn partition(&self) -> Partition<'_> {
        self.partition
    }

    fn run_vcpu(&mut self, vp: VpIndex) -> IsoResult<VcpuExit> {
        if vp != VpIndex(0) {
            return Err(IsolationError::Gpa(isolation::GpaError::Empty));
        }
        let out = self.call(Regs {
            rax: leaf::VP_ENTER,
            rcx: vm_flags(GUEST_VM),
            ..Regs::default()
        });
        let gprs = self.cpu.l2_gprs();
        exit::decode(&out, &gprs).map_err(|e| match e {
            ExitError::Status(s) => hw(s),
            ExitError::EntryFailure(r) => IsolationError::Hardware(u64::from(r)),
        })
    }

    fn accept_private(&mut self, range: PageRange) -> IsoResult {
        self.require_private(range)?;
        for page in range.iter() {
            self.accept(page)?;
        }
        Ok(())
    }

    fn set_visibility(&mut self, range: PageRange, to: GpaClass) -> IsoResult {
        let private = self.partition.alias(range.start, GpaClass::Private)?;
        let private = PageRange::new(private, range.pages)?;
        self.require_private(private)?;
        let size = range.pages * 4096;
        match to {
            GpaClass::Shared => {
                let shared = self.partition.alias(private.start, GpaClass::Shared)?;
                self.map_gpa(shared.0, size)
            }
            GpaClass::Private => {
                self.map_gpa(private.start.0, size)?;
                for page in private.iter() {
                    match self.accept(page) {
                        Ok(()) => {}
                        // Not pending: the host never did the conversion it reported.
                        Err(IsolationError::AlreadyDone(_)) => {
                            return Err(IsolationError::HostViolation)
                        }
                        Err(IsolationError::Hardware(s))
                            if Status(s).is(Status::EPT_WALK_FAILED) =>
                        {
                            return Err(IsolationError::HostViolation)
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    fn set_guest_access(&mut self, range: PageRange, access: GuestAccess) -> IsoResult {
        self.require_private(range)?;
        let a = access.bits(attr::R, attr::W, attr::XS | attr::XU);
        let mask = u64::from(attr::R | attr::W | attr::XS | attr::XU) << 16;
        for page in range.iter() {
            let out = self.call(Regs {
                rax: leaf::MEM_PAGE_ATTR_WR,
                rcx: page.0,
                rdx: u64::from(a) << 16,
                r8: mask,
                ..Regs::default()
            });
            let s = Status(out.rax);
            if s.is(Status::EPT_WALK_FAILED) {
                // An accepted page that no longer walks was removed by the host.
                return Err(IsolationError::HostViolation);
            }
            if !s.is(Status::SUCCESS) {
                return Err(hw(s));
            }
        }
        Ok(())
    }

    fn forward_hypercall(&mut self, call: Hypercall) -> IsoResult<HostReply> {
        if call.control == 0 {
            // R10 = 0 would select a GHCI call, not a hypercall.
            return Err(IsolationError::Hardware(0));
        }
        let out = self.vmcall(Vmcall::HvHypercall {
            control: call.control,
            input: call.input.map_or(0, |g| g.0),
            output: call.output.map_or(0, |g| g.0),
        })?;
        let r = out.r11;
        // Hyper-V result: status 15:0, reps done 43:32, the rest reserved.
        let reps_asked = (call.control >> 32) & 0xfff;
        let bad = r & 0xffff_f000_ffff_0000 != 0 || (r >> 32) & 0xfff > reps_asked;
        if out.r10 != ghci::SUCCESS || bad {
            return Err(IsolationError::HostViolation);
        }
        Ok(HostReply::Hypercall { result: r })
    }

    fn forward_terminate(&mut self, reason: u16) -> IsoResult<HostReply> {
        self.vmcall(Vmcall::ReportFatalError {
            code: u64::from(reason),
        })?;
        Ok(HostReply::Done)
    }
}
