//! The contract between the VMM PD and the tpm PD, and the guest-physical layout
//! the VMM's ACPI tables, the system description and the tpm PD agree on.
//!
//! The guest reads locality 0's register page directly: the tpm PD keeps the
//! register block current in a region mapped read-only into the VM at
//! [`CRB_BASE`] (so Linux's `memcpy_fromio` of the 64-bit response address and its
//! polling loops cost no exits). Its writes fault, and the VMM forwards each as
//! [`label::MMIO_WRITE`]; a write of START runs the command before the call
//! returns. Reads reach the PD ([`label::MMIO_READ`]) only for pages that are not
//! mapped (localities 1-4) or on platforms that cannot map the page read-only.
//! The command/response buffer is its own page of memory the guest writes
//! directly ([`BUFFER_GPA`]), and the event log a read-only region
//! ([`LOG_GPA`]).

use core::fmt;

use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};

use crate::crb::{Access, AccessError, LOCALITIES, PAGE_SIZE};

/// The TPM's locality pages (TCG PC Client PTP: 0xFED40000, one 4 KiB page per
/// locality).
pub const CRB_BASE: u64 = 0xfed4_0000;
pub const CRB_WINDOW: u64 = LOCALITIES as u64 * PAGE_SIZE;
/// The command/response buffer, in its own page right after the locality pages.
pub const BUFFER_GPA: u64 = CRB_BASE + CRB_WINDOW;
pub const BUFFER_SIZE: u32 = 0x1000;
/// The TCG2 event log the TPM2 ACPI table points at (LASA), and its size (LAML).
pub const LOG_GPA: u64 = BUFFER_GPA + BUFFER_SIZE as u64;
pub const LOG_SIZE: u32 = 0x4000;

/// Protected-call labels.
pub mod label {
    /// mr0 = guest physical address, mr1 = size. Reply: [`super::Status`], mr0 =
    /// the value read.
    pub const MMIO_READ: u64 = 0x7a01;
    /// mr0 = guest physical address, mr1 = size, mr2 = value. Reply:
    /// [`super::Status`]. A START write returns once the response is in the buffer.
    pub const MMIO_WRITE: u64 = 0x7a02;
}

/// A call's outcome, the reply label (open enum).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Status(pub u64);

impl Status {
    pub const OK: Self = Self(0);
    /// Not inside the locality pages at [`CRB_BASE`].
    pub const OUTSIDE_WINDOW: Self = Self(1);
    pub const BAD_SIZE: Self = Self(2);
    pub const ALIGNMENT: Self = Self(3);
    /// Outside the register block of a locality page.
    pub const OFFSET: Self = Self(4);
    /// A locality the interface does not implement.
    pub const LOCALITY: Self = Self(5);
    pub const READ_ONLY: Self = Self(6);
    /// CANCEL/START from a locality that is not active.
    pub const NOT_ACTIVE: Self = Self(7);
    /// The caller's channel may not make this call.
    pub const NOT_PERMITTED: Self = Self(8);
    /// Unknown label or too few registers.
    pub const BAD_REQUEST: Self = Self(9);

    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::OK => "ok",
            Self::OUTSIDE_WINDOW => "outside the TPM's locality pages",
            Self::BAD_SIZE => "bad access size",
            Self::ALIGNMENT => "misaligned access",
            Self::OFFSET => "outside the CRB register block",
            Self::LOCALITY => "locality not implemented",
            Self::READ_ONLY => "read-only register",
            Self::NOT_ACTIVE => "locality not active",
            Self::NOT_PERMITTED => "not permitted",
            Self::BAD_REQUEST => "bad request",
            _ => return None,
        })
    }
}

impl From<AccessError> for Status {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Size => Self::BAD_SIZE,
            AccessError::Alignment => Self::ALIGNMENT,
            AccessError::Offset => Self::OFFSET,
            AccessError::Locality => Self::LOCALITY,
            AccessError::ReadOnly => Self::READ_ONLY,
            AccessError::NotActive => Self::NOT_ACTIVE,
        }
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

/// Whether `gpa` is in the TPM's locality pages (where the VMM routes faults).
pub fn in_window(gpa: u64) -> bool {
    gpa.checked_sub(CRB_BASE).is_some_and(|o| o < CRB_WINDOW)
}

/// A decoded request.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Request {
    Read(Access),
    /// The value is cut to the access size.
    Write(Access, u64),
}

impl Request {
    /// Decodes a call; the error is the status to reply with.
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, Status> {
        let (write, need) = match msg.label() {
            label::MMIO_READ => (false, 2),
            label::MMIO_WRITE => (true, 3),
            _ => return Err(Status::BAD_REQUEST),
        };
        if msg.count() < need {
            return Err(Status::BAD_REQUEST);
        }
        let offset = mrs
            .get(0)
            .checked_sub(CRB_BASE)
            .filter(|&o| o < CRB_WINDOW)
            .ok_or(Status::OUTSIDE_WINDOW)?;
        let access = Access::new(offset, mrs.get(1))?;
        if !write {
            return Ok(Self::Read(access));
        }
        let mask = match access.size {
            8 => u64::MAX,
            s => (1u64 << (u32::from(s) * 8)) - 1,
        };
        Ok(Self::Write(access, mrs.get(2) & mask))
    }
}

/// Why a client call did not succeed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ClientError {
    Ipc(IpcError),
    Refused(Status),
}

/// One call with `args` in mr0..; mr0 of the reply on success. Arguments go out
/// unchecked, so tests can send what a broken peer would.
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
    let reply = ch
        .pp_call(kernel, MessageInfo::new(label, args.len()), &mut mrs)
        .map_err(ClientError::Ipc)?;
    match Status(reply.label()) {
        Status::OK => Ok(mrs.get(0)),
        refused => Err(ClientError::Refused(refused)),
    }
}

/// A guest read of `size` bytes at `gpa`.
pub fn mmio_read(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
) -> Result<u64, ClientError> {
    call(kernel, ch, label::MMIO_READ, &[gpa, size])
}

/// A guest write.
pub fn mmio_write(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
    value: u64,
) -> Result<(), ClientError> {
    call(kernel, ch, label::MMIO_WRITE, &[gpa, size, value]).map(drop)
}
