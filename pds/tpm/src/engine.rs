//! What runs TPM 2.0 commands: the [`Engine`] trait, the engine for platforms
//! that have none yet ([`Unsupported`]), and on the host libtpms
//! (`crate::libtpms`).

use tpm_crb::command::{error_response, Command, ResponseCode, HEADER_SIZE};

/// Why an engine could not answer at all (as opposed to answering with a TPM
/// error code, which is a normal response).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// The engine's response does not fit the response buffer.
    ResponseTooLarge,
    /// The engine failed in a way only a reset recovers from.
    Fatal,
}

/// What [`Engine::execute`] returns: the response's length, or why there is none.
pub type Executed = Result<usize, EngineError>;

/// A TPM 2.0 command processor.
pub trait Engine {
    /// Runs `command` (its header already checked) for `locality` and writes the
    /// response into `response`; returns the response's length.
    fn execute(&mut self, locality: u8, command: Command<'_>, response: &mut [u8]) -> Executed;

    /// Persistent state (NV, seeds, hierarchy state) to seal, if it changed since
    /// the last call; `None` if unchanged or the engine has none.
    fn take_dirty_state(&mut self) -> Option<alloc::vec::Vec<u8>> {
        None
    }

    /// Whether [`Engine::take_dirty_state`] would return state.
    fn has_dirty_state(&self) -> bool {
        false
    }
}

/// The engine of a platform without a TPM implementation yet: every command is
/// answered TPM_RC_FAILURE, which TPM 2.0 Part 1 defines as "the TPM is in
/// failure mode". Linux's tpm_crb then reports a TPM that fails its self test
/// instead of hanging on a silent one.
#[derive(Copy, Clone, Debug, Default)]
pub struct Unsupported;

impl Engine for Unsupported {
    fn execute(&mut self, _locality: u8, command: Command<'_>, response: &mut [u8]) -> Executed {
        let r = error_response(command.bytes, ResponseCode::FAILURE);
        response
            .get_mut(..HEADER_SIZE)
            .ok_or(EngineError::ResponseTooLarge)?
            .copy_from_slice(&r);
        Ok(HEADER_SIZE)
    }
}

/// An engine that may not have started: `None` answers as [`Unsupported`]
/// (failure mode), so the PD serves the guest either way.
impl<E: Engine> Engine for Option<E> {
    fn execute(&mut self, locality: u8, command: Command<'_>, response: &mut [u8]) -> Executed {
        match self {
            Some(e) => e.execute(locality, command, response),
            None => Unsupported.execute(locality, command, response),
        }
    }

    fn take_dirty_state(&mut self) -> Option<alloc::vec::Vec<u8>> {
        self.as_mut().and_then(E::take_dirty_state)
    }

    fn has_dirty_state(&self) -> bool {
        self.as_ref().is_some_and(E::has_dirty_state)
    }
}
