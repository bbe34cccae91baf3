//! A PD that waits before its runtime starts: for that long it is exactly as
//! exposed as its process is at exec, so a sibling probing its /proc/PID/mem (see
//! `escape_probe`) meets that state rather than a narrow race.

use std::time::Duration;

use ipc::{ChannelSet, Handler, HandlerError, Kernel};

struct Idle;

impl Handler for Idle {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    std::thread::sleep(Duration::from_millis(300));
    hostsim::run(|_, _| Ok(Idle))
}
