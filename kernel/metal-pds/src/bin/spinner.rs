//! Never waits: spins for ever. With a budget below its period the kernel throttles
//! it, so the lower-priority PDs (loner, faulter) still run; without budgets they
//! would starve and the self-test would never finish.
#![no_std]
#![no_main]

use ipc::{ChannelSet, Handler, HandlerError, Kernel};

struct Never;

impl Handler for Never {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}

pd_rt::entry!(|_init, _kernel| {
    pd_rt::println!("spinner: spinning for ever on a 20% budget");
    loop {
        core::hint::spin_loop();
    }
    #[allow(unreachable_code)]
    Ok(Never)
});
