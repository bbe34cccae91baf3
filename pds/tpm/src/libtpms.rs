//! libtpms as the PD's [`Engine`]: [`tpm_engine::LibtpmsEngine`], Debian's
//! libtpms on the host (feature `libtpms`), the cross-built one in bare-metal
//! PDs (feature `engine` with the archive linked; see pds/tpm-engine).

use alloc::vec::Vec;

use tpm_crb::command::Command;
use tpm_engine::ProcessError;
pub use tpm_engine::{LibtpmsEngine, StartError as LibtpmsError};

use crate::engine::{Engine, EngineError, Executed};

impl Engine for LibtpmsEngine {
    fn execute(&mut self, locality: u8, command: Command<'_>, response: &mut [u8]) -> Executed {
        self.process(locality, command.bytes, response)
            .map_err(|e| match e {
                ProcessError::ResponseTooLarge => EngineError::ResponseTooLarge,
                ProcessError::Fatal => EngineError::Fatal,
            })
    }

    fn has_dirty_state(&self) -> bool {
        self.permanent_state_changed()
    }

    fn take_dirty_state(&mut self) -> Option<Vec<u8>> {
        self.take_permanent_state()
    }
}
