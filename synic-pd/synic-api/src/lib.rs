//! The wire contract of synic-pd: what its peers send (the vCPU PD for MSRs;
//! hvcall-pd, vmbus-server and VSPs for messages and events; vmbus-server for the
//! event grants that say which VSP may signal what) and the interrupt-request entries
//! it queues to the vCPU PD.
//!
//! Every message is described once in [`ipc::wire_message!`]; decoding treats the
//! registers as a peer's word, so a bad VP, instance or label is an error, never a
//! panic.
#![no_std]

use hvdef::message::HvMessage;
use hvdef::HvStatus;
use ipc::wire::{self, BadValue, Field};
use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use ipc::wire::DecodeError;

/// Protected-call labels.
pub mod label {
    pub const READ_MSR: u64 = 0x5301;
    pub const WRITE_MSR: u64 = 0x5302;
    /// Reply: [`super::DeliveryReply`], `flag` = queued.
    pub const POST_MESSAGE: u64 = 0x5303;
    /// Reply: [`super::DeliveryReply`], `flag` = newly set. A VSP is answered
    /// ACCESS_DENIED unless vmbus-server granted it that target and flag.
    pub const SIGNAL_EVENT: u64 = 0x5304;
    /// vmbus-server only. Reply: [`super::GrantStatus`] as the label.
    pub const GRANT_EVENT: u64 = 0x5310;
    /// vmbus-server only. Reply: [`super::GrantStatus`] as the label.
    pub const REVOKE_EVENT: u64 = 0x5311;
}

/// Where synic-pd's interrupt queue to the vCPU PD is sized.
pub const IRQ_QUEUE_CAPACITY: u32 = 256;

/// Which of a VP's two SynICs (seed 001): the paravisor's own, which carries
/// Confidential VMBus, or the relay of the hypervisor's.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Instance(u8);

impl Instance {
    pub const PARAVISOR: Self = Self(0);
    pub const HYPERVISOR: Self = Self(1);
}

hvdef::small_index!(Instance: 2);

impl Field for Instance {
    const REGS: usize = 1;
    fn put(&self, regs: &mut [u64]) {
        wire::set_word(regs, 0, self.0.into());
    }
    fn take(regs: &[u64]) -> Result<Self, BadValue> {
        u8::try_from(wire::word(regs, 0))
            .ok()
            .and_then(Self::new)
            .ok_or(BadValue)
    }
}

/// What happened to a posted message.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum PostOutcome {
    /// Written to the slot (and an interrupt requested unless masked by polling).
    Delivered,
    /// Kept in the SINT's queue until the slot frees up or the SINT becomes usable.
    Queued,
}

/// Outcome of an MSR call, carried as the reply label.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MsrStatus {
    Ok = 0,
    /// Inject #GP into the guest.
    Gp = 1,
    /// Not a SynIC MSR: the vCPU PD handles it elsewhere.
    NotSynic = 2,
}

impl MsrStatus {
    pub fn from_label(label: u64) -> Option<Self> {
        MsrReply::decode(MessageInfo::new(label, 1), &MessageRegisters::new())
            .ok()
            .map(|r| r.status())
    }
}

ipc::wire_message! {
    /// Where a message or event goes: one SINT of one instance on one VP. The SINT is
    /// not range-checked here: synic-pd answers an out-of-range one with an
    /// hypercall status, as the guest would see it.
    #[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
    pub struct SintTarget as field { vp: u32, instance: Instance, sint: u8 }

    /// A request from a peer. Lives briefly on the stack; boxing the 256-byte
    /// message would need an allocator this `no_std` PD does not have.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, Eq, Debug)]
    pub enum Request {
        ReadMsr[label::READ_MSR] { vp: u32, instance: Instance, msr: u32 },
        WriteMsr[label::WRITE_MSR] { vp: u32, instance: Instance, msr: u32, value: u64 },
        PostMessage[label::POST_MESSAGE] { target: SintTarget, message: HvMessage as bytes },
        SignalEvent[label::SIGNAL_EVENT] { target: SintTarget, flag: u32 },
        /// VSP slot `vsp`'s channel `relid` may set `flag` on `target` (replacing
        /// what that channel was granted before, e.g. after a retarget).
        GrantEvent[label::GRANT_EVENT] { vsp: u8, relid: u32, target: SintTarget, flag: u32 },
        /// The channel is closed or rescinded: its VSP may no longer signal for it.
        RevokeEvent[label::REVOKE_EVENT] { vsp: u8, relid: u32 },
    }

    /// The reply to an MSR call.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum MsrReply { Ok[0] { value: u64 }, Gp[1], NotSynic[2] }

    /// The reply to POST_MESSAGE (`flag` = queued) and SIGNAL_EVENT (`flag` = newly
    /// set).
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct DeliveryReply[0] { status: HvStatus as newtype, flag: bool }

    /// The reply to GRANT_EVENT and REVOKE_EVENT.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum GrantStatus {
        Ok[0],
        /// The caller is not vmbus-server.
        NotPermitted[1],
        /// No such VSP slot, VP or flag; or no grant to revoke.
        Invalid[2],
        /// The grant table is full.
        Full[3],
    }
}

impl MsrReply {
    pub fn status(self) -> MsrStatus {
        match self {
            Self::Ok { .. } => MsrStatus::Ok,
            Self::Gp => MsrStatus::Gp,
            Self::NotSynic => MsrStatus::NotSynic,
        }
    }

    pub fn value(self) -> u64 {
        match self {
            Self::Ok { value } => value,
            _ => 0,
        }
    }
}

impl DeliveryReply {
    pub fn from_result(r: Result<bool, HvStatus>) -> Self {
        match r {
            Ok(flag) => Self {
                status: HvStatus::SUCCESS,
                flag,
            },
            Err(status) => Self {
                status,
                flag: false,
            },
        }
    }

    fn result(self) -> Result<bool, HvStatus> {
        if self.status.is_success() {
            Ok(self.flag)
        } else {
            Err(self.status)
        }
    }
}

/// Why a client call failed: the call itself, or a reply that makes no sense.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ClientError {
    Ipc(IpcError),
    BadReply,
}

ipc::wrap_from!(ClientError { Ipc(IpcError) });

fn call<R: wire::Message>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    request: &Request,
) -> Result<R, ClientError> {
    wire::call(kernel, ch, request)?.map_err(|_| ClientError::BadReply)
}

/// Client side of POST_MESSAGE.
pub fn post_message(
    kernel: &mut dyn Kernel,
    ch: Channel,
    target: SintTarget,
    message: &HvMessage,
) -> Result<Result<PostOutcome, HvStatus>, ClientError> {
    let request = Request::PostMessage {
        target,
        message: *message,
    };
    let reply: DeliveryReply = call(kernel, ch, &request)?;
    Ok(reply.result().map(|queued| {
        if queued {
            PostOutcome::Queued
        } else {
            PostOutcome::Delivered
        }
    }))
}

/// Client side of SIGNAL_EVENT: `Ok(Ok(newly_signaled))`.
pub fn signal_event(
    kernel: &mut dyn Kernel,
    ch: Channel,
    target: SintTarget,
    flag: u32,
) -> Result<Result<bool, HvStatus>, ClientError> {
    let reply: DeliveryReply = call(kernel, ch, &Request::SignalEvent { target, flag })?;
    Ok(reply.result())
}

/// Client side of READ_MSR.
pub fn read_msr(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    instance: Instance,
    msr: u32,
) -> Result<(MsrStatus, u64), ClientError> {
    let reply: MsrReply = call(kernel, ch, &Request::ReadMsr { vp, instance, msr })?;
    Ok((reply.status(), reply.value()))
}

/// The WRITE_MSR requests with which VP `vp` enables `instance`'s SynIC the way
/// Linux does ([`hvdef::synic::enable_writes`]: SIMP, SIEFP, one SINT, SCONTROL).
pub fn enable_requests(
    vp: u32,
    instance: Instance,
    (simp, siefp): (u64, u64),
    sint: u8,
    vector: u8,
) -> [Request; 4] {
    hvdef::synic::enable_writes(simp, siefp, sint, vector).map(|(msr, value)| Request::WriteMsr {
        vp,
        instance,
        msr,
        value,
    })
}

/// Client side of WRITE_MSR.
pub fn write_msr(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    instance: Instance,
    msr: u32,
    value: u64,
) -> Result<MsrStatus, ClientError> {
    let request = Request::WriteMsr {
        vp,
        instance,
        msr,
        value,
    };
    let reply: MsrReply = call(kernel, ch, &request)?;
    Ok(reply.status())
}

/// vmbus-server side of GRANT_EVENT.
pub fn grant_event(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vsp: u8,
    relid: u32,
    target: SintTarget,
    flag: u32,
) -> Result<GrantStatus, ClientError> {
    let request = Request::GrantEvent {
        vsp,
        relid,
        target,
        flag,
    };
    call(kernel, ch, &request)
}

/// vmbus-server side of REVOKE_EVENT.
pub fn revoke_event(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vsp: u8,
    relid: u32,
) -> Result<GrantStatus, ClientError> {
    call(kernel, ch, &Request::RevokeEvent { vsp, relid })
}

/// One interrupt request in the queue to the vCPU PD.
#[repr(C)]
#[derive(
    Copy, Clone, PartialEq, Eq, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct IrqEntry {
    pub vp: u32,
    pub vector: u8,
    /// Bit 0: auto-EOI.
    pub flags: u8,
    /// The instance and SINT that asked, or [`IrqEntry::UNKNOWN`] for requests that
    /// were coalesced while the queue was full.
    pub instance: u8,
    pub sint: u8,
}
const _: () = assert!(core::mem::size_of::<IrqEntry>() == 8);

impl IrqEntry {
    pub const FLAG_AUTO_EOI: u8 = 1;
    pub const UNKNOWN: u8 = 0xFF;

    pub fn auto_eoi(&self) -> bool {
        self.flags & Self::FLAG_AUTO_EOI != 0
    }
}

#[cfg(test)]
mod tests;
