//! Faults on purpose, in the way its PD name says; it prints what it is about to do
//! so the test can match the reported address.
#![allow(unsafe_code)]

use ipc::{ChannelSet, Handler, HandlerError, Kernel};

struct Never;

impl Handler for Never {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    hostsim::run(|init, _| -> Result<Never, ipc::InitError> {
        match init.pd_name() {
            // The region is granted "r": the MMU must refuse the store.
            "ro_writer" => {
                let victim = init.region("victim")?;
                println!("writing to read-only {:#x}", victim.base_address());
                if let Ok(word) = victim.atomic_u32(0) {
                    word.store(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            // Just past the granted region: nothing is mapped there.
            "wild_reader" => {
                let victim = init.region("victim")?;
                let addr = victim.base_address() + 0x10000;
                println!("reading unmapped {addr:#x}");
                // SAFETY: none; the read is meant to fault.
                let v = unsafe { (addr as *const u64).read_volatile() };
                println!("read {v} from an address that should be unmapped");
            }
            "panicker" => panic!("deliberate panic in a PD"),
            other => println!("faulter: no fault defined for PD name {other}"),
        }
        // Reaching here means the fault did not happen; the test sees this status.
        std::process::exit(3)
    })
}
