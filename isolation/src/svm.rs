//! The svm platform: software isolation on nested SVM, the path QEMU runs.
//!
//! There is no hardware boundary here: the kernel maps guest RAM and its shared
//! alias (`2^B + x`) to the same frames, and the host (the VMM's peers, host-sim)
//! could read every page. What this backend keeps is the *promise* the other two
//! backends enforce in hardware, as bookkeeping every component can rely on:
//! which pages are accepted private memory, which the guest made host-visible (a
//! host call naming a page that was never made visible is refused, even though
//! nothing would stop the host reading it), and which paravisor pages the guest
//! was granted. [`decode_exit`] turns the VMCB's exit fields into the neutral
//! [`VcpuExit`].
//!
//! The machine side is [`SvmCpu`]: the kernel's `VM_ENTER` (VMRUN) and whoever
//! plays the host. The running VMM (pds/vmm) still drives VM_ENTER and decodes
//! exits in its own loop (pds/vmm exits.rs); this backend is what the paravisor's
//! platform-neutral flows run on under svm, tested with the same conformance
//! flows as snp-backend and tdx-backend.

use crate::backend::{
    check_host_call, GuestAccess, HostCall, HostReply, IsoResult, Isolation, IsolationError,
    MsrAccess, VcpuExit, VpIndex,
};
use crate::gpa::{Gpa, GpaClass, PageRange, Partition, PAGE_SIZE};

/// SVM exit codes (AMD APM vol. 2, appendix C) this decoder names.
pub mod code {
    pub const CPUID: u64 = 0x72;
    pub const HLT: u64 = 0x78;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const VMMCALL: u64 = 0x81;
    pub const NPF: u64 = 0x400;
}

/// The VMCB fields an exit is decoded from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SvmExit {
    pub code: u64,
    pub info1: u64,
    pub info2: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
}

/// The neutral form of an SVM exit. Every field is the guest's and taken as is;
/// nothing here can fail, unknown codes become [`VcpuExit::Other`].
pub fn decode_exit(e: &SvmExit) -> VcpuExit {
    match e.code {
        code::CPUID => VcpuExit::Cpuid {
            leaf: e.rax as u32,
            subleaf: e.rcx as u32,
        },
        code::MSR => VcpuExit::Msr {
            index: e.rcx as u32,
            access: if e.info1 & 1 != 0 {
                MsrAccess::Write((e.rax & 0xffff_ffff) | (e.rdx << 32))
            } else {
                MsrAccess::Read
            },
        },
        // EXITINFO1: bit 0 IN, bits 4..6 operand size one-hot, bits 31:16 port.
        code::IOIO => VcpuExit::Io {
            port: (e.info1 >> 16) as u16,
            size: match (e.info1 >> 4) & 7 {
                1 => 1,
                2 => 2,
                4 => 4,
                _ => 0,
            },
            write: e.info1 & 1 == 0,
        },
        // EXITINFO1 bit 1: a write; EXITINFO2: the faulting GPA.
        code::NPF => VcpuExit::MemoryFault {
            gpa: Gpa(e.info2),
            write: e.info1 & 2 != 0,
        },
        code::HLT => VcpuExit::Halt,
        code::VMMCALL => VcpuExit::Hypercall,
        other => VcpuExit::Other { code: other },
    }
}

/// What the backend needs of the machine.
pub trait SvmCpu {
    /// Runs `vp` until it exits (the kernel's VM_ENTER); `Err` carries the
    /// kernel's refusal code.
    fn vmrun(&mut self, vp: VpIndex) -> Result<SvmExit, u64>;
    /// Hands a call to whoever plays the host on this platform.
    fn host_call(&mut self, call: &HostCall) -> IsoResult<HostReply>;
}

/// Per-page promise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageState {
    pub accepted: bool,
    pub host_visible: bool,
    pub guest: GuestAccess,
}

/// The svm backend over `N` pages of RAM from GPA 0.
#[derive(Debug)]
pub struct SvmBackend<'a, C, const N: usize> {
    cpu: C,
    partition: Partition<'a>,
    pages: [PageState; N],
}

impl<'a, C: SvmCpu, const N: usize> SvmBackend<'a, C, N> {
    /// Refuses a partition that is not svm's or has RAM past the `N` pages tracked.
    pub fn new(cpu: C, partition: Partition<'a>) -> IsoResult<Self> {
        let tracked = N as u64 * PAGE_SIZE;
        let last = Gpa(tracked);
        if partition.kind() != crate::PartitionKind::Svm || partition.classify(last).is_ok() {
            return Err(IsolationError::Gpa(crate::GpaError::BadPartition));
        }
        Ok(Self {
            cpu,
            partition,
            pages: [PageState::default(); N],
        })
    }

    pub fn cpu(&mut self) -> &mut C {
        &mut self.cpu
    }

    /// The promise for the page behind `gpa` (either alias).
    pub fn page(&self, gpa: Gpa) -> Option<&PageState> {
        let private = self.partition.alias(gpa, GpaClass::Private).ok()?;
        self.pages.get(usize::try_from(private.gfn()).ok()?)
    }

    fn page_mut(&mut self, gpa: Gpa) -> Result<&mut PageState, IsolationError> {
        let private = self.partition.alias(gpa, GpaClass::Private)?;
        usize::try_from(private.gfn())
            .ok()
            .and_then(|i| self.pages.get_mut(i))
            .ok_or(IsolationError::Gpa(crate::GpaError::OutOfRange(gpa)))
    }

    /// Every page of `range` is RAM of `class`, or the error naming why not.
    fn require(&self, range: PageRange, class: GpaClass) -> IsoResult {
        if self.partition.range_is(range, class)? {
            Ok(())
        } else {
            Err(IsolationError::WrongClass {
                gpa: range.start,
                expected: class,
            })
        }
    }
}

impl<C: SvmCpu, const N: usize> Isolation for SvmBackend<'_, C, N> {
    fn partition(&self) -> Partition<'_> {
        self.partition
    }

    fn run_vcpu(&mut self, vp: VpIndex) -> IsoResult<VcpuExit> {
        let exit = self.cpu.vmrun(vp).map_err(IsolationError::Hardware)?;
        Ok(decode_exit(&exit))
    }

    /// Nothing to validate in hardware; accepting twice is still reported, as the
    /// other platforms do, so a paravisor bug shows up here first.
    fn accept_private(&mut self, range: PageRange) -> IsoResult {
        self.require(range, GpaClass::Private)?;
        for gpa in range.iter() {
            if self.page(gpa).is_some_and(|p| p.accepted) {
                return Err(IsolationError::AlreadyDone(gpa));
            }
        }
        for gpa in range.iter() {
            self.page_mut(gpa)?.accepted = true;
        }
        Ok(())
    }

    /// A page made host-visible stops being accepted private memory and loses the
    /// guest's grants, as on SNP (RMPUPDATE) and TDX (MapGPA); made private again
    /// it is accepted again.
    fn set_visibility(&mut self, range: PageRange, to: GpaClass) -> IsoResult {
        let first = self.partition.classify(range.start)?;
        self.require(range, first)?;
        for gpa in range.iter() {
            let p = self.page_mut(gpa)?;
            p.host_visible = to == GpaClass::Shared;
            p.accepted = to == GpaClass::Private;
            if to == GpaClass::Shared {
                p.guest = GuestAccess::NONE;
            }
        }
        Ok(())
    }

    /// Only accepted private memory can be granted to the guest.
    fn set_guest_access(&mut self, range: PageRange, access: GuestAccess) -> IsoResult {
        self.require(range, GpaClass::Private)?;
        if let Some(gpa) = range
            .iter()
            .find(|g| !self.page(*g).is_some_and(|p| p.accepted))
        {
            return Err(IsolationError::WrongClass {
                gpa,
                expected: GpaClass::Private,
            });
        }
        for gpa in range.iter() {
            self.page_mut(gpa)?.guest = access;
        }
        Ok(())
    }

    /// The buffers must be of the shared class and made host-visible.
    fn call_host(&mut self, call: HostCall) -> IsoResult<HostReply> {
        check_host_call(&self.partition, &call)?;
        if let HostCall::HvHypercall { input, output, .. } = call {
            for gpa in [input, output].into_iter().flatten() {
                if !self.page(gpa).is_some_and(|p| p.host_visible) {
                    return Err(IsolationError::WrongClass {
                        gpa,
                        expected: GpaClass::Shared,
                    });
                }
            }
        }
        self.cpu.host_call(&call)
    }
}

#[cfg(test)]
mod tests;
