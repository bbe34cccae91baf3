//! The contract between the VMM PD and the tpm PD, and the guest-physical layout
//! the VMM's ACPI tables, the system description and the tpm PD agree on.
//!
//! The guest reads locality 0's register page directly: the tpm PD keeps the
//! register block current in a region mapped read-only into the VM at
//! [`CRB_BASE`] (so Linux's `memcpy_fromio` of the 64-bit response address and its
//! polling loops cost no exits). Its writes fault, and the VMM forwards each as
//! [`label::MMIO_WRITE`] (the [`mmio_device_api`] contract); a write of START runs the command before the call
//! returns. Reads reach the PD ([`label::MMIO_READ`]) only for pages that are not
//! mapped (localities 1-4) or on platforms that cannot map the page read-only.
//! The command/response buffer is its own page of memory the guest writes
//! directly ([`BUFFER_GPA`]), and the event log a read-only region
//! ([`LOG_GPA`]).

use ipc::{MessageInfo, MessageRegisters};
use mmio_device_api::MmioRequest;

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

/// Protected-call labels: the VMM's forwarded reads and writes.
pub mod label {
    pub use mmio_device_api::label::{MMIO_READ, MMIO_WRITE};
}

mmio_device_api::status! {
    /// A call's outcome, the reply label. Outside the window is not inside the
    /// locality pages at [`CRB_BASE`].
    pub struct Status in "the TPM's locality pages" {
        ALIGNMENT = 5 => "misaligned access",
        /// Outside the register block of a locality page.
        OFFSET = 6 => "outside the CRB register block",
        /// A locality the interface does not implement.
        LOCALITY = 7 => "locality not implemented",
        READ_ONLY = 8 => "read-only register",
        /// CANCEL/START from a locality that is not active.
        NOT_ACTIVE = 9 => "locality not active",
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
        let request = MmioRequest::decode(msg, mrs).map_err(|_| Status::BAD_REQUEST)?;
        let (gpa, size, value) = request.parts();
        let offset = gpa
            .checked_sub(CRB_BASE)
            .filter(|&o| o < CRB_WINDOW)
            .ok_or(Status::OUTSIDE_WINDOW)?;
        let access = Access::new(offset, size)?;
        Ok(match value {
            None => Self::Read(access),
            Some(value) => Self::Write(access, value & mmio_device_api::value_mask(access.size)),
        })
    }
}

/// Why a client call did not succeed.
pub type ClientError = mmio_device_api::ClientError<Status>;
