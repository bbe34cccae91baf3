//! The stand-in when libtpms is not linked: a type with no values, so the PD
//! code is the same either way and only `start` can tell.

use alloc::vec::Vec;

use tpm::{Engine, EngineError};
use tpm_crb::command::Command;

use crate::StartError;

#[derive(Debug)]
pub enum LibtpmsEngine {}

impl LibtpmsEngine {
    pub fn start(_permanent: Option<Vec<u8>>) -> Result<Self, StartError> {
        Err(StartError::NotBuilt)
    }
}

impl Engine for LibtpmsEngine {
    fn execute(&mut self, _: u8, _: Command<'_>, _: &mut [u8]) -> Result<usize, EngineError> {
        match *self {}
    }
}
