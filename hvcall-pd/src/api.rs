//! The wire contract of hvcall-pd.
//!
//! Callers: the vCPU PD (hypercall, CPUID and MSR exits, VTL start contexts) and PDs
//! that own connections (REGISTER/UNREGISTER_CONNECTION). hvcall-pd itself calls the
//! host-forward PD with [`label::FORWARD`]. Every decoder treats the registers as
//! hostile: out-of-range fields are errors, never panics or truncations.

use hvdef::hypercall::InitialVpContextX64;
use hvdef::{Control, HypercallResult, Vtl};
use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use synic_pd::{Instance, SintTarget};
use zerocopy::{FromBytes, IntoBytes};

use crate::effects::HostCall;
use crate::gateway::{HypercallRequest, Outcome};
use crate::route::Destination;

pub mod label {
    /// mr0 = vp, mr1 = vtl, mr2 = RCX, mr3 = RDX, mr4 = R8. Reply label
    /// [`super::REPLY_COMPLETE`] with mr0 = the RAX result word, or
    /// [`super::REPLY_SWITCH_VTL`] with mr0 = the VTL to enter.
    pub const HYPERCALL: u64 = 0x4801;
    /// mr0 = vp, mr1 = leaf, mr2 = subleaf. Reply label 0 with mr0..mr3 =
    /// EAX..EDX, or [`super::REPLY_NOT_HANDLED`] for leaves outside 0x400000xx.
    pub const CPUID: u64 = 0x4802;
    /// mr0 = vp, mr1 = vtl, mr2 = msr. Reply label: [`super::MsrReply`]; mr0 = value.
    pub const READ_MSR: u64 = 0x4803;
    /// mr0 = vp, mr1 = vtl, mr2 = msr, mr3 = value. Reply label: MsrReply.
    pub const WRITE_MSR: u64 = 0x4804;
    /// mr0 = vp, mr1 = vtl. Reply label 0 with the 224-byte initial context in
    /// mr0..mr27, or REPLY_NOT_HANDLED if none was supplied.
    pub const INITIAL_CONTEXT: u64 = 0x4805;
    /// Registers a connection; see [`super::Registration`]. Reply label:
    /// [`super::RegisterStatus`].
    pub const REGISTER_CONNECTION: u64 = 0x4810;
    /// mr0 = connection id, mr1 = vtl. Only the registering channel may remove it.
    pub const UNREGISTER_CONNECTION: u64 = 0x4811;
    /// hvcall-pd -> host-forward PD: mr0 = vp, mr1 = control, mr2 = input,
    /// mr3 = output (GPAs already checked host-visible, or fast register values).
    /// Reply: mr0 = the host's result word.
    pub const FORWARD: u64 = 0x4820;
}

pub const REPLY_COMPLETE: u64 = 0;
pub const REPLY_SWITCH_VTL: u64 = 1;
pub const REPLY_NOT_HANDLED: u64 = 1;
const CONTEXT_REGS: usize = size_of::<InitialVpContextX64>() / 8;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MsrReply {
    Ok = 0,
    Gp = 1,
    NotMine = 2,
}

impl MsrReply {
    pub fn from_label(label: u64) -> Option<Self> {
        Some(match label {
            0 => Self::Ok,
            1 => Self::Gp,
            2 => Self::NotMine,
            _ => return None,
        })
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RegisterStatus {
    Ok = 0,
    Duplicate = 1,
    Full = 2,
    /// The channel may not register that kind of destination.
    NotPermitted = 3,
    NotFound = 4,
    Invalid = 5,
}

impl RegisterStatus {
    pub fn from_label(label: u64) -> Option<Self> {
        Some(match label {
            0 => Self::Ok,
            1 => Self::Duplicate,
            2 => Self::Full,
            3 => Self::NotPermitted,
            4 => Self::NotFound,
            5 => Self::Invalid,
            _ => return None,
        })
    }
}

/// What a REGISTER_CONNECTION call asks for. A service route always leads back to
/// the registering channel: a PD can claim connections for itself, never for
/// someone else.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RouteKind {
    /// To the caller's own queue/notification.
    Service,
    SynicMessage {
        target: SintTarget,
        port_id: u32,
    },
    SynicEvent {
        target: SintTarget,
        flag_base: u16,
        flag_count: u16,
    },
    Host,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Registration {
    pub connection_id: u32,
    pub vtl: Vtl,
    pub kind: RouteKind,
}

const KIND_SERVICE: u64 = 0;
const KIND_SYNIC_MESSAGE: u64 = 1;
const KIND_SYNIC_EVENT: u64 = 2;
const KIND_HOST: u64 = 3;

/// A request field out of range, or too few registers.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct BadField;

fn need(msg: MessageInfo, n: usize) -> Result<(), BadField> {
    if msg.count() < n {
        Err(BadField)
    } else {
        Ok(())
    }
}

fn u32_of(v: u64) -> Result<u32, BadField> {
    u32::try_from(v).map_err(|_| BadField)
}

fn vtl_of(v: u64) -> Result<Vtl, BadField> {
    u8::try_from(v).ok().and_then(Vtl::new).ok_or(BadField)
}

impl Registration {
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        mrs.set(0, self.connection_id as u64);
        mrs.set(1, self.vtl.get() as u64);
        let (kind, target, extra) = match self.kind {
            RouteKind::Service => (KIND_SERVICE, None, 0),
            RouteKind::SynicMessage { target, port_id } => {
                (KIND_SYNIC_MESSAGE, Some(target), port_id as u64)
            }
            RouteKind::SynicEvent {
                target,
                flag_base,
                flag_count,
            } => (
                KIND_SYNIC_EVENT,
                Some(target),
                flag_base as u64 | (flag_count as u64) << 16,
            ),
            RouteKind::Host => (KIND_HOST, None, 0),
        };
        mrs.set(2, kind);
        if let Some(t) = target {
            mrs.set(3, t.vp as u64);
            mrs.set(4, t.instance.get() as u64);
            mrs.set(5, t.sint as u64);
        }
        mrs.set(6, extra);
        MessageInfo::new(label::REGISTER_CONNECTION, 7)
    }

    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, BadField> {
        need(msg, 7)?;
        let target = || -> Result<SintTarget, BadField> {
            Ok(SintTarget {
                vp: u32_of(mrs.get(3))?,
                instance: u8::try_from(mrs.get(4))
                    .ok()
                    .and_then(Instance::new)
                    .ok_or(BadField)?,
                sint: u8::try_from(mrs.get(5))
                    .ok()
                    .filter(|&s| (s as usize) < hvdef::message::NUM_SINTS)
                    .ok_or(BadField)?,
            })
        };
        let kind = match mrs.get(2) {
            KIND_SERVICE => RouteKind::Service,
            KIND_SYNIC_MESSAGE => RouteKind::SynicMessage {
                target: target()?,
                port_id: u32_of(mrs.get(6))?,
            },
            KIND_SYNIC_EVENT => {
                let extra = u32_of(mrs.get(6))?;
                RouteKind::SynicEvent {
                    target: target()?,
                    flag_base: extra as u16,
                    flag_count: (extra >> 16) as u16,
                }
            }
            KIND_HOST => RouteKind::Host,
            _ => return Err(BadField),
        };
        Ok(Self {
            connection_id: u32_of(mrs.get(0))?,
            vtl: vtl_of(mrs.get(1))?,
            kind,
        })
    }

    /// The destination this registration makes, for a caller on `channel`.
    pub fn destination(&self, channel: Channel) -> Destination {
        match self.kind {
            RouteKind::Service => Destination::Service {
                channel: channel.index(),
            },
            RouteKind::SynicMessage { target, port_id } => {
                Destination::SynicMessage { target, port_id }
            }
            RouteKind::SynicEvent {
                target,
                flag_base,
                flag_count,
            } => Destination::SynicEvent {
                target,
                flag_base,
                flag_count,
            },
            RouteKind::Host => Destination::Host,
        }
    }
}

pub fn encode_hypercall(req: &HypercallRequest, mrs: &mut MessageRegisters) -> MessageInfo {
    mrs.set(0, req.vp as u64);
    mrs.set(1, req.vtl.get() as u64);
    mrs.set(2, req.control.0);
    mrs.set(3, req.rdx);
    mrs.set(4, req.r8);
    MessageInfo::new(label::HYPERCALL, 5)
}

pub fn decode_hypercall(
    msg: MessageInfo,
    mrs: &MessageRegisters,
) -> Result<HypercallRequest, BadField> {
    need(msg, 5)?;
    Ok(HypercallRequest {
        vp: u32_of(mrs.get(0))?,
        vtl: vtl_of(mrs.get(1))?,
        control: Control(mrs.get(2)),
        rdx: mrs.get(3),
        r8: mrs.get(4),
    })
}

pub fn encode_outcome(outcome: Outcome, mrs: &mut MessageRegisters) -> MessageInfo {
    match outcome {
        Outcome::Complete(result) => {
            mrs.set(0, result.0);
            MessageInfo::new(REPLY_COMPLETE, 1)
        }
        Outcome::SwitchVtl(vtl) => {
            mrs.set(0, vtl.get() as u64);
            MessageInfo::new(REPLY_SWITCH_VTL, 1)
        }
    }
}

pub fn decode_outcome(reply: MessageInfo, mrs: &MessageRegisters) -> Option<Outcome> {
    match reply.label() {
        REPLY_COMPLETE => Some(Outcome::Complete(HypercallResult(mrs.get(0)))),
        REPLY_SWITCH_VTL => vtl_of(mrs.get(0)).ok().map(Outcome::SwitchVtl),
        _ => None,
    }
}

pub fn encode_forward(call: &HostCall, mrs: &mut MessageRegisters) -> MessageInfo {
    mrs.set(0, call.vp as u64);
    mrs.set(1, call.control.0);
    mrs.set(2, call.input);
    mrs.set(3, call.output);
    MessageInfo::new(label::FORWARD, 4)
}

pub fn decode_forward(msg: MessageInfo, mrs: &MessageRegisters) -> Result<HostCall, BadField> {
    if msg.label() != label::FORWARD {
        return Err(BadField);
    }
    need(msg, 4)?;
    Ok(HostCall {
        vp: u32_of(mrs.get(0))?,
        control: Control(mrs.get(1)),
        input: mrs.get(2),
        output: mrs.get(3),
    })
}

pub fn encode_context(ctx: &InitialVpContextX64, mrs: &mut MessageRegisters) -> MessageInfo {
    for (i, chunk) in ctx.as_bytes().chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        mrs.set(i, u64::from_le_bytes(w));
    }
    MessageInfo::new(REPLY_COMPLETE, CONTEXT_REGS)
}

pub fn decode_context(reply: MessageInfo, mrs: &MessageRegisters) -> Option<InitialVpContextX64> {
    if reply.label() != REPLY_COMPLETE || reply.count() < CONTEXT_REGS {
        return None;
    }
    let mut bytes = [0u8; size_of::<InitialVpContextX64>()];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&mrs.get(i).to_le_bytes());
    }
    InitialVpContextX64::read_from_bytes(&bytes).ok()
}

/// vCPU PD side of HYPERCALL.
pub fn hypercall(
    kernel: &mut dyn Kernel,
    ch: Channel,
    req: &HypercallRequest,
) -> Result<Option<Outcome>, IpcError> {
    let mut mrs = MessageRegisters::new();
    let msg = encode_hypercall(req, &mut mrs);
    let reply = ch.pp_call(kernel, msg, &mut mrs)?;
    Ok(decode_outcome(reply, &mrs))
}

/// vCPU PD side of CPUID; `None` for leaves hvcall-pd does not own.
pub fn cpuid(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    leaf: u32,
    subleaf: u32,
) -> Result<Option<[u32; 4]>, IpcError> {
    let mut mrs = MessageRegisters::new();
    mrs.set(0, vp as u64);
    mrs.set(1, leaf as u64);
    mrs.set(2, subleaf as u64);
    let reply = ch.pp_call(kernel, MessageInfo::new(label::CPUID, 3), &mut mrs)?;
    if reply.label() != REPLY_COMPLETE {
        return Ok(None);
    }
    Ok(Some([0, 1, 2, 3].map(|i| mrs.get(i) as u32)))
}

/// vCPU PD side of READ_MSR.
pub fn read_msr(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    vtl: Vtl,
    msr: u32,
) -> Result<(Option<MsrReply>, u64), IpcError> {
    let mut mrs = MessageRegisters::new();
    mrs.set(0, vp as u64);
    mrs.set(1, vtl.get() as u64);
    mrs.set(2, msr as u64);
    let reply = ch.pp_call(kernel, MessageInfo::new(label::READ_MSR, 3), &mut mrs)?;
    Ok((MsrReply::from_label(reply.label()), mrs.get(0)))
}

/// vCPU PD side of WRITE_MSR.
pub fn write_msr(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    vtl: Vtl,
    msr: u32,
    value: u64,
) -> Result<Option<MsrReply>, IpcError> {
    let mut mrs = MessageRegisters::new();
    mrs.set(0, vp as u64);
    mrs.set(1, vtl.get() as u64);
    mrs.set(2, msr as u64);
    mrs.set(3, value);
    let reply = ch.pp_call(kernel, MessageInfo::new(label::WRITE_MSR, 4), &mut mrs)?;
    Ok(MsrReply::from_label(reply.label()))
}

/// Registrar side of REGISTER_CONNECTION.
pub fn register_connection(
    kernel: &mut dyn Kernel,
    ch: Channel,
    reg: &Registration,
) -> Result<Option<RegisterStatus>, IpcError> {
    let mut mrs = MessageRegisters::new();
    let msg = reg.encode(&mut mrs);
    let reply = ch.pp_call(kernel, msg, &mut mrs)?;
    Ok(RegisterStatus::from_label(reply.label()))
}

/// Registrar side of UNREGISTER_CONNECTION.
pub fn unregister_connection(
    kernel: &mut dyn Kernel,
    ch: Channel,
    connection_id: u32,
    vtl: Vtl,
) -> Result<Option<RegisterStatus>, IpcError> {
    let mut mrs = MessageRegisters::new();
    mrs.set(0, connection_id as u64);
    mrs.set(1, vtl.get() as u64);
    let reply = ch.pp_call(
        kernel,
        MessageInfo::new(label::UNREGISTER_CONNECTION, 2),
        &mut mrs,
    )?;
    Ok(RegisterStatus::from_label(reply.label()))
}

/// Unregister request decoding, shared with the server.
pub fn decode_unregister(msg: MessageInfo, mrs: &MessageRegisters) -> Result<(u32, Vtl), BadField> {
    need(msg, 2)?;
    Ok((u32_of(mrs.get(0))?, vtl_of(mrs.get(1))?))
}
