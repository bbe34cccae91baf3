//! The stand-in when libtpms is not linked: a type with no values, so callers
//! are the same either way and only `start` can tell.

use alloc::vec::Vec;

use crate::{ProcessError, StartError};

#[derive(Debug)]
pub enum LibtpmsEngine {}

impl LibtpmsEngine {
    pub fn start(_permanent: Option<Vec<u8>>) -> Result<Self, StartError> {
        Err(StartError::NotBuilt)
    }

    pub fn process(&mut self, _: u8, _: &[u8], _: &mut [u8]) -> Result<usize, ProcessError> {
        match *self {}
    }

    pub fn permanent_state_changed(&self) -> bool {
        match *self {}
    }

    pub fn take_permanent_state(&mut self) -> Option<Vec<u8>> {
        match *self {}
    }
}
