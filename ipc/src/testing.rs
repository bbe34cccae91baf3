//! Fakes for driving a PD's [`Handler`](crate::Handler) directly in host tests, with
//! no runtime at all: heap-backed regions, a configurable [`Init`], and a kernel
//! that records what the PD asked for.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;

use crate::{
    Channel, Init, InitError, IpcError, Kernel, MessageInfo, MessageRegisters, Perms, Region,
};

/// A zeroed read-write region of at least `bytes` bytes that lives for the rest of
/// the test process (tests hand `'static` regions to PDs exactly as runtimes do).
pub fn leaked_region(bytes: usize) -> Region<'static> {
    let words: &'static [AtomicU64] = Box::leak(
        (0..bytes.div_ceil(8))
            .map(|_| AtomicU64::new(0))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    Region::from_atomics(words, Perms::RW)
}

/// An [`Init`] whose regions and variables the test chooses.
#[derive(Debug, Default, Clone)]
pub struct FakeInit {
    name: String,
    regions: BTreeMap<&'static str, Region<'static>>,
    variables: BTreeMap<&'static str, u64>,
}

impl FakeInit {
    pub fn new(pd_name: &str) -> Self {
        Self {
            name: pd_name.into(),
            ..Self::default()
        }
    }

    pub fn region(mut self, setvar: &'static str, region: Region<'static>) -> Self {
        self.regions.insert(setvar, region);
        self
    }

    pub fn variable(mut self, name: &'static str, value: u64) -> Self {
        self.variables.insert(name, value);
        self
    }

    /// Drops a variable again, for tests of what a PD does when system.xml lacks it.
    pub fn without_variable(mut self, name: &str) -> Self {
        self.variables.remove(name);
        self
    }

    /// Drops a region again, for tests of what a PD does when system.xml lacks it.
    pub fn without_region(mut self, setvar: &str) -> Self {
        self.regions.remove(setvar);
        self
    }
}

impl Init for FakeInit {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        self.regions
            .get(setvar)
            .copied()
            .ok_or(InitError::MissingRegion(setvar))
    }

    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        self.variables
            .get(name)
            .copied()
            .ok_or(InitError::MissingVariable(name))
    }

    fn pd_name(&self) -> &str {
        &self.name
    }
}

/// A kernel that grants every notify and irq ack and records them; protected calls
/// are refused as not granted unless the test wires PDs together itself.
#[derive(Debug, Default)]
pub struct RecordingKernel {
    pub notified: Vec<Channel>,
    pub acked: Vec<Channel>,
    pub console: String,
}

impl RecordingKernel {
    /// The notifications recorded so far, leaving the record empty.
    pub fn take_notified(&mut self) -> Vec<Channel> {
        core::mem::take(&mut self.notified)
    }
}

impl Kernel for RecordingKernel {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.notified.push(ch);
        Ok(())
    }

    fn pp_call(
        &mut self,
        ch: Channel,
        _msg: MessageInfo,
        _mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, IpcError> {
        Err(IpcError::NotGranted(ch))
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.acked.push(ch);
        Ok(())
    }

    fn debug_puts(&mut self, text: &str) {
        self.console.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_entries_read_as_missing() {
        let init = FakeInit::new("pd")
            .variable("v", 1)
            .region("r", leaked_region(8))
            .without_variable("v")
            .without_region("r");
        assert_eq!(
            Init::variable(&init, "v"),
            Err(InitError::MissingVariable("v"))
        );
        assert_eq!(
            Init::region(&init, "r").unwrap_err(),
            InitError::MissingRegion("r")
        );
    }
}
