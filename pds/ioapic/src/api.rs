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
//! The MMIO calls are the [`mmio_device_api`] contract every MMIO device shares;
//! every reply carries a [`Status`] as its label; mr0 holds the value of a read.
//! Registers come from a peer, so they are decoded defensively: an address outside
//! the IOAPIC page, a size no instruction makes, a line that does not exist or a
//! field out of range is an error status, never a panic.

use ipc::{Channel, Kernel, MessageInfo, MessageRegisters};
use mmio_device_api::{DecodeError, MmioRequest};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{
    DeliveryMode, DestinationMode, InterruptRequest, TriggerMode, MMIO_BASE, MMIO_SIZE, NUM_PINS,
};

/// Protected-call labels.
pub mod label {
    /// vCPU PD: the guest's accesses to the IOAPIC page (sizes 1, 2, 4 or 8).
    pub use mmio_device_api::label::{MMIO_READ, MMIO_WRITE};
    /// vCPU PD: the local APIC's EOI for a level-triggered vector; mr0 = vector.
    /// Reply: [`super::Status`].
    pub const EOI: u64 = 0x1A03;
    /// Device PD: mr0 = input line, mr1 = [`super::LineAction`]. Reply:
    /// [`super::Status`].
    pub const SET_LINE: u64 = 0x1A04;
}

/// Registers every request carries at most.
pub const REQUEST_REGS: usize = 3;

mmio_device_api::status! {
    /// The outcome of a call, carried as the reply label. Outside the window is
    /// not wholly inside the page at [`MMIO_BASE`]; a bad size is not 1, 2, 4 or
    /// 8; not permitted is register access or EOI from anyone but the vCPU PD, or
    /// a line not granted to the caller.
    pub struct Status in "the IOAPIC page" {
        /// No such input line (the IOAPIC has [`NUM_PINS`]).
        BAD_LINE = 5 => "no such line",
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
        mmio_device_api::value_mask(self.size)
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
        match MmioRequest::decode(msg, mrs) {
            Ok(request) => {
                let (gpa, size, value) = request.parts();
                let access = MmioAccess::new(gpa, size)?;
                return Ok(match value {
                    None => Self::MmioRead(access),
                    Some(value) => Self::MmioWrite(access, value & access.value_mask()),
                });
            }
            Err(DecodeError::UnknownLabel(_)) => {}
            Err(_) => return Err(Status::BAD_REQUEST),
        }
        let need = |n: usize| {
            if msg.count() < n {
                Err(Status::BAD_REQUEST)
            } else {
                Ok(())
            }
        };
        match msg.label() {
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
pub type ClientError = mmio_device_api::ClientError<Status>;

/// Guest MMIO reads and writes, and raw calls (arguments unchecked, so tests can
/// send what a broken peer would).
pub use mmio_device_api::{call, mmio_read, mmio_write};

/// The local APIC's EOI broadcast for `vector`.
pub fn eoi(kernel: &mut dyn Kernel, ch: Channel, vector: u8) -> Result<(), ClientError> {
    call::<Status>(kernel, ch, label::EOI, &[u64::from(vector)]).map(drop)
}

/// A device drives its line.
pub fn set_line(
    kernel: &mut dyn Kernel,
    ch: Channel,
    line: u64,
    action: LineAction,
) -> Result<(), ClientError> {
    call::<Status>(kernel, ch, label::SET_LINE, &[line, action.0]).map(drop)
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
