//! The svm platform: software isolation on nested SVM, the path QEMU runs and the
//! one the running guest takes.
//!
//! The machine side is [`SvmCpu`], the kernel's `VM_ENTER` (VMRUN): pds/vmm's
//! bare-metal port (kernel/metal-pds vm_vmm, over pd-rt) and its scripted fake in
//! tests implement it, and the VMM's exit dispatch (pds/vmm exits.rs) takes every
//! exit through [`decode_exit`], the one decoder of SVM exit fields into the
//! neutral [`VcpuExit`]; snp-backend's VMSA exit fields share the encoding.
//!
//! There is no hardware boundary here: the kernel maps guest RAM and its shared
//! alias (`2^B + x`) to the same frames, and the host (the VMM's peers, host-sim)
//! could read every page. What [`SvmBackend`] keeps is the *promise* the other two
//! backends enforce in hardware, as bookkeeping: which pages are accepted private
//! memory, which the guest made host-visible (a host call naming a page that was
//! never made visible is refused, even though nothing would stop the host reading
//! it), and which paravisor pages the guest was granted. That bookkeeping is
//! tested with the same conformance flows as snp-backend and tdx-backend; the
//! running VMM does not keep it yet (it asks only [`crate::gpa`] which side of the
//! vTOM an address is on).

use ipc::ChannelSet;
use kernel_abi::vcpu::{flags, StateWords, Word};

use crate::backend::{
    has_error_code, require_class, GuestAccess, HostCall, HostReply, Hypercall, IoExit, IsoResult,
    Isolation, IsolationError, MsrAccess, VcpuExit, VpIndex,
};
use crate::gpa::{Gpa, GpaClass, PageRange, Partition, PAGE_SIZE};

/// The exit codes of the kernel's `VM_ENTER`: SVM's (AMD APM vol. 2, appendix C)
/// as kernel-abi names them, the kernel's pseudo exits, and VMEXIT_INVALID.
pub mod code {
    pub use kernel_abi::vcpu::exit::*;
    pub use kernel_abi::vcpu::pseudo_exit::*;
    /// VMRUN refused the VMCB (-1).
    pub const INVALID: u64 = u64::MAX;
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

impl SvmExit {
    /// Each field with the state word it travels in: the one statement of the
    /// mapping both directions use.
    fn fields(&mut self) -> [(usize, &mut u64); 6] {
        [
            (Word::EXIT_CODE, &mut self.code),
            (Word::EXIT_INFO1, &mut self.info1),
            (Word::EXIT_INFO2, &mut self.info2),
            (Word::RAX, &mut self.rax),
            (Word::RCX, &mut self.rcx),
            (Word::RDX, &mut self.rdx),
        ]
    }

    /// The exit fields of the state words the kernel returned from `VM_ENTER`.
    pub fn from_words(w: &StateWords) -> Self {
        let mut e = Self::default();
        for (word, field) in e.fields() {
            *field = w.get(word);
        }
        e
    }

    /// The state words a kernel returning this exit writes (the rest zero): what
    /// models and fakes playing the kernel hand back.
    pub fn to_words(&self) -> [u64; Word::COUNT] {
        let mut words = [0u64; Word::COUNT];
        let mut copy = *self;
        for (word, value) in copy.fields() {
            words[word] = *value;
        }
        words
    }
}

/// IOIO EXITINFO1 (APM vol. 2 15.10.2): bit 0 IN, 2 string, 3 REP, 4..6 operand
/// size one-hot, 31:16 port.
mod ioio {
    pub const IN: u64 = 1 << 0;
    pub const STRING: u64 = 1 << 2;
    pub const REP: u64 = 1 << 3;
}

/// NPF EXITINFO1 (APM vol. 2 15.25.6): the #PF-style error code, with the bits
/// the SNP RMP check adds (§15.36.10).
pub mod npf {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const FETCH: u64 = 1 << 4;
    pub const RMP: u64 = 1 << 31;
    pub const SIZEMISMATCH: u64 = 1 << 35;
    pub const VMPL: u64 = 1 << 36;
}

/// The neutral form of an SVM exit (the kernel's state words, or an SNP VMSA's
/// guest exit fields, which have the same encoding). Every field is the guest's
/// and taken as is; nothing here can fail: what the architecture cannot produce
/// (an operand size that is not one-hot, an MSR exit that is neither read nor
/// write) and codes without a class become [`VcpuExit::Other`].
pub fn decode_exit(e: &SvmExit) -> VcpuExit {
    match e.code {
        code::CPUID => VcpuExit::Cpuid {
            leaf: e.rax as u32,
            subleaf: e.rcx as u32,
        },
        code::MSR => VcpuExit::Msr {
            index: e.rcx as u32,
            access: match e.info1 {
                0 => MsrAccess::Read,
                1 => MsrAccess::Write((e.rax & 0xffff_ffff) | (e.rdx << 32)),
                _ => return VcpuExit::Other { code: e.code },
            },
        },
        code::IOIO => VcpuExit::Io(IoExit {
            port: (e.info1 >> 16) as u16,
            size: match (e.info1 >> 4) & 7 {
                1 => 1,
                2 => 2,
                4 => 4,
                _ => return VcpuExit::Other { code: e.code },
            },
            write: e.info1 & ioio::IN == 0,
            string: e.info1 & ioio::STRING != 0,
            rep: e.info1 & ioio::REP != 0,
            // SVM saves the next RIP of IN/OUT in EXITINFO2 even without NRIP save.
            next_rip: Some(e.info2),
        }),
        code::NPF => VcpuExit::MemoryFault {
            gpa: Gpa(e.info2),
            write: e.info1 & npf::WRITE != 0,
            fetch: e.info1 & npf::FETCH != 0,
        },
        code::HLT => VcpuExit::Halt,
        code::VMMCALL => VcpuExit::Hypercall,
        code::VINTR => VcpuExit::InterruptWindow,
        code::INTR | code::NMI => VcpuExit::HostInterrupt,
        code::SHUTDOWN => VcpuExit::Shutdown,
        code::DEADLINE => VcpuExit::Deadline,
        code::NOTIFIED => VcpuExit::Notified,
        code::INVALID_STATE | code::INVALID => VcpuExit::InvalidState,
        c if (code::EXCEPTION_BASE..code::EXCEPTION_BASE + 32).contains(&c) => {
            let vector = (c - code::EXCEPTION_BASE) as u8;
            VcpuExit::Exception {
                vector,
                error_code: has_error_code(vector).then_some(e.info1 as u32),
            }
        }
        other => VcpuExit::Other { code: other },
    }
}

/// How the next entry runs the vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The guest halted: wait, without running it, for `deadline` or a notification.
    pub halted: bool,
    /// The TSC value to come back at (the guest's next timer), if any.
    pub deadline: Option<u64>,
}

impl Entry {
    /// `VM_ENTER`'s flags word.
    pub fn flags(&self) -> u64 {
        if self.halted {
            flags::HALTED
        } else {
            0
        }
    }

    /// `VM_ENTER`'s deadline word (0: none).
    pub fn deadline_word(&self) -> u64 {
        self.deadline.unwrap_or(0)
    }
}

/// What an entry came back with; the state words are current either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entered {
    /// The vCPU exited: the exit is in the state words ([`SvmExit::from_words`]).
    Exit,
    /// Notifications for the paravisor arrived first.
    Notified(ChannelSet),
}

/// The machine side of the svm platform: the kernel's `VM_ENTER` (pd-rt on bare
/// metal; the VMM's scripted fake and this crate's model in tests).
pub trait SvmCpu {
    /// Why the kernel refused the entry.
    type Error;

    /// Enters `vp` with `state`'s dirty words and loads the words the kernel
    /// returns into `state`.
    fn vmrun(
        &mut self,
        vp: VpIndex,
        state: &mut StateWords,
        entry: Entry,
    ) -> Result<Entered, Self::Error>;

    /// The TSC: the time base of deadlines and of the guest's timers.
    fn now(&self) -> u64;
}

/// Whoever plays the untrusted host on the svm platform.
pub trait SvmHost {
    fn host_call(&mut self, call: &HostCall) -> IsoResult<HostReply>;
}

/// Enters once and decodes the exit: the step [`SvmBackend::run_vcpu`] takes.
pub fn run<C: SvmCpu>(
    cpu: &mut C,
    vp: VpIndex,
    state: &mut StateWords,
    entry: Entry,
) -> Result<VcpuExit, C::Error> {
    Ok(match cpu.vmrun(vp, state, entry)? {
        Entered::Exit => decode_exit(&SvmExit::from_words(state)),
        Entered::Notified(_) => VcpuExit::Notified,
    })
}

/// Per-page promise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageState {
    pub accepted: bool,
    pub host_visible: bool,
    pub guest: GuestAccess,
}

/// The svm backend over `N` pages of RAM from GPA 0, running one vCPU.
#[derive(Debug)]
pub struct SvmBackend<'a, C, const N: usize> {
    cpu: C,
    partition: Partition<'a>,
    pages: [PageState; N],
    state: StateWords,
}

impl<'a, C, const N: usize> SvmBackend<'a, C, N> {
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
            state: StateWords::new(),
        })
    }

    pub fn cpu(&mut self) -> &mut C {
        &mut self.cpu
    }

    /// The vCPU's state words, as the last exit left them.
    pub fn state(&mut self) -> &mut StateWords {
        &mut self.state
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

    /// Every page of `pages` is in a state `ok` accepts; the first that is not is
    /// refused as not (yet) of the class `expected`.
    fn require_state(
        &self,
        mut pages: impl Iterator<Item = Gpa>,
        expected: GpaClass,
        ok: impl Fn(&PageState) -> bool,
    ) -> IsoResult {
        match pages.find(|g| !self.page(*g).is_some_and(&ok)) {
            Some(gpa) => Err(IsolationError::WrongClass { gpa, expected }),
            None => Ok(()),
        }
    }
}

impl<C: SvmCpu<Error = u64> + SvmHost, const N: usize> Isolation for SvmBackend<'_, C, N> {
    fn partition(&self) -> Partition<'_> {
        self.partition
    }

    fn run_vcpu(&mut self, vp: VpIndex) -> IsoResult<VcpuExit> {
        run(&mut self.cpu, vp, &mut self.state, Entry::default()).map_err(IsolationError::Hardware)
    }

    /// Nothing to validate in hardware; accepting twice is still reported, as the
    /// other platforms do, so a paravisor bug shows up here first.
    fn accept_private(&mut self, range: PageRange) -> IsoResult {
        require_class(&self.partition, range, GpaClass::Private)?;
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
        require_class(&self.partition, range, first)?;
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
        require_class(&self.partition, range, GpaClass::Private)?;
        self.require_state(range.iter(), GpaClass::Private, |p| p.accepted)?;
        for gpa in range.iter() {
            self.page_mut(gpa)?.guest = access;
        }
        Ok(())
    }

    /// The buffers must be of the shared class and made host-visible.
    fn forward_hypercall(&mut self, call: Hypercall) -> IsoResult<HostReply> {
        self.require_state(call.buffers(), GpaClass::Shared, |p| p.host_visible)?;
        self.cpu.host_call(&HostCall::HvHypercall(call))
    }

    fn forward_terminate(&mut self, reason: u16) -> IsoResult<HostReply> {
        self.cpu.host_call(&HostCall::Terminate { reason })
    }
}

#[cfg(test)]
mod tests;
