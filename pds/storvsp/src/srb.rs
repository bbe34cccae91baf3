//! EXECUTE_SRB: checks the SRB and its data buffer, runs the CDB on the
//! controller, and folds the outcome into the SRB that goes back to the guest.

use isolation::GuestMemory;
use vmbus_ring::GpaRangeRef;

use crate::data_buffer::{BufferError, DataBuffer, EmptyBuffer, GpaBuffer};
use crate::scsi::sense::FIXED_SENSE_LEN;
use crate::scsi::{Controller, ScsiAddress, ScsiOutcome, Sense};
use storvsp_protocol::{
    DataDirection, NtStatus, SrbStatus, VmscsiRequest, CDB_SIZE, SENSE_BUFFER_SIZE,
    SRB_FLAGS_DISABLE_AUTOSENSE,
};

/// Sense for a data buffer the VSP cannot use, by the SRB's direction.
fn buffer_sense(dir: DataDirection, err: BufferError) -> Sense {
    let data_in = dir == DataDirection::READ;
    match err {
        BufferError::TooShort { .. } | BufferError::OutOfBounds => {
            if data_in {
                Sense::DATA_IN_DESCRIPTOR_OVERFLOW
            } else {
                Sense::DATA_OUT_DESCRIPTOR_OVERFLOW
            }
        }
        BufferError::Memory(_) => {
            if data_in {
                Sense::DATA_IN_BUFFER_ERROR
            } else {
                Sense::DATA_OUT_BUFFER_ERROR
            }
        }
    }
}

fn nt_status(outcome: &ScsiOutcome) -> NtStatus {
    match outcome.srb_status {
        SrbStatus::SUCCESS => NtStatus::SUCCESS,
        SrbStatus::INVALID_LUN => NtStatus::DEVICE_DOES_NOT_EXIST,
        SrbStatus::INVALID_REQUEST => NtStatus::INVALID_DEVICE_REQUEST,
        SrbStatus::DATA_OVERRUN => NtStatus::BUFFER_OVERFLOW,
        _ => NtStatus::IO_DEVICE_ERROR,
    }
}

/// Runs one SRB. `buffer` is the packet's page list (or why it is unusable).
pub fn execute(
    controller: &mut Controller,
    srb: &VmscsiRequest,
    buffer: Result<Option<GpaRangeRef<'_>>, vmbus_device::BufferError>,
    mem: &GuestMemory<'_>,
) -> (VmscsiRequest, NtStatus) {
    let dir = DataDirection(srb.data_in);
    let len = srb.data_transfer_length as usize;
    let cdb_len = usize::from(srb.cdb_length);
    let mut status_override = None;

    let outcome = if cdb_len == 0 || cdb_len > CDB_SIZE {
        ScsiOutcome::check(Sense::INVALID_FIELD_IN_CDB)
    } else {
        let cdb = &srb.cdb_or_sense[..cdb_len];
        let addr = ScsiAddress {
            path: srb.path_id,
            target: srb.target_id,
            lun: srb.lun,
        };
        // Without a data direction nothing may move, whatever the length says.
        let moves_data = len > 0 && (dir == DataDirection::READ || dir == DataDirection::WRITE);
        let built = if !moves_data {
            Ok(None)
        } else {
            match buffer {
                Ok(Some(range)) => {
                    GpaBuffer::new(mem, range, len, dir == DataDirection::READ).map(Some)
                }
                Ok(None) => Err(BufferError::TooShort {
                    needed: len,
                    available: 0,
                }),
                Err(vmbus_device::BufferError::TooManyPages { .. }) => Err(BufferError::TooShort {
                    needed: len,
                    available: 0,
                }),
                Err(vmbus_device::BufferError::TooManyRanges(_)) => Err(BufferError::OutOfBounds),
            }
        };
        match built {
            Ok(Some(buf)) => controller.execute(addr, cdb, dir, &buf as &dyn DataBuffer),
            Ok(None) => controller.execute(addr, cdb, dir, &EmptyBuffer),
            Err(e) => {
                if matches!(e, BufferError::Memory(_)) {
                    // The guest named memory it does not own: say so at the
                    // transport level too.
                    status_override = Some(NtStatus::INVALID_PARAMETER);
                }
                ScsiOutcome::check(buffer_sense(dir, e))
            }
        }
    };

    let status = status_override.unwrap_or_else(|| nt_status(&outcome));
    (response(srb, &outcome), status)
}

/// The SRB that goes back: the request's addressing, the outcome, and sense data
/// in place of the CDB.
fn response(srb: &VmscsiRequest, outcome: &ScsiOutcome) -> VmscsiRequest {
    let mut r = *srb;
    r.scsi_status = outcome.status.0;
    r.srb_status = outcome.srb_status.0;
    r.data_transfer_length = outcome.tx as u32;
    r.cdb_or_sense = [0; SENSE_BUFFER_SIZE];
    r.sense_info_length = 0;
    let room = usize::from(srb.sense_info_length).min(SENSE_BUFFER_SIZE);
    let autosense = srb.srb_flags & SRB_FLAGS_DISABLE_AUTOSENSE == 0;
    if let Some(sense) = outcome.sense {
        if autosense && room > 0 {
            let n = room.min(FIXED_SENSE_LEN);
            r.cdb_or_sense[..n].copy_from_slice(&sense.to_fixed()[..n]);
            r.sense_info_length = n as u8;
            r.srb_status |= SrbStatus::AUTOSENSE_VALID;
        }
    }
    r
}
