//! guest-sim on the bare-metal runtime, as the boot test's VMBus self-test. Two
//! sessions, each from Hyper-V detection to unload, as two boots of a Linux guest
//! would run them:
//! 1. echo: negotiates VMBus 6.0 with vmbus-server (through hvcall-pd and
//!    synic-pd), opens the echo VSP's channel on a confidential ring, exchanges
//!    packets, closes, reconnects and unloads;
//! 2. storage: opens storvsp's channel, negotiates storvsc, writes a pattern over
//!    the RAM disk with GPA-direct WRITEs, reads the whole disk back and checks it,
//!    and checks malformed SRBs are refused with the right sense data.
//!
//! It prints a report and halts the machine with the verdict (0 = pass). Nothing
//! calls it: its `init` never returns.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use guest_sim::scenario::{self, Options};
use guest_sim::storage::Mode;
use guest_sim::vcpu::Vcpu;
use ipc::{Init, InitError, Kernel};

pd_rt::global_heap!(2 * 1024 * 1024);

/// Packets the echo exchange sends.
const PACKETS: u64 = 1000;

/// Prints the session's outcome; `true` if it passed.
fn report(session: &str, outcome: guest_sim::Result<String>) -> bool {
    match outcome {
        Ok(summary) => {
            pd_rt::println!("{summary}");
            pd_rt::println!("guest_sim: ok   {session}");
            true
        }
        Err(e) => {
            pd_rt::println!("guest_sim: FAIL {session}: {e}");
            false
        }
    }
}

fn start(init: &dyn Init, kernel: &mut dyn Kernel) -> Result<ipc::Never, InitError> {
    let started = pd_rt::sys::rdtsc();
    let echo = Options {
        packets: PACKETS,
        ..Options::default()
    };
    let storage = Options {
        storage: Some(Mode::Check),
        ..Options::default()
    };
    let mut passed = report("echo", scenario::run(Vcpu::attach(init, kernel)?, echo));
    passed &= report(
        "storage",
        scenario::run(Vcpu::attach(init, kernel)?, storage),
    );
    pd_rt::println!("guest_sim: REPORT {}", if passed { "PASS" } else { "FAIL" });
    // Under -icount shift=0 the TSC counts instructions since reset (firmware,
    // kernel boot, every PD's init, then the sessions).
    let now = pd_rt::sys::rdtsc();
    pd_rt::println!(
        "guest_sim: measure sessions {} tsc, boot_to_report {} tsc since reset",
        now.wrapping_sub(started),
        now
    );
    pd_rt::sys::debug_halt(u64::from(!passed))
}

pd_rt::entry!(start);
