//! TDG.VP.VMCALL (GHCI): the argument registers, their parsing and the status codes.
//!
//! R10 = 0 selects a GHCI-standard call with the sub-function in R11 and arguments
//! in R12..R15; any other R10 is vendor-specific, for Hyper-V the hypercall control
//! word with input/output GPAs in RDX/R8 and the result in R11. RCX is the bitmap
//! of GPRs the caller exposes to the VMM. The same parser serves both directions:
//! calls the L2 guest makes (hostile guest registers) and, via [`MapGpaReply`],
//! the host's answers to the paravisor's own calls (hostile host registers).

use crate::cpu::Regs;

/// GHCI sub-functions (R11 when R10 = 0). Below 0x10000 a sub-function is the VMX
/// exit reason of the instruction the call stands in for (MMIO: EPT violation).
pub mod sub {
    use crate::exit::reason;

    pub const CPUID: u64 = reason::CPUID as u64;
    pub const HLT: u64 = reason::HLT as u64;
    pub const IO: u64 = reason::IO as u64;
    pub const RDMSR: u64 = reason::RDMSR as u64;
    pub const WRMSR: u64 = reason::WRMSR as u64;
    pub const MMIO: u64 = reason::EPT_VIOLATION as u64;
    pub const MAP_GPA: u64 = 0x10001;
    pub const GET_QUOTE: u64 = 0x10002;
    pub const REPORT_FATAL_ERROR: u64 = 0x10003;
    pub const SETUP_EVENT_NOTIFY: u64 = 0x10004;
}

/// GHCI completion status in R10.
pub mod ghci {
    pub const SUCCESS: u64 = 0;
    pub const RETRY: u64 = 1;
    pub const INVALID_OPERAND: u64 = 0x8000_0000_0000_0000;
    pub const GPA_INUSE: u64 = 0x8000_0000_0000_0001;
    pub const ALIGN_ERROR: u64 = 0x8000_0000_0000_0002;
}

/// RCX bitmap bits: GPR number n is bit n (RAX 0, RCX 1, ..., R15 15).
pub mod expose {
    pub const RDX: u64 = 1 << 2;
    pub const R8: u64 = 1 << 8;
    pub const R10: u64 = 1 << 10;
    pub const R11: u64 = 1 << 11;
    pub const R12: u64 = 1 << 12;
    pub const R13: u64 = 1 << 13;
    pub const R14: u64 = 1 << 14;
    pub const R15: u64 = 1 << 15;
    /// RCX itself and RSP can never be exposed; bits 63:16 are reserved.
    pub const FORBIDDEN: u64 = !0xffff | 1 << 1 | 1 << 4;
}

/// A decoded TDG.VP.VMCALL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vmcall {
    Cpuid {
        leaf: u32,
        subleaf: u32,
    },
    Hlt {
        irqs_blocked: bool,
    },
    Io {
        size: u8,
        write: bool,
        port: u16,
        value: u32,
    },
    Rdmsr {
        index: u32,
    },
    Wrmsr {
        index: u32,
        value: u64,
    },
    Mmio {
        size: u8,
        write: bool,
        gpa: u64,
        value: u64,
    },
    /// Convert `[gpa, gpa + size)`; the shared bit of `gpa` says to which side.
    MapGpa {
        gpa: u64,
        size: u64,
    },
    GetQuote {
        gpa: u64,
        size: u64,
    },
    ReportFatalError {
        code: u64,
    },
    SetupEventNotify {
        vector: u8,
    },
    HvHypercall {
        control: u64,
        input: u64,
        output: u64,
    },
}

/// Requires the registers in `need` to be exposed.
fn exposes(rcx: u64, need: u64) -> Result<(), u64> {
    if rcx & need == need {
        Ok(())
    } else {
        Err(ghci::INVALID_OPERAND)
    }
}

/// The registers a standard call exposes: R10, R11 and its `args` of R12..R15.
const fn standard_regs(args: u32) -> u64 {
    expose::R10 | expose::R11 | (((1 << args) - 1) << 12)
}

/// How many of R12..R15 each standard sub-function takes; the one place both the
/// parser and [`Vmcall::to_regs`] read a call's register use from.
const fn arg_count(sub: u64) -> Option<u32> {
    Some(match sub {
        sub::HLT | sub::RDMSR | sub::REPORT_FATAL_ERROR | sub::SETUP_EVENT_NOTIFY => 1,
        sub::CPUID | sub::WRMSR | sub::MAP_GPA | sub::GET_QUOTE => 2,
        sub::IO | sub::MMIO => 4,
        _ => return None,
    })
}

impl Vmcall {
    /// Decodes a TDG.VP.VMCALL from its registers, or the GHCI status to answer.
    pub fn parse(r: &Regs) -> Result<Self, u64> {
        let inv = ghci::INVALID_OPERAND;
        if r.rcx & expose::FORBIDDEN != 0 {
            return Err(inv);
        }
        if r.r10 != 0 {
            exposes(r.rcx, expose::R10 | expose::RDX | expose::R8)?;
            return Ok(Vmcall::HvHypercall {
                control: r.r10,
                input: r.rdx,
                output: r.r8,
            });
        }
        let args = arg_count(r.r11).ok_or(inv)?;
        exposes(r.rcx, standard_regs(args))?;
        let size_of = |v: u64, max: u64| match v {
            1 | 2 | 4 => Ok(v as u8),
            8 if max == 8 => Ok(8),
            _ => Err(inv),
        };
        let dir = |v: u64| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(inv),
        };
        Ok(match r.r11 {
            sub::CPUID => {
                if r.r12 >> 32 != 0 || r.r13 >> 32 != 0 {
                    return Err(inv);
                }
                Vmcall::Cpuid {
                    leaf: r.r12 as u32,
                    subleaf: r.r13 as u32,
                }
            }
            sub::HLT => Vmcall::Hlt {
                irqs_blocked: dir(r.r12)?,
            },
            sub::IO => {
                let size = size_of(r.r12, 4)?;
                if r.r14 > 0xffff {
                    return Err(inv);
                }
                Vmcall::Io {
                    size,
                    write: dir(r.r13)?,
                    port: r.r14 as u16,
                    value: r.r15 as u32,
                }
            }
            sub::RDMSR => Vmcall::Rdmsr {
                index: u32::try_from(r.r12).map_err(|_| inv)?,
            },
            sub::WRMSR => Vmcall::Wrmsr {
                index: u32::try_from(r.r12).map_err(|_| inv)?,
                value: r.r13,
            },
            sub::MMIO => Vmcall::Mmio {
                size: size_of(r.r12, 8)?,
                write: dir(r.r13)?,
                gpa: r.r14,
                value: r.r15,
            },
            sub::MAP_GPA => {
                if !r.r12.is_multiple_of(4096) || !r.r13.is_multiple_of(4096) {
                    return Err(ghci::ALIGN_ERROR);
                }
                if r.r13 == 0 || r.r12.checked_add(r.r13).is_none() {
                    return Err(inv);
                }
                Vmcall::MapGpa {
                    gpa: r.r12,
                    size: r.r13,
                }
            }
            sub::GET_QUOTE => {
                if !r.r12.is_multiple_of(4096) || r.r13 == 0 || !r.r13.is_multiple_of(4096) {
                    return Err(ghci::ALIGN_ERROR);
                }
                Vmcall::GetQuote {
                    gpa: r.r12,
                    size: r.r13,
                }
            }
            sub::REPORT_FATAL_ERROR => Vmcall::ReportFatalError { code: r.r12 },
            sub::SETUP_EVENT_NOTIFY => match r.r12 {
                32..=255 => Vmcall::SetupEventNotify {
                    vector: r.r12 as u8,
                },
                _ => return Err(inv),
            },
            _ => return Err(inv),
        })
    }

    /// The registers that make this call (TDCALL leaf VP_VMCALL in RAX).
    pub fn to_regs(self) -> Regs {
        let mut r = Regs {
            rax: crate::status::leaf::VP_VMCALL,
            ..Regs::default()
        };
        let (r11, a) = match self {
            Vmcall::Cpuid { leaf, subleaf } => {
                (sub::CPUID, [u64::from(leaf), u64::from(subleaf), 0, 0])
            }
            Vmcall::Hlt { irqs_blocked } => (sub::HLT, [u64::from(irqs_blocked), 0, 0, 0]),
            Vmcall::Io {
                size,
                write,
                port,
                value,
            } => (
                sub::IO,
                [size.into(), write.into(), port.into(), value.into()],
            ),
            Vmcall::Rdmsr { index } => (sub::RDMSR, [u64::from(index), 0, 0, 0]),
            Vmcall::Wrmsr { index, value } => (sub::WRMSR, [u64::from(index), value, 0, 0]),
            Vmcall::Mmio {
                size,
                write,
                gpa,
                value,
            } => (sub::MMIO, [u64::from(size), u64::from(write), gpa, value]),
            Vmcall::MapGpa { gpa, size } => (sub::MAP_GPA, [gpa, size, 0, 0]),
            Vmcall::GetQuote { gpa, size } => (sub::GET_QUOTE, [gpa, size, 0, 0]),
            Vmcall::ReportFatalError { code } => (sub::REPORT_FATAL_ERROR, [code, 0, 0, 0]),
            Vmcall::SetupEventNotify { vector } => {
                (sub::SETUP_EVENT_NOTIFY, [u64::from(vector), 0, 0, 0])
            }
            Vmcall::HvHypercall {
                control,
                input,
                output,
            } => {
                r.rcx = expose::R10 | expose::RDX | expose::R8 | expose::R11;
                r.r10 = control;
                r.rdx = input;
                r.r8 = output;
                return r;
            }
        };
        // Every sub-function above has a count; 4 would expose no more than Io's.
        r.rcx = standard_regs(arg_count(r11).unwrap_or(4));
        r.r11 = r11;
        [r.r12, r.r13, r.r14, r.r15] = a;
        r
    }
}

/// The host's answer to MapGPA `[gpa, gpa + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapGpaReply {
    Done,
    /// Partially done: continue from this GPA.
    Retry {
        from: u64,
    },
    /// The host refused with this GHCI status.
    Refused(u64),
}

/// Why a host answer was refused outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLied;

/// Decodes R10/R11 after MapGPA. A retry GPA must make progress, stay inside the
/// request, be page aligned and keep the request's shared bit (GHCI: R11 is the
/// GPA to resume at); anything else is a lie.
pub fn map_gpa_reply(out: &Regs, gpa: u64, size: u64) -> Result<MapGpaReply, HostLied> {
    match out.r10 {
        ghci::SUCCESS => Ok(MapGpaReply::Done),
        ghci::RETRY => {
            let from = out.r11;
            let end = gpa.checked_add(size).ok_or(HostLied)?;
            if from <= gpa || from >= end || !from.is_multiple_of(4096) {
                return Err(HostLied);
            }
            Ok(MapGpaReply::Retry { from })
        }
        s @ (ghci::INVALID_OPERAND | ghci::GPA_INUSE | ghci::ALIGN_ERROR) => {
            Ok(MapGpaReply::Refused(s))
        }
        _ => Err(HostLied),
    }
}
