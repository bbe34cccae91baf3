//! The virtio-blk driver PD: QEMU's `virtio-blk-pci` (modern, `disable-legacy=on`)
//! at the function system.xml's `<pci_device>` grants, served to storvsp over
//! protected calls (`virtio_blk::service`). It holds only its device: BAR 4
//! mapped uncached, config space through `PCI_CONFIG` on its device channel, the
//! function's INTx line on the same channel, the rings region it DMAs from and
//! the data window storvsp fills (mapped read-only here: only its size and its
//! physical address matter to the driver).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Channel, HandlerError, HandlerReply, Kernel, MessageInfo, PpCall};
use metal_pds::virtio_pci::{self, PciBus, Rings, DEVICE};
use metal_pds::Boxed;
use virtio_blk::service::Server;
use virtio_blk::{DataWindow, Driver};

pd_rt::global_heap!(64 * 1024);

/// storvsp's calls (linux.xml).
const CLIENT: Channel = Channel::new(0);
/// Used-ring polls before a request counts as lost (QEMU answers in microseconds;
/// this is seconds of spinning).
const PATIENCE: u64 = 200_000_000;

struct VirtioBlk {
    server: Server<PciBus, Rings>,
}

impl ipc::Handler for VirtioBlk {
    fn protected(&mut self, _kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        if call.ch != CLIENT {
            return Err(call.unexpected());
        }
        let PpCall { msg, mrs, .. } = call;
        let count = msg.count().min(3);
        let words = [mrs.get(0), mrs.get(1), mrs.get(2)];
        let (reply, out, n) = self.server.serve(msg.label(), &words[..count]);
        for (i, w) in out.iter().take(n).enumerate() {
            mrs.set(i, *w);
        }
        Ok(MessageInfo::new(reply as u64, n))
    }

    /// The device's INTx: completions are polled inside each call, so the
    /// interrupt only has to be taken off the line (reading the ISR) and acked.
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ipc::ChannelSet,
    ) -> Result<(), HandlerError> {
        channels.only_from(|c| c == DEVICE)?;
        if let Err(e) = self.server.driver().ack_interrupt() {
            pd_rt::println!("virtio-blk: interrupt: {e:?}");
        }
        DEVICE.irq_ack(kernel).map_err(HandlerError::from)
    }
}

pd_rt::entry!(|init, _kernel| {
    let data = DataWindow {
        bus_addr: init.variable("blk_data_paddr")?,
        len: init.region("blk_data")?.len() as u64,
    };
    let (bus, rings) =
        virtio_pci::attach(init, "virtio-blk", CLIENT, "blk_rings", "blk_rings_paddr")?;
    let driver = match Driver::init(bus, rings, data) {
        Ok(d) => d,
        Err(e) => {
            pd_rt::println!("virtio-blk: device not usable: {e:?}");
            return Err(ipc::InitError::MissingRegion("a usable virtio-blk device"));
        }
    };
    let g = driver.geometry();
    pd_rt::println!(
        "virtio-blk: {} sectors ({} MiB), flush {}, read-only {}",
        g.sectors,
        g.sectors >> 11,
        g.flush,
        g.read_only
    );
    Ok(Boxed(Box::new(VirtioBlk {
        server: Server::new(driver, PATIENCE),
    })))
});
