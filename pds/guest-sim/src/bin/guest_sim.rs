//! host-sim entry point of guest-sim: maps guest memory and the interrupt queue,
//! runs the scenario the environment selects (see [`guest_sim::scenario::Options`])
//! and exits: 0 with a report, 1 naming the step that failed. The default
//! scenario first checks the vTPM when one is granted ([`guest_sim::vtpm`]).

use guest_sim::config::{GUEST_RAM, GUEST_SHARED, IRQ_QUEUE, TPM};
use guest_sim::scenario::{self, Options};
use guest_sim::synic::GuestSynic;
use guest_sim::vcpu::Vcpu;
use guest_sim::vtpm::Vtpm;
use ipc::{Consumer, InitError, InitExt, Perms};
use synic_pd::pd::IRQ_QUEUE_CAPACITY;

fn main() {
    let options = match Options::from_env(|k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(e) => {
            println!("guest_sim: FAILED: {e}");
            std::process::exit(2);
        }
    };
    hostsim::run::<Never, _>(|init, kernel| {
        let queue = init.region_with(IRQ_QUEUE, Perms::RW)?;
        let irqs =
            Consumer::new(queue, IRQ_QUEUE_CAPACITY).map_err(|_| InitError::RegionTooSmall {
                name: IRQ_QUEUE,
                needed: ipc::Queue::<synic_pd::api::IrqEntry>::layout_size(IRQ_QUEUE_CAPACITY)
                    .unwrap_or(usize::MAX),
                granted: queue.len(),
            })?;
        let ram = init.region_with(GUEST_RAM, Perms::RW)?;
        let shared = init.region_with(GUEST_SHARED, Perms::RW)?;
        if options.storage.is_none() && !options.hostile {
            if let Some(tpm) = Vtpm::granted(init, TPM)? {
                match tpm.run(kernel) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        println!("guest_sim: FAILED: {e}");
                        std::process::exit(1)
                    }
                }
            }
        }
        let vcpu = Vcpu::new(kernel, ram, shared, GuestSynic::new(ram, irqs));
        // The guest runs to completion here; nothing ever calls it.
        match scenario::run(vcpu, options) {
            Ok(summary) => {
                println!("{summary}");
                std::process::exit(0)
            }
            Err(e) => {
                println!("guest_sim: FAILED: {e}");
                std::process::exit(1)
            }
        }
    })
}

/// The handler type of a PD whose `init` never returns.
enum Never {}

impl ipc::Handler for Never {
    fn notified(
        &mut self,
        _: &mut dyn ipc::Kernel,
        _: ipc::ChannelSet,
    ) -> Result<(), ipc::HandlerError> {
        match *self {}
    }
}
