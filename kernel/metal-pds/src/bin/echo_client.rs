//! pds/pd-echo's client, unchanged, on the bare-metal runtime; tells selftest when
//! every message came back in order.
#![no_std]
#![no_main]

use ipc::{ChannelSet, Handler, HandlerError, Kernel};
use metal_pds::{ECHO_CLIENT_DONE, ECHO_COUNT};
use pd_echo::Client;

struct MetalClient {
    client: Client,
    reported: bool,
}

impl MetalClient {
    fn settle(&mut self, k: &mut dyn Kernel) -> Result<(), HandlerError> {
        if self.client.is_done() && !self.reported {
            self.reported = true;
            pd_rt::println!(
                "echo_client: {} messages echoed in order",
                self.client.received()
            );
            ECHO_CLIENT_DONE.notify(k)?;
        }
        Ok(())
    }
}

impl Handler for MetalClient {
    fn notified(&mut self, k: &mut dyn Kernel, ch: ChannelSet) -> Result<(), HandlerError> {
        self.client.notified(k, ch)?;
        self.settle(k)
    }
}

fn start(init: &dyn ipc::Init, kernel: &mut dyn Kernel) -> Result<MetalClient, ipc::InitError> {
    let mut c = MetalClient {
        client: Client::new(init, ECHO_COUNT)?,
        reported: false,
    };
    if let Err(e) = c.client.start(kernel) {
        pd_rt::println!("echo_client: {e}");
    }
    if let Err(e) = c.settle(kernel) {
        pd_rt::println!("echo_client: {e}");
    }
    Ok(c)
}

pd_rt::entry!(start);
