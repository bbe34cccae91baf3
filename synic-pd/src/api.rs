//! The wire contract of synic-pd: protected-call labels and register layouts for its
//! peers (the vCPU PD for MSRs; hvcall-pd and paravisor services for messages and
//! events), and the interrupt-request entries it queues to the vCPU PD.
//!
//! Requests are decoded defensively: a peer's registers are never trusted to name a
//! valid VP, instance or SINT; a bad one is an error reply, not a panic.

use hvdef::message::{HvMessage, HV_MESSAGE_SIZE};
use hvdef::HvStatus;
use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::synic::{Instance, InterruptRequest, PostOutcome, SintTarget};

/// Protected-call labels.
pub mod label {
    /// mr0 = vp, mr1 = instance, mr2 = msr. Reply label: [`super::MsrStatus`];
    /// mr0 = value.
    pub const READ_MSR: u64 = 0x5301;
    /// mr0 = vp, mr1 = instance, mr2 = msr, mr3 = value. Reply label: MsrStatus.
    pub const WRITE_MSR: u64 = 0x5302;
    /// mr0 = vp, mr1 = instance, mr2 = sint, mr3.. = the 256-byte `hv_message`
    /// (32 registers, little-endian). Reply: mr0 = HV_STATUS, mr1 = 1 if queued.
    pub const POST_MESSAGE: u64 = 0x5303;
    /// mr0 = vp, mr1 = instance, mr2 = sint, mr3 = flag. Reply: mr0 = HV_STATUS,
    /// mr1 = 1 if the flag was newly set.
    pub const SIGNAL_EVENT: u64 = 0x5304;
}

/// Registers an `hv_message` occupies in a POST_MESSAGE call.
pub const MESSAGE_REGS: usize = HV_MESSAGE_SIZE / 8;
const MESSAGE_BASE: usize = 3;

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
        Some(match label {
            0 => Self::Ok,
            1 => Self::Gp,
            2 => Self::NotSynic,
            _ => return None,
        })
    }
}

/// A decoded request. Lives briefly on the stack; boxing the 256-byte message would
/// need an allocator this `no_std` PD does not have.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    ReadMsr {
        vp: u32,
        instance: Instance,
        msr: u32,
    },
    WriteMsr {
        vp: u32,
        instance: Instance,
        msr: u32,
        value: u64,
    },
    PostMessage {
        target: SintTarget,
        message: HvMessage,
    },
    SignalEvent {
        target: SintTarget,
        flag: u32,
    },
}

/// Why a request could not be decoded; the caller is a misbehaving peer.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DecodeError {
    UnknownLabel(u64),
    /// Fewer registers than the label needs.
    TooShort,
    /// A field is out of its range (vp/msr beyond 32 bits, instance, sint).
    BadField,
}

fn u32_field(v: u64) -> Result<u32, DecodeError> {
    u32::try_from(v).map_err(|_| DecodeError::BadField)
}

fn instance_field(v: u64) -> Result<Instance, DecodeError> {
    u8::try_from(v)
        .ok()
        .and_then(Instance::new)
        .ok_or(DecodeError::BadField)
}

fn target_fields(mrs: &MessageRegisters) -> Result<SintTarget, DecodeError> {
    Ok(SintTarget {
        vp: u32_field(mrs.get(0))?,
        instance: instance_field(mrs.get(1))?,
        sint: u8::try_from(mrs.get(2)).map_err(|_| DecodeError::BadField)?,
    })
}

impl Request {
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, DecodeError> {
        let need = |n: usize| {
            if msg.count() < n {
                Err(DecodeError::TooShort)
            } else {
                Ok(())
            }
        };
        match msg.label() {
            label::READ_MSR => {
                need(3)?;
                Ok(Self::ReadMsr {
                    vp: u32_field(mrs.get(0))?,
                    instance: instance_field(mrs.get(1))?,
                    msr: u32_field(mrs.get(2))?,
                })
            }
            label::WRITE_MSR => {
                need(4)?;
                Ok(Self::WriteMsr {
                    vp: u32_field(mrs.get(0))?,
                    instance: instance_field(mrs.get(1))?,
                    msr: u32_field(mrs.get(2))?,
                    value: mrs.get(3),
                })
            }
            label::POST_MESSAGE => {
                need(MESSAGE_BASE + MESSAGE_REGS)?;
                let mut bytes = [0u8; HV_MESSAGE_SIZE];
                for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
                    chunk.copy_from_slice(&mrs.get(MESSAGE_BASE + i).to_le_bytes());
                }
                let message =
                    HvMessage::read_from_bytes(&bytes).map_err(|_| DecodeError::BadField)?;
                Ok(Self::PostMessage {
                    target: target_fields(mrs)?,
                    message,
                })
            }
            label::SIGNAL_EVENT => {
                need(4)?;
                Ok(Self::SignalEvent {
                    target: target_fields(mrs)?,
                    flag: u32_field(mrs.get(3))?,
                })
            }
            other => Err(DecodeError::UnknownLabel(other)),
        }
    }

    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        match self {
            Self::ReadMsr { vp, instance, msr } => {
                mrs.set(0, *vp as u64);
                mrs.set(1, instance.get() as u64);
                mrs.set(2, *msr as u64);
                MessageInfo::new(label::READ_MSR, 3)
            }
            Self::WriteMsr {
                vp,
                instance,
                msr,
                value,
            } => {
                mrs.set(0, *vp as u64);
                mrs.set(1, instance.get() as u64);
                mrs.set(2, *msr as u64);
                mrs.set(3, *value);
                MessageInfo::new(label::WRITE_MSR, 4)
            }
            Self::PostMessage { target, message } => {
                set_target(mrs, target);
                for (i, chunk) in message.as_bytes().chunks_exact(8).enumerate() {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(chunk);
                    mrs.set(MESSAGE_BASE + i, u64::from_le_bytes(w));
                }
                MessageInfo::new(label::POST_MESSAGE, MESSAGE_BASE + MESSAGE_REGS)
            }
            Self::SignalEvent { target, flag } => {
                set_target(mrs, target);
                mrs.set(3, *flag as u64);
                MessageInfo::new(label::SIGNAL_EVENT, 4)
            }
        }
    }
}

fn set_target(mrs: &mut MessageRegisters, t: &SintTarget) {
    mrs.set(0, t.vp as u64);
    mrs.set(1, t.instance.get() as u64);
    mrs.set(2, t.sint as u64);
}

/// Why a client call failed: the call itself, or a reply that makes no sense.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ClientError {
    Ipc(IpcError),
    BadReply,
}

impl From<IpcError> for ClientError {
    fn from(e: IpcError) -> Self {
        Self::Ipc(e)
    }
}

/// Client side of POST_MESSAGE.
pub fn post_message(
    kernel: &mut dyn Kernel,
    ch: Channel,
    target: SintTarget,
    message: &HvMessage,
) -> Result<Result<PostOutcome, HvStatus>, ClientError> {
    let mut mrs = MessageRegisters::new();
    let msg = Request::PostMessage {
        target,
        message: *message,
    }
    .encode(&mut mrs);
    ch.pp_call(kernel, msg, &mut mrs)?;
    let status = HvStatus(u16::try_from(mrs.get(0)).map_err(|_| ClientError::BadReply)?);
    Ok(if status.is_success() {
        Ok(if mrs.get(1) != 0 {
            PostOutcome::Queued
        } else {
            PostOutcome::Delivered
        })
    } else {
        Err(status)
    })
}

/// Client side of SIGNAL_EVENT: `Ok(Ok(newly_signaled))`.
pub fn signal_event(
    kernel: &mut dyn Kernel,
    ch: Channel,
    target: SintTarget,
    flag: u32,
) -> Result<Result<bool, HvStatus>, ClientError> {
    let mut mrs = MessageRegisters::new();
    let msg = Request::SignalEvent { target, flag }.encode(&mut mrs);
    ch.pp_call(kernel, msg, &mut mrs)?;
    let status = HvStatus(u16::try_from(mrs.get(0)).map_err(|_| ClientError::BadReply)?);
    Ok(if status.is_success() {
        Ok(mrs.get(1) != 0)
    } else {
        Err(status)
    })
}

/// Client side of READ_MSR.
pub fn read_msr(
    kernel: &mut dyn Kernel,
    ch: Channel,
    vp: u32,
    instance: Instance,
    msr: u32,
) -> Result<(MsrStatus, u64), ClientError> {
    let mut mrs = MessageRegisters::new();
    let msg = Request::ReadMsr { vp, instance, msr }.encode(&mut mrs);
    let reply = ch.pp_call(kernel, msg, &mut mrs)?;
    let status = MsrStatus::from_label(reply.label()).ok_or(ClientError::BadReply)?;
    Ok((status, mrs.get(0)))
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
    let mut mrs = MessageRegisters::new();
    let msg = Request::WriteMsr {
        vp,
        instance,
        msr,
        value,
    }
    .encode(&mut mrs);
    let reply = ch.pp_call(kernel, msg, &mut mrs)?;
    MsrStatus::from_label(reply.label()).ok_or(ClientError::BadReply)
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

impl From<InterruptRequest> for IrqEntry {
    fn from(r: InterruptRequest) -> Self {
        Self {
            vp: r.vp,
            vector: r.vector,
            flags: if r.auto_eoi { Self::FLAG_AUTO_EOI } else { 0 },
            instance: r.instance.get(),
            sint: r.sint,
        }
    }
}
