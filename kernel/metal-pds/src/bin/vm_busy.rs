//! The VM test's middle-priority PD (vmtest.xml): above the guest, below its VMM.
//! Each notification makes it compute for about a millisecond and then count the
//! round in its page, which the VMM reads: it only gets the CPU if the kernel runs
//! the VMM's guest at the guest's priority.
#![no_std]
#![no_main]

use ipc::{ChannelSet, Handler, HandlerError, Kernel, Region};
use pd_rt::sys::rdtsc;

struct Busy {
    counter: Region<'static>,
}

/// How long one round computes (TSC ticks; about 1 ms under -icount).
const ROUND: u64 = 1_000_000;

impl Handler for Busy {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        let start = rdtsc();
        while rdtsc().wrapping_sub(start) < ROUND {
            core::hint::spin_loop();
        }
        let n = self.counter.read::<u64>(0)?;
        self.counter.write::<u64>(0, &(n + 1))?;
        Ok(())
    }
}

pd_rt::entry!(|init, _kernel| Ok(Busy {
    counter: init.region("busy_counter")?,
}));
