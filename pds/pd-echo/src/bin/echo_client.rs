//! host-sim entry point of the echo client: sends `ECHO_COUNT` (default 1,000,000)
//! sequence numbers, checks every reply, prints the count and exits 0 — or exits 1
//! naming the first reply that was lost, duplicated or reordered.

use std::time::Instant;

use ipc::{ChannelSet, Handler, HandlerError, Kernel};
use pd_echo::Client;

const DEFAULT_COUNT: u64 = 1_000_000;

struct HostClient {
    client: Client,
    started: Instant,
}

impl HostClient {
    /// Ends the process once the run is decided; the supervisor takes the status.
    fn settle(&self, result: &Result<(), HandlerError>) {
        if let Some(m) = self.client.mismatch() {
            eprintln!(
                "echo_client: reply {} should be {} but is {}",
                self.client.received(),
                m.expected,
                m.got
            );
            std::process::exit(1);
        }
        if let Err(e) = result {
            eprintln!("echo_client: {e}");
            std::process::exit(1);
        }
        if self.client.is_done() {
            let secs = self.started.elapsed().as_secs_f64();
            println!(
                "echo_client: {} messages echoed, none lost, duplicated or reordered ({secs:.3} s, {:.2} M msg/s)",
                self.client.received(),
                self.client.received() as f64 / secs.max(1e-9) / 1e6
            );
            std::process::exit(0);
        }
    }
}

impl Handler for HostClient {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        let result = self.client.notified(kernel, channels);
        self.settle(&result);
        result
    }
}

fn main() {
    let count = match std::env::var("ECHO_COUNT") {
        Ok(s) => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("echo_client: ECHO_COUNT={s:?} is not a number");
                std::process::exit(2);
            }
        },
        Err(_) => DEFAULT_COUNT,
    };
    hostsim::run(move |init, kernel| {
        let mut host = HostClient {
            client: Client::new(init, count)?,
            started: Instant::now(),
        };
        let result = host.client.start(kernel);
        host.settle(&result);
        Ok(host)
    })
}
