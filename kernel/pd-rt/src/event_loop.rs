//! The loop every PD runs: wait, dispatch to the handler, answer with the next wait.
#![allow(unsafe_code)]

use ipc::{
    Channel, ChannelSet, Child, FaultInfo, Handler, Init, InitError, Kernel, MessageInfo,
    MessageRegisters, PpCall,
};
use kernel_abi::syscall::{reply, Event, FaultMessage, Sys};

use crate::sys::{die, syscall};
use crate::{println, RtInit, RtKernel};

/// Entry glue: builds the runtime from what the kernel passed, runs the PD's `init`,
/// then the loop. An `init` error is printed and ends the PD with a fault.
///
/// # Safety
/// `info` and `ipc_buffer` must be the addresses the kernel passed at entry.
pub unsafe fn start<H, F>(info: u64, ipc_buffer: u64, init: F) -> !
where
    H: Handler,
    F: FnOnce(&dyn Init, &mut dyn Kernel) -> Result<H, InitError>,
{
    // SAFETY: the caller passes the kernel's entry arguments.
    let Some(rt_init) = (unsafe { RtInit::new(info) }) else {
        println!("pd: no valid info page at {info:#x}");
        die()
    };
    // SAFETY: as above.
    let mut kernel = unsafe { RtKernel::new(ipc_buffer) };
    match init(&rt_init, &mut kernel) {
        Ok(handler) => run(handler, &mut kernel, rt_init.name()),
        Err(e) => {
            println!("{}: init failed: {e}", rt_init.name());
            die()
        }
    }
}

/// What the next wait answers.
#[derive(Copy, Clone)]
struct Answer {
    label: u64,
    count: usize,
    flags: u64,
}

impl Answer {
    /// An answer without a message: only `flags` (a failed call, or how a fault
    /// is answered).
    const fn bare(flags: u64) -> Self {
        Self {
            label: 0,
            count: 0,
            flags,
        }
    }
}

/// Waits for events for ever, handing each to `handler`. Handler errors are printed
/// with the PD's name; a failed call is answered with an error.
pub fn run<H: Handler>(mut handler: H, kernel: &mut RtKernel, name: &str) -> ! {
    let mut mrs = MessageRegisters::new();
    let mut answer: Option<Answer> = None;
    loop {
        let (event, badge, a, b) = match answer.take() {
            Some(ans) => {
                kernel.write_words(&mrs.0[..ans.count]);
                syscall(Sys::REPLY_RECV, ans.label, ans.count as u64, 0, ans.flags)
            }
            None => syscall(Sys::RECV, 0, 0, 0, 0),
        };
        match Event(event) {
            Event::NOTIFICATION => {
                if let Err(e) = handler.notified(kernel, ChannelSet::from_bits(a)) {
                    println!("{name}: {e}");
                }
            }
            Event::CALL => {
                let msg = MessageInfo::new(a, b as usize);
                kernel.read_words(&mut mrs.0[..msg.count()]);
                let Some(ch) = Channel::try_new(badge as u8) else {
                    answer = Some(Answer::bare(reply::ERROR));
                    continue;
                };
                let call = PpCall::new(ch, msg, &mut mrs);
                answer = Some(match handler.protected(kernel, call) {
                    Ok(r) => Answer {
                        label: r.label(),
                        count: r.count(),
                        flags: 0,
                    },
                    Err(e) => {
                        println!("{name}: {e}");
                        Answer::bare(reply::ERROR)
                    }
                });
            }
            Event::FAULT => {
                let mut words = [0u64; FaultMessage::WORDS];
                kernel.read_words(&mut words);
                let f = FaultMessage::from_words(words);
                let info = FaultInfo {
                    code: f.vector,
                    address: f.address,
                    ip: f.ip,
                };
                let flags = match handler.fault(kernel, Child(badge as u8), info) {
                    Ok(true) => reply::RESUME,
                    Ok(false) => 0,
                    Err(e) => {
                        println!("{name}: {e}");
                        0
                    }
                };
                answer = Some(Answer::bare(flags));
            }
            _ => println!("{name}: unknown event {event:#x} from the kernel"),
        }
    }
}
