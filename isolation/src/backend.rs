//! The platform operations the paravisor needs, as one sans-IO trait.
//!
//! A backend owns the instructions (VMGEXIT/PVALIDATE/RMPADJUST on SNP, TDCALL on
//! TDX, VMRUN on svm); callers see only these requests and typed results. Errors
//! distinguish "the request was wrong" (a paravisor bug) from "the host lied or
//! refused" (hostile, must be survived) so callers can react differently.

use crate::gpa::{Gpa, GpaClass, GpaError, PageRange, Partition};

/// Index of a guest virtual processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VpIndex(pub u32);

/// What the guest may do to a page of paravisor-owned memory: the rights a PD's
/// region grant carries, so both grants are spelled one way.
pub type GuestAccess = ipc::Perms;

/// Direction and value of a guest MSR access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrAccess {
    Read,
    Write(u64),
}

/// Why the guest vCPU stopped running, in platform-neutral terms.
///
/// Every field is the guest's (or the machine's report of what the guest did) and
/// taken as is; backends refuse only what the architecture cannot produce, as
/// [`VcpuExit::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    Cpuid {
        leaf: u32,
        subleaf: u32,
    },
    Msr {
        index: u32,
        access: MsrAccess,
    },
    Io(IoExit),
    /// A nested-page / EPT fault or a #VC for MMIO: the guest touched `gpa`.
    MemoryFault {
        gpa: Gpa,
        write: bool,
        /// The access was an instruction fetch (code in MMIO or a hole).
        fetch: bool,
    },
    Halt,
    /// VMMCALL / VMCALL / TDCALL from the guest: a Hyper-V hypercall to serve.
    Hypercall,
    /// An exception the paravisor intercepts, with the error code when the vector
    /// pushes one.
    Exception {
        vector: u8,
        error_code: Option<u32>,
    },
    /// The interrupt window the paravisor asked for opened: the guest can take an
    /// interrupt now.
    InterruptWindow,
    /// A physical interrupt or NMI of the machine stopped the guest; nothing of
    /// the guest's to handle.
    HostInterrupt,
    /// The kernel's deadline passed (the guest ran, or waited halted, until then).
    Deadline,
    /// A notification for the paravisor arrived while the guest ran or waited.
    Notified,
    /// Triple fault: the guest cannot go on.
    Shutdown,
    /// The machine refused to run the state as given (SVM VMEXIT_INVALID, a TDX
    /// VM-entry failure); nothing ran.
    InvalidState,
    /// An exit the backend decoded but the paravisor has no handler class for.
    Other {
        code: u64,
    },
}

/// An IN/OUT/INS/OUTS the guest executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoExit {
    pub port: u16,
    /// 1, 2 or 4 bytes.
    pub size: u8,
    pub write: bool,
    /// INS/OUTS: the data is in guest memory at RSI/RDI, not in RAX.
    pub string: bool,
    /// With a REP prefix (RCX counts the elements).
    pub rep: bool,
    /// Where the guest continues once the access is done, when the platform
    /// reports it (SVM and SNP: EXITINFO2); `None` leaves it to the paravisor.
    pub next_rip: Option<u64>,
}

/// Declares [`ExitKind`], its names and the list of all kinds from one table.
macro_rules! exit_kinds {
    ($($kind:ident => $name:literal,)*) => {
        /// The classes of [`VcpuExit`], for counting exits without allocating
        /// (`kind as usize` indexes [`ExitKind::ALL`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ExitKind {
            $($kind,)*
        }

        impl ExitKind {
            pub const ALL: [ExitKind; Self::COUNT] = [$(Self::$kind,)*];
            pub const COUNT: usize = [$($name,)*].len();

            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)*
                }
            }
        }
    };
}

exit_kinds! {
    Cpuid => "cpuid",
    Msr => "msr",
    Io => "io",
    MemoryFault => "memory-fault",
    Halt => "hlt",
    Hypercall => "hypercall",
    Exception => "exception",
    InterruptWindow => "interrupt-window",
    HostInterrupt => "host-interrupt",
    Deadline => "deadline",
    Notified => "notified",
    Shutdown => "shutdown",
    InvalidState => "invalid-state",
    Other => "other",
}

impl VcpuExit {
    pub const fn kind(&self) -> ExitKind {
        match self {
            Self::Cpuid { .. } => ExitKind::Cpuid,
            Self::Msr { .. } => ExitKind::Msr,
            Self::Io(_) => ExitKind::Io,
            Self::MemoryFault { .. } => ExitKind::MemoryFault,
            Self::Halt => ExitKind::Halt,
            Self::Hypercall => ExitKind::Hypercall,
            Self::Exception { .. } => ExitKind::Exception,
            Self::InterruptWindow => ExitKind::InterruptWindow,
            Self::HostInterrupt => ExitKind::HostInterrupt,
            Self::Deadline => ExitKind::Deadline,
            Self::Notified => ExitKind::Notified,
            Self::Shutdown => ExitKind::Shutdown,
            Self::InvalidState => ExitKind::InvalidState,
            Self::Other { .. } => ExitKind::Other,
        }
    }
}

/// Whether exception `vector` pushes an error code (Intel SDM vol. 3 6.13, AMD
/// APM vol. 2 8.4): #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX.
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// A Hyper-V hypercall relayed to the host; the buffers it names must be
/// host-visible (`None` for a call without that buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hypercall {
    pub control: u64,
    pub input: Option<Gpa>,
    pub output: Option<Gpa>,
}

impl Hypercall {
    /// The buffers the call hands the host.
    pub fn buffers(&self) -> impl Iterator<Item = Gpa> {
        [self.input, self.output].into_iter().flatten()
    }
}

/// A call to the untrusted host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCall {
    HvHypercall(Hypercall),
    /// Ask the host to end the partition (the paravisor found something it cannot survive).
    Terminate {
        reason: u16,
    },
}

/// The host's answer to a [`HostCall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostReply {
    /// The Hyper-V hypercall result value (status and reps completed).
    Hypercall { result: u64 },
    /// The host acknowledged (or, for `Terminate`, did not return).
    Done,
}

/// Why a platform operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationError {
    /// The address was refused by the classifier.
    Gpa(GpaError),
    /// The paravisor asked to hand the host a page that is private (or vice versa).
    WrongClass { gpa: Gpa, expected: GpaClass },
    /// The hardware refused the request with this architectural code
    /// (PVALIDATE/RMPADJUST rAX, TDX module status).
    Hardware(u64),
    /// The host refused the request with this protocol status.
    HostRefused(u64),
    /// The host answered in a way the protocol does not allow (wrong response code,
    /// claimed a page-state change it did not make, ...): treat the host as hostile.
    HostViolation,
    /// The page was already in the requested state where the platform treats that
    /// as an error (TDX PAGE_ALREADY_ACCEPTED; PVALIDATE with rFLAGS.CF=1).
    AlreadyDone(Gpa),
}

impl From<GpaError> for IsolationError {
    fn from(e: GpaError) -> Self {
        IsolationError::Gpa(e)
    }
}

/// What a platform operation returns.
pub type IsoResult<T = ()> = Result<T, IsolationError>;

/// The operations the paravisor needs from its platform.
pub trait Isolation {
    /// The partition this backend isolates.
    fn partition(&self) -> Partition<'_>;

    /// Run `vp` until it exits to the paravisor.
    fn run_vcpu(&mut self, vp: VpIndex) -> IsoResult<VcpuExit>;

    /// Accept / validate private memory the guest will own (PVALIDATE;
    /// TDG.MEM.PAGE.ACCEPT). `range` is given in private addresses.
    fn accept_private(&mut self, range: PageRange) -> IsoResult;

    /// Make the RAM behind `range` private or host-visible (GHCB page-state change
    /// and RMP; MapGPA). `range` may be given in either alias.
    fn set_visibility(&mut self, range: PageRange, to: GpaClass) -> IsoResult;

    /// Grant or revoke the guest's access to paravisor memory (RMPADJUST of the
    /// guest's VMPL; TDG.MEM.PAGE.ATTR.WR for the L2).
    fn set_guest_access(&mut self, range: PageRange, access: GuestAccess) -> IsoResult;

    /// Call the untrusted host. A call that would hand it a buffer it cannot see
    /// is refused here ([`check_host_call`]), so no backend can forget to; the
    /// others go to the platform's `forward_*`.
    fn call_host(&mut self, call: HostCall) -> IsoResult<HostReply> {
        check_host_call(&self.partition(), &call)?;
        match call {
            HostCall::HvHypercall(h) => self.forward_hypercall(h),
            HostCall::Terminate { reason } => self.forward_terminate(reason),
        }
    }

    /// The platform's way to the host (GHCB, TDVMCALL, VMMCALL) for a hypercall
    /// that passed [`check_host_call`]; reached only through [`Self::call_host`].
    fn forward_hypercall(&mut self, call: Hypercall) -> IsoResult<HostReply>;

    /// Asks the host to end the partition; reached only through [`Self::call_host`].
    fn forward_terminate(&mut self, reason: u16) -> IsoResult<HostReply>;
}

/// Every page of `range` is RAM of `class`, or the error naming the range's start
/// and the class it should have had: the check every backend makes before it
/// touches a range's page state.
pub fn require_class(partition: &Partition<'_>, range: PageRange, class: GpaClass) -> IsoResult {
    if partition.range_is(range, class)? {
        Ok(())
    } else {
        Err(IsolationError::WrongClass {
            gpa: range.start,
            expected: class,
        })
    }
}

/// Refuses a host call that would hand the host a buffer it cannot see: the check
/// [`Isolation::call_host`] makes before anything leaves the partition.
pub fn check_host_call(partition: &Partition<'_>, call: &HostCall) -> IsoResult {
    match *call {
        HostCall::HvHypercall(h) => {
            for gpa in h.buffers() {
                if partition.classify(gpa)? != GpaClass::Shared {
                    return Err(IsolationError::WrongClass {
                        gpa,
                        expected: GpaClass::Shared,
                    });
                }
            }
            Ok(())
        }
        HostCall::Terminate { .. } => Ok(()),
    }
}
