//! The guest's side of the CRB, as Linux's tpm_crb drives it: request locality
//! 0, write the command into the shared buffer, set START, read the response
//! back. Register reads come from the guest's read-only view of the register
//! page (the PD keeps it current); register writes are the MMIO calls the VMM
//! forwards on a write fault, made here directly on the channel to the tpm PD.
//! The host-sim guest stand-ins (tpm-guest, guest-sim) share it.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ipc::{Channel, Kernel, Region};
use mmio_device_api::mmio_write;
use tpm_crb::api::{Status, BUFFER_SIZE, CRB_BASE};
use tpm_crb::command::HEADER_SIZE;
use tpm_crb::regs;

/// A step of the exchange that went wrong, in words for the run's output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CrbError(pub String);

impl From<CrbError> for String {
    fn from(e: CrbError) -> Self {
        e.0
    }
}

/// The guest's grants: the register page (r), the command/response buffer
/// (rw) and the channel its register writes go to.
#[derive(Copy, Clone)]
pub struct CrbClient {
    pub regs: Region<'static>,
    pub buffer: Region<'static>,
    pub tpm: Channel,
}

/// The response code of a response, if it has a whole header.
pub fn response_code(response: &[u8]) -> Option<u32> {
    response
        .get(6..10)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

impl core::fmt::Debug for CrbClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CrbClient")
            .field("tpm", &self.tpm)
            .finish_non_exhaustive()
    }
}

impl CrbClient {
    fn write(&self, k: &mut dyn Kernel, reg: u64, value: u64) -> Result<(), CrbError> {
        mmio_write::<Status>(k, self.tpm, CRB_BASE + reg, 4, value)
            .map_err(|e| CrbError(format!("write {reg:#x}: {e:?}")))
    }

    fn reg(&self, reg: u64) -> Result<u32, CrbError> {
        self.regs
            .read::<u32>(reg as usize)
            .map_err(|e| CrbError(format!("read {reg:#x}: {e:?}")))
    }

    /// Runs `command` and returns the response, whatever its code. The
    /// response's size field is the TPM's word, bounded by the buffer.
    pub fn transact(&self, k: &mut dyn Kernel, command: &[u8]) -> Result<Vec<u8>, CrbError> {
        self.write(k, regs::CTRL_REQ, 1)?;
        self.write(k, regs::LOC_CTRL, 1)?;
        if self.reg(regs::LOC_STS)? & regs::loc_sts::GRANTED == 0 {
            return Err(CrbError("locality 0 not granted".into()));
        }
        self.buffer
            .write_bytes(0, command)
            .map_err(|e| CrbError(format!("command into the buffer: {e:?}")))?;
        self.write(k, regs::CTRL_START, 1)?;
        if self.reg(regs::CTRL_START)? != 0 {
            return Err(CrbError("START still set after the call".into()));
        }
        let mut header = [0u8; HEADER_SIZE];
        self.buffer
            .read_bytes(0, &mut header)
            .map_err(|e| CrbError(format!("response header: {e:?}")))?;
        let size = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
        let limit = self.buffer.len().min(BUFFER_SIZE as usize);
        let mut out = vec![0u8; size.clamp(HEADER_SIZE, limit.max(HEADER_SIZE))];
        self.buffer
            .read_bytes(0, &mut out)
            .map_err(|e| CrbError(format!("response: {e:?}")))?;
        Ok(out)
    }

    /// Runs `command` and returns the response if it is TPM_RC_SUCCESS.
    pub fn ok(&self, k: &mut dyn Kernel, what: &str, command: &[u8]) -> Result<Vec<u8>, CrbError> {
        let r = self.transact(k, command)?;
        match response_code(&r) {
            Some(0) => Ok(r),
            Some(rc) => Err(CrbError(format!("{what}: TPM_RC {rc:#x}"))),
            None => Err(CrbError(format!("{what}: no response header"))),
        }
    }
}
