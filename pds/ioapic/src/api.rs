//! The wire contract of the ioapic PD: protected-call labels and register layouts
//! for its peers, and the interrupt-request entries it queues to the vCPU PD.
//!
//! Two kinds of peer call it:
//! - the vCPU PD, with the guest's MMIO accesses to the IOAPIC page
//!   ([`label::MMIO_READ`], [`label::MMIO_WRITE`]) and the local APIC's EOI broadcast
//!   ([`label::EOI`]);
//! - device PDs, driving the input lines system configuration granted them
//!   ([`label::SET_LINE`]).
//!
//! Every reply carries a [`Status`] as its label; mr0 holds the value of a read.
//! Registers come from a peer, so they are decoded defensively: an address outside
//! the IOAPIC page, a size no instruction makes, a line that does not exist or a
//! field out of range is an error status, never a panic.

use core::fmt;

use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{
    DeliveryMode, DestinationMode, InterruptRequest, TriggerMode, MMIO_BASE, MMIO_SIZE, NUM_PINS,
};

/// Protected-call labels.
pub mod label {
    /// vCPU PD: mr0 = guest physical address, mr1 = size in bytes (1, 2, 4 or 8).
    /// Reply: [`super::Status`]; mr0 = the value read, zero-extended.
    pub const MMIO_READ: u64 = 0x1A01;
    /// vCPU PD: mr0 = guest physical address, mr1 = size, mr2 = value (bytes above
    /// `size` are ignored). Reply: [`super::Status`].
    pub const MMIO_WRITE: u64 = 0x1A02;
    /// vCPU PD: the local APIC's EOI for a level-triggered vector; mr0 = vector.
    /// Reply: [`super::Status`].
    pub const EOI: u64 = 0x1A03;
    /// Device PD: mr0 = input line, mr1 = [`super::LineAction`]. Reply:
    /// [`super::Status`].
    pub const SET_LINE: u64 = 0x1A04;
}

/// Registers every request carries at most.
pub const REQUEST_REGS: usize = 3;

/// The outcome of a call, carried as the reply label (open enum: a newer PD may
/// answer with a status this client does not know).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Status(pub u64);

impl Status {
    pub const OK: Self = Self(0);
    /// The access does not lie wholly inside the IOAPIC's page at
    /// [`MMIO_BASE`].
    pub const OUTSIDE_WINDOW: Self = Self(1);
    /// An access size no instruction makes (not 1, 2, 4 or 8).
    pub const BAD_SIZE: Self = Self(2);
    /// The caller's channel does not allow this request: register access or EOI
    /// from anyone but the vCPU PD, or a line not granted to the caller.
    pub const NOT_PERMITTED: Self = Self(3);
    /// No such input line (the IOAPIC has [`NUM_PINS`]).
    pub const BAD_LINE: Self = Self(4);
    /// Unknown label, too few registers, or a field out of its range.
    pub const BAD_REQUEST: Self = Self(5);

    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::OK => "ok",
            Self::OUTSIDE_WINDOW => "outside the IOAPIC page",
            Self::BAD_SIZE => "bad access size",
            Self::NOT_PERMITTED => "not permitted",
            Self::BAD_LINE => "no such line",
            Self::BAD_REQUEST => "bad request",
            _ => return None,
        })
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Status({name})"),
            None => write!(f, "Status({:#x})", self.0),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "status {:#x}", self.0),
        }
    }
}

/// What a device does to its line (open enum on the wire).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct LineAction(pub u64);

impl LineAction {
    pub const DEASSERT: Self = Self(0);
    pub const ASSERT: Self = Self(1);
    /// Assert and deassert at once: one edge for edge-triggered entries.
    pub const PULSE: Self = Self(2);

    pub fn name(self) -> &'static str {
        match self {
            Self::DEASSERT => "deassert",
            Self::ASSERT => "assert",
            Self::PULSE => "pulse",
            _ => "unknown",
        }
    }
}

/// A guest access to the IOAPIC page, checked to lie inside it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct MmioAccess {
    offset: u16,
    size: u8,
}

impl MmioAccess {
    /// Checks an access of `size` bytes at guest physical address `gpa`.
    pub fn new(gpa: u64, size: u64) -> Result<Self, Status> {
        let size = match size {
            1 | 2 | 4 | 8 => size as u8,
            _ => return Err(Status::BAD_SIZE),
        };
        let offset = gpa
            .checked_sub(MMIO_BASE)
            .filter(|&o| o < MMIO_SIZE && MMIO_SIZE - o >= u64::from(size))
            .ok_or(Status::OUTSIDE_WINDOW)?;
        Ok(Self {
            offset: offset as u16,
            size,
        })
    }

    /// Offset from the base of the page.
    pub fn offset(self) -> u64 {
        u64::from(self.offset)
    }

    pub fn size(self) -> u8 {
        self.size
    }

    /// The bits of a register value an access of this size carries.
    pub fn value_mask(self) -> u64 {
        if self.size >= 8 {
            u64::MAX
        } else {
            (1u64 << (u32::from(self.size) * 8)) - 1
        }
    }
}

/// A decoded request.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Request {
    MmioRead(MmioAccess),
    /// The value is already cut to the access size.
    MmioWrite(MmioAccess, u64),
    Eoi {
        vector: u8,
    },
    SetLine {
        line: u8,
        action: LineAction,
    },
}

impl Request {
    /// Decodes a call; the error is the status to reply with.
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, Status> {
        let need = |n: usize| {
            if msg.count() < n {
                Err(Status::BAD_REQUEST)
            } else {
                Ok(())
            }
        };
        match msg.label() {
            label::MMIO_READ => {
                need(2)?;
                Ok(Self::MmioRead(MmioAccess::new(mrs.get(0), mrs.get(1))?))
            }
            label::MMIO_WRITE => {
                need(3)?;
                let access = MmioAccess::new(mrs.get(0), mrs.get(1))?;
                Ok(Self::MmioWrite(access, mrs.get(2) & access.value_mask()))
            }
            label::EOI => {
                need(1)?;
                let vector = u8::try_from(mrs.get(0)).map_err(|_| Status::BAD_REQUEST)?;
                Ok(Self::Eoi { vector })
            }
            label::SET_LINE => {
                need(2)?;
                let line = u8::try_from(mrs.get(0))
                    .ok()
                    .filter(|&l| usize::from(l) < NUM_PINS)
                    .ok_or(Status::BAD_LINE)?;
                let action = LineAction(mrs.get(1));
                if !matches!(
                    action,
                    LineAction::DEASSERT | LineAction::ASSERT | LineAction::PULSE
                ) {
                    return Err(Status::BAD_REQUEST);
                }
                Ok(Self::SetLine { line, action })
            }
            _ => Err(Status::BAD_REQUEST),
        }
    }

    pub fn label(&self) -> u64 {
        match self {
            Self::MmioRead(_) => label::MMIO_READ,
            Self::MmioWrite(..) => label::MMIO_WRITE,
            Self::Eoi { .. } => label::EOI,
            Self::SetLine { .. } => label::SET_LINE,
        }
    }
}

/// Why a client call did not succeed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ClientError {
    /// The call itself failed (not granted, the ioapic PD is gone, ...).
    Ipc(IpcError),
    /// The ioapic PD refused the request.
    Refused(Status),
}

impl From<IpcError> for ClientError {
    fn from(e: IpcError) -> Self {
        Self::Ipc(e)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipc(e) => write!(f, "{e}"),
            Self::Refused(s) => write!(f, "refused: {s}"),
        }
    }
}

/// Makes a call with `args` in mr0.. and returns mr0 of a successful reply. The
/// arguments go out as given, unchecked, so tests can send what a broken peer would.
pub fn call(
    kernel: &mut dyn Kernel,
    ch: Channel,
    label: u64,
    args: &[u64],
) -> Result<u64, ClientError> {
    let mut mrs = MessageRegisters::new();
    for (i, &a) in args.iter().enumerate() {
        mrs.set(i, a);
    }
    let reply = ch.pp_call(kernel, MessageInfo::new(label, args.len()), &mut mrs)?;
    match Status(reply.label()) {
        Status::OK => Ok(mrs.get(0)),
        refused => Err(ClientError::Refused(refused)),
    }
}

/// A guest MMIO read at `gpa` of `size` bytes.
pub fn mmio_read(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
) -> Result<u64, ClientError> {
    call(kernel, ch, label::MMIO_READ, &[gpa, size])
}

/// A guest MMIO write.
pub fn mmio_write(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
    value: u64,
) -> Result<(), ClientError> {
    call(kernel, ch, label::MMIO_WRITE, &[gpa, size, value]).map(drop)
}

/// The local APIC's EOI broadcast for `vector`.
pub fn eoi(kernel: &mut dyn Kernel, ch: Channel, vector: u8) -> Result<(), ClientError> {
    call(kernel, ch, label::EOI, &[u64::from(vector)]).map(drop)
}

/// A device drives its line.
pub fn set_line(
    kernel: &mut dyn Kernel,
    ch: Channel,
    line: u64,
    action: LineAction,
) -> Result<(), ClientError> {
    call(kernel, ch, label::SET_LINE, &[line, action.0]).map(drop)
}

/// One interrupt request in the queue to the vCPU PD.
#[repr(C)]
#[derive(
    Copy, Clone, PartialEq, Eq, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct IrqEntry {
    pub vector: u8,
    /// The x86 delivery-mode encoding (0 fixed, 1 lowest priority, 2 SMI, 4 NMI,
    /// 5 INIT, 7 ExtINT).
    pub delivery_mode: u8,
    /// [`IrqEntry::FLAG_LOGICAL`], [`IrqEntry::FLAG_LEVEL`].
    pub flags: u8,
    /// APIC id (physical) or logical destination mask.
    pub destination: u8,
    /// The input line, so the vCPU PD can trace where an interrupt came from.
    pub pin: u8,
    pub reserved: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<IrqEntry>() == 8);

/// A queue entry the vCPU PD cannot act on; the producer is broken.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct BadEntry;

impl IrqEntry {
    /// Logical destination mode.
    pub const FLAG_LOGICAL: u8 = 1 << 0;
    /// Level-triggered: the vCPU PD sets the vector's TMR bit and sends EOI back.
    pub const FLAG_LEVEL: u8 = 1 << 1;
    const KNOWN_FLAGS: u8 = Self::FLAG_LOGICAL | Self::FLAG_LEVEL;

    /// Checks and decodes an entry read from the queue (the consumer's side).
    pub fn request(&self) -> Result<InterruptRequest, BadEntry> {
        if self.flags & !Self::KNOWN_FLAGS != 0
            || self.reserved != [0; 3]
            || usize::from(self.pin) >= NUM_PINS
        {
            return Err(BadEntry);
        }
        Ok(InterruptRequest {
            vector: self.vector,
            delivery_mode: DeliveryMode::from_code(self.delivery_mode).ok_or(BadEntry)?,
            destination_mode: if self.flags & Self::FLAG_LOGICAL != 0 {
                DestinationMode::Logical
            } else {
                DestinationMode::Physical
            },
            destination: self.destination,
            trigger: if self.flags & Self::FLAG_LEVEL != 0 {
                TriggerMode::Level
            } else {
                TriggerMode::Edge
            },
            pin: self.pin,
        })
    }
}

impl From<InterruptRequest> for IrqEntry {
    fn from(r: InterruptRequest) -> Self {
        let mut flags = 0;
        if r.destination_mode == DestinationMode::Logical {
            flags |= Self::FLAG_LOGICAL;
        }
        if r.trigger == TriggerMode::Level {
            flags |= Self::FLAG_LEVEL;
        }
        Self {
            vector: r.vector,
            delivery_mode: r.delivery_mode.code(),
            flags,
            destination: r.destination,
            pin: r.pin,
            reserved: [0; 3],
        }
    }
}
