//! A PD that does nothing: a channel peer, or a PD a timeout test can outlive.

use ipc::{ChannelSet, Handler, HandlerError, Kernel};

struct Idle;

impl Handler for Idle {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    hostsim::run(|_, _| Ok(Idle))
}
