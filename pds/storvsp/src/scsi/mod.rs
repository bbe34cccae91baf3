//! The SCSI side: CDB decoding, a block-device target over a [`crate::Backend`],
//! and the controller that routes requests to logical units.
//!
//! Error model (every failure is CHECK CONDITION with fixed-format sense):
//! - bad CDB fields and short CDBs: ILLEGAL REQUEST / INVALID FIELD IN CDB, with a
//!   field pointer where one byte is at fault;
//! - unknown opcodes: ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE;
//! - LBA + length past the capacity: ILLEGAL REQUEST / LBA OUT OF RANGE;
//! - the SRB's data direction disagrees with the command: ABORTED COMMAND /
//!   DATA PHASE ERROR;
//! - the command needs more data than the SRB's buffer holds: ABORTED COMMAND /
//!   DATA-IN (or DATA-OUT) BUFFER OVERFLOW - DATA BUFFER SIZE;
//! - the page list is shorter than the SRB's length: ... - DATA BUFFER DESCRIPTOR
//!   AREA; a page outside granted guest memory: DATA-IN/OUT BUFFER ERROR.

pub mod cdb;
mod controller;
mod disk;
mod inquiry;
mod mode;
pub mod sense;

pub use controller::{AlreadyAttached, Controller, ScsiAddress};
pub use disk::{DiskConfig, ScsiDisk};
pub use sense::{Sense, SenseKey};

use storvsp_protocol::SrbStatus;

/// SAM status codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ScsiStatus(pub u8);

impl ScsiStatus {
    pub const GOOD: Self = Self(0x00);
    pub const CHECK_CONDITION: Self = Self(0x02);
}

/// The result of one command, before it is folded into the SRB completion.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ScsiOutcome {
    pub status: ScsiStatus,
    pub srb_status: SrbStatus,
    pub sense: Option<Sense>,
    /// Bytes actually moved to or from the initiator's buffer.
    pub tx: usize,
}

impl ScsiOutcome {
    pub fn good(tx: usize) -> Self {
        Self {
            status: ScsiStatus::GOOD,
            srb_status: SrbStatus::SUCCESS,
            sense: None,
            tx,
        }
    }

    /// CHECK CONDITION with `sense`; the SRB status follows the sense key the way
    /// Hyper-V reports it (invalid request for ILLEGAL REQUEST, error otherwise).
    pub fn check(sense: Sense) -> Self {
        let srb_status = if sense.key == SenseKey::ILLEGAL_REQUEST {
            SrbStatus::INVALID_REQUEST
        } else {
            SrbStatus::ERROR
        };
        Self {
            status: ScsiStatus::CHECK_CONDITION,
            srb_status,
            sense: Some(sense),
            tx: 0,
        }
    }

    pub(crate) fn from_result(r: Result<usize, Sense>) -> Self {
        match r {
            Ok(tx) => Self::good(tx),
            Err(sense) => Self::check(sense),
        }
    }
}
