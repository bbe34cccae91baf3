//! The wire contract of hvcall-pd.
//!
//! Callers: the vCPU PD (hypercall, CPUID and MSR exits, VTL start contexts), PDs
//! that own connections (REGISTER/UNREGISTER_CONNECTION) and vmbus-server, which
//! grants each VSP channel its signal connection (GRANT/REVOKE_CONNECTION).
//! hvcall-pd itself calls the host-forward PD with [`label::FORWARD`]. Every message
//! is described once in [`ipc::wire_message!`]; decoders treat the registers as
//! hostile: out-of-range fields are errors, never panics or truncations.
#![no_std]

use hvdef::hypercall::InitialVpContextX64;
use hvdef::message::NUM_SINTS;
use hvdef::{Control, HypercallResult, Vtl};
use ipc::wire::{self, DecodeError};
use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use synic_api::SintTarget;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub mod label {
    /// Reply: [`super::HypercallReply`].
    pub const HYPERCALL: u64 = 0x4801;
    /// Reply: [`super::CpuidReply`]; NotHandled for leaves outside 0x400000xx.
    pub const CPUID: u64 = 0x4802;
    /// Reply: [`super::MsrResult`].
    pub const READ_MSR: u64 = 0x4803;
    /// Reply: [`super::MsrResult`].
    pub const WRITE_MSR: u64 = 0x4804;
    /// Reply: [`super::InitialContextReply`].
    pub const INITIAL_CONTEXT: u64 = 0x4805;
    /// Reply: [`super::RegisterStatus`].
    pub const REGISTER_CONNECTION: u64 = 0x4810;
    /// Only the registering channel may remove it. Reply: RegisterStatus.
    pub const UNREGISTER_CONNECTION: u64 = 0x4811;
    /// vmbus-server only: VSP slot `vsp`'s channel owns a signal connection.
    /// Reply: RegisterStatus.
    pub const GRANT_CONNECTION: u64 = 0x4812;
    /// vmbus-server only: the channel closed; its grant and the VSP's route go.
    /// Reply: RegisterStatus.
    pub const REVOKE_CONNECTION: u64 = 0x4813;
    /// hvcall-pd -> host-forward PD (GPAs already checked host-visible, or fast
    /// register values). Reply: [`super::ForwardReply`].
    pub const FORWARD: u64 = 0x4820;
}

pub const REPLY_COMPLETE: u64 = 0;
pub const REPLY_SWITCH_VTL: u64 = 1;
pub const REPLY_NOT_HANDLED: u64 = 1;

/// Entries in each service PD's queue of [`ServiceMessage`]s.
pub const SERVICE_QUEUE_CAPACITY: u32 = 32;

/// What the vCPU PD must do with the guest.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Put the result word in RAX and move past the hypercall instruction.
    Complete(HypercallResult),
    /// Enter `Vtl` on this VP (a successful VTL call or return; RAX untouched).
    SwitchVtl(Vtl),
}

/// MSR outcome without the value, as the vCPU PD acts on it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MsrReply {
    Ok = 0,
    Gp = 1,
    NotMine = 2,
}

impl MsrReply {
    pub fn from_label(label: u64) -> Option<Self> {
        MsrResult::decode(MessageInfo::new(label, 1), &MessageRegisters::new())
            .ok()
            .map(|r| r.status())
    }
}

ipc::wire_message! {
    /// A guest hypercall exit as the vCPU PD reports it.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct HypercallRequest[label::HYPERCALL] {
        vp: u32,
        /// The VTL the guest was running in when it made the call.
        vtl: Vtl as into,
        control: Control as newtype,
        rdx: u64,
        r8: u64,
    }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum HypercallReply {
        Complete[REPLY_COMPLETE] { result: HypercallResult as newtype },
        SwitchVtl[REPLY_SWITCH_VTL] { vtl: Vtl as into },
    }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct CpuidRequest[label::CPUID] { vp: u32, leaf: u32, subleaf: u32 }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum CpuidReply {
        Leaf[REPLY_COMPLETE] { eax: u32, ebx: u32, ecx: u32, edx: u32 },
        NotHandled[REPLY_NOT_HANDLED],
    }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct ReadMsrRequest[label::READ_MSR] { vp: u32, vtl: Vtl as into, msr: u32 }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct WriteMsrRequest[label::WRITE_MSR] {
        vp: u32,
        vtl: Vtl as into,
        msr: u32,
        value: u64,
    }

    /// The reply to READ_MSR (`value` read) and WRITE_MSR (`value` 0).
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum MsrResult { Ok[0] { value: u64 }, Gp[1], NotMine[2] }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct InitialContextRequest[label::INITIAL_CONTEXT] { vp: u32, vtl: Vtl as into }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum InitialContextReply {
        Context[REPLY_COMPLETE] { context: InitialVpContextX64 as bytes },
        NotHandled[REPLY_NOT_HANDLED],
    }

    /// Where a registered connection leads. A service route always leads back to
    /// the registering channel: a PD can claim connections for itself, never for
    /// someone else.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum RouteKind as field {
        /// To the caller's own queue/notification.
        Service[0],
        SynicMessage[1] {
            target: SintTarget where |t| (t.sint as usize) < NUM_SINTS,
            port_id: u32,
        },
        SynicEvent[2] {
            target: SintTarget where |t| (t.sint as usize) < NUM_SINTS,
            flag_base: u16,
            flag_count: u16,
        },
        Host[3],
    }

    /// What a REGISTER_CONNECTION call asks for.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct Registration[label::REGISTER_CONNECTION] {
        connection_id: u32,
        vtl: Vtl as into,
        kind: RouteKind,
    }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct Unregistration[label::UNREGISTER_CONNECTION] { connection_id: u32, vtl: Vtl as into }

    /// vmbus-server: channel `relid` of VSP slot `vsp` signals on `connection_id`
    /// (at `vtl`); only that VSP may register a service route for it.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct ConnectionGrant[label::GRANT_CONNECTION] {
        vsp: u8,
        relid: u32,
        connection_id: u32,
        vtl: Vtl as into,
    }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct ConnectionRevoke[label::REVOKE_CONNECTION] { vsp: u8, relid: u32 }

    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum RegisterStatus {
        Ok[0],
        Duplicate[1],
        Full[2],
        /// The channel may not register that kind of destination or connection.
        NotPermitted[3],
        NotFound[4],
        Invalid[5],
    }

    /// A call relayed to the host. `input`/`output` are GPAs for slow calls (already
    /// checked to be host-visible) and register values for fast ones.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct HostCall[label::FORWARD] {
        vp: u32,
        control: Control as newtype,
        input: u64,
        output: u64,
    }

    /// The host's result word.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct ForwardReply[0] { result: HypercallResult as newtype }
}

impl From<Outcome> for HypercallReply {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Complete(result) => Self::Complete { result },
            Outcome::SwitchVtl(vtl) => Self::SwitchVtl { vtl },
        }
    }
}

impl From<HypercallReply> for Outcome {
    fn from(r: HypercallReply) -> Self {
        match r {
            HypercallReply::Complete { result } => Self::Complete(result),
            HypercallReply::SwitchVtl { vtl } => Self::SwitchVtl(vtl),
        }
    }
}

impl MsrResult {
    pub fn status(self) -> MsrReply {
        match self {
            Self::Ok { .. } => MsrReply::Ok,
            Self::Gp => MsrReply::Gp,
            Self::NotMine => MsrReply::NotMine,
        }
    }

    pub fn value(self) -> u64 {
        match self {
            Self::Ok { value } => value,
            _ => 0,
        }
    }
}

impl RegisterStatus {
    pub fn from_label(label: u64) -> Option<Self> {
        Self::decode(MessageInfo::new(label, 0), &MessageRegisters::new()).ok()
    }
}

/// A posted message on its way to a paravisor service PD (one queue entry).
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ServiceMessage {
    pub connection_id: u32,
    pub message_type: u32,
    pub payload_size: u32,
    /// The VTL the guest posted from.
    pub vtl: u8,
    pub reserved: [u8; 3],
    pub payload: [u8; 240],
}
const _: () = assert!(core::mem::size_of::<ServiceMessage>() == 256);

impl ServiceMessage {
    /// The payload bytes, clamped: the queue is shared memory, so the consumer must
    /// not trust `payload_size` to be in range.
    pub fn payload(&self) -> &[u8] {
        let len = (self.payload_size as usize).min(self.payload.len());
        &self.payload[..len]
    }
}

// Helpers kept for the callers written before the generated messages.

impl HypercallRequest {
    /// A call the guest makes on VP 0 in VTL0 (before it starts other VPs or VTLs).
    pub const fn vp0(control: Control, rdx: u64, r8: u64) -> Self {
        Self {
            vp: 0,
            vtl: Vtl::VTL0,
            control,
            rdx,
            r8,
        }
    }
}

pub fn encode_hypercall(req: &HypercallRequest, mrs: &mut MessageRegisters) -> MessageInfo {
    req.encode(mrs)
}

pub fn decode_hypercall(
    msg: MessageInfo,
    mrs: &MessageRegisters,
) -> Result<HypercallRequest, DecodeError> {
    HypercallRequest::decode(msg, mrs)
}

pub fn encode_outcome(outcome: Outcome, mrs: &mut MessageRegisters) -> MessageInfo {
    HypercallReply::from(outcome).encode(mrs)
}

pub fn decode_outcome(reply: MessageInfo, mrs: &MessageRegisters) -> Option<Outcome> {
    HypercallReply::decode(reply, mrs).ok().map(Outcome::from)
}

pub fn encode_forward(call: &HostCall, mrs: &mut MessageRegisters) -> MessageInfo {
    call.encode(mrs)
}

pub fn decode_forward(msg: MessageInfo, mrs: &MessageRegisters) -> Result<HostCall, DecodeError> {
    HostCall::decode(msg, mrs)
}

pub fn encode_context(ctx: &InitialVpContextX64, mrs: &mut MessageRegisters) -> MessageInfo {
    InitialContextReply::Context { context: *ctx }.encode(mrs)
}

pub fn decode_context(reply: MessageInfo, mrs: &MessageRegisters) -> Option<InitialVpContextX64> {
    match InitialContextReply::decode(reply, mrs) {
        Ok(InitialContextReply::Context { context }) => Some(context),
        _ => None,
    }
}

/// Unregister request decoding, shared with the server.
pub fn decode_unregister(
    msg: MessageInfo,
    mrs: &MessageRegisters,
) -> Result<(u32, Vtl), DecodeError> {
    Unregistration::decode(msg, mrs).map(|u| (u.connection_id, u.vtl))
}

/// vCPU PD side of HYPERCALL.
pub fn hypercall(
    kernel: &mut dyn Kernel,
    ch: Channel,
    req: &HypercallRequest,
) -> Result<Option<Outcome>, IpcError> {
    let reply: Result<HypercallReply, _> = wire::call(kernel, ch, req)?;
    Ok(reply.ok().map(Outcome::from))
}

/// vCPU PD side of CPUID; `None` for leaves hvcall-pd does not own.
pub fn cpuid(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    leaf: u32,
    subleaf: u32,
) -> Result<Option<[u32; 4]>, IpcError> {
    let req = CpuidRequest { vp, leaf, subleaf };
    Ok(match wire::call(kernel, ch, &req)? {
        Ok(CpuidReply::Leaf { eax, ebx, ecx, edx }) => Some([eax, ebx, ecx, edx]),
        _ => None,
    })
}

/// vCPU PD side of READ_MSR.
pub fn read_msr(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    vtl: Vtl,
    msr: u32,
) -> Result<(Option<MsrReply>, u64), IpcError> {
    let reply: Result<MsrResult, _> = wire::call(kernel, ch, &ReadMsrRequest { vp, vtl, msr })?;
    Ok(match reply {
        Ok(r) => (Some(r.status()), r.value()),
        Err(_) => (None, 0),
    })
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
    let req = WriteMsrRequest {
        vp,
        vtl,
        msr,
        value,
    };
    let reply: Result<MsrResult, _> = wire::call(kernel, ch, &req)?;
    Ok(reply.ok().map(MsrResult::status))
}

/// vCPU PD side of INITIAL_CONTEXT; `None` if the guest supplied none.
pub fn initial_context(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    vtl: Vtl,
) -> Result<Option<InitialVpContextX64>, IpcError> {
    let reply = wire::call(kernel, ch, &InitialContextRequest { vp, vtl })?;
    Ok(match reply {
        Ok(InitialContextReply::Context { context }) => Some(context),
        _ => None,
    })
}

/// Registrar side of REGISTER_CONNECTION.
pub fn register_connection(
    kernel: &mut dyn Kernel,
    ch: Channel,
    reg: &Registration,
) -> Result<Option<RegisterStatus>, IpcError> {
    Ok(wire::call(kernel, ch, reg)?.ok())
}

/// Registrar side of UNREGISTER_CONNECTION.
pub fn unregister_connection(
    kernel: &mut dyn Kernel,
    ch: Channel,
    connection_id: u32,
    vtl: Vtl,
) -> Result<Option<RegisterStatus>, IpcError> {
    let req = Unregistration { connection_id, vtl };
    Ok(wire::call(kernel, ch, &req)?.ok())
}

/// vmbus-server side of GRANT_CONNECTION.
pub fn grant_connection(
    kernel: &mut dyn Kernel,
    ch: Channel,
    grant: &ConnectionGrant,
) -> Result<Option<RegisterStatus>, IpcError> {
    Ok(wire::call(kernel, ch, grant)?.ok())
}

/// vmbus-server side of REVOKE_CONNECTION.
pub fn revoke_connection(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vsp: u8,
    relid: u32,
) -> Result<Option<RegisterStatus>, IpcError> {
    Ok(wire::call(kernel, ch, &ConnectionRevoke { vsp, relid })?.ok())
}

#[cfg(test)]
mod tests;
