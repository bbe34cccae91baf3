//! Answers every notification from selftest with one back.
#![no_std]
#![no_main]

use ipc::{ChannelSet, Handler, HandlerError, Kernel};
use metal_pds::PONGER_PEER;

struct Ponger;

impl Handler for Ponger {
    fn notified(&mut self, k: &mut dyn Kernel, ch: ChannelSet) -> Result<(), HandlerError> {
        if ch.contains(PONGER_PEER) {
            PONGER_PEER.notify(k)?;
        }
        Ok(())
    }
}

pd_rt::entry!(|_init, _kernel| Ok(Ponger));
