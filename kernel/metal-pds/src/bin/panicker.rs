//! selftest's second child: panics in its handler on the first notification. The
//! runtime prints the panic and ends the PD with an invalid opcode, which the kernel
//! reports to selftest like any other fault; then a divide by zero would follow, but
//! the PD is stopped before it gets there.
#![no_std]
#![no_main]

use ipc::{ChannelSet, Handler, HandlerError, Kernel};

struct Panicker;

impl Handler for Panicker {
    fn notified(&mut self, _: &mut dyn Kernel, ch: ChannelSet) -> Result<(), HandlerError> {
        let ids = ch.bits();
        panic!("panicker: told to panic (channels {ids:#x})");
    }
}

pd_rt::entry!(|_init, _kernel| Ok(Panicker));
