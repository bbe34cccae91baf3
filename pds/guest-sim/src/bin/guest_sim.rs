//! host-sim entry point of guest-sim: maps guest memory and the interrupt queue,
//! runs the scenario the environment selects (see [`guest_sim::scenario::Options`])
//! and exits: 0 with a report, 1 naming the step that failed. The default
//! scenario first checks the vTPM when one is granted ([`guest_sim::vtpm`]).

use guest_sim::config::TPM;
use guest_sim::scenario::{self, Options};
use guest_sim::vcpu::Vcpu;
use guest_sim::vtpm::Vtpm;

fn main() {
    let options = match Options::from_env(|k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(e) => {
            println!("guest_sim: FAILED: {e}");
            std::process::exit(2);
        }
    };
    hostsim::run::<ipc::Never, _>(|init, kernel| {
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
        let vcpu = Vcpu::attach(init, kernel)?;
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
