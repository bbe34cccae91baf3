//! The virtio-net driver PD: QEMU's `virtio-net-pci` (modern, `disable-legacy=on`)
//! at the function system.xml's `<pci_device>` grants, moving frames between
//! the device and netvsp's frame queues (`netvsp::backend::virtio::pump`). It
//! holds only its device (BAR 4 uncached, config space and INTx on its device
//! channel), the rings region the device DMAs into, and the two frame queues
//! it shares with netvsp.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Channel, HandlerError, InitExt, Kernel, Perms};
use metal_pds::virtio_pci::{self, PciBus, Rings, DEVICE};
use metal_pds::Boxed;
use netvsp::backend::queue::QueueBackend;
use netvsp::backend::virtio::{pump, Pumped};
use netvsp::config::build::QUEUE_SLOTS;
use virtio_net::Driver;

pd_rt::global_heap!(64 * 1024);

/// netvsp: notifications both ways, frames or room wait in the queues.
const NETVSP: Channel = Channel::new(0);

struct VirtioNet {
    nic: Option<Driver<PciBus, Rings>>,
    peer: QueueBackend<'static>,
    counts: Pumped,
}

impl VirtioNet {
    /// Moves what can move; a device that broke its rings is dropped for good
    /// (netvsp's frames then wait in its queue: the guest sees a silent wire).
    fn run(&mut self, kernel: &mut dyn Kernel) {
        let Some(nic) = self.nic.as_mut() else {
            return;
        };
        match pump(nic, &mut self.peer, &mut self.counts) {
            Ok(true) => {
                let _ = NETVSP.notify(kernel);
            }
            Ok(false) => {}
            Err(e) => {
                pd_rt::println!("virtio-net: device broke its rings ({e:?}); not used again");
                self.nic = None;
            }
        }
    }
}

impl ipc::Handler for VirtioNet {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ipc::ChannelSet,
    ) -> Result<(), HandlerError> {
        channels.only_from(|c| c == DEVICE || c == NETVSP)?;
        if channels.contains(DEVICE) {
            if let Some(Err(e)) = self.nic.as_mut().map(|n| n.ack_interrupt()) {
                pd_rt::println!("virtio-net: interrupt: {e:?}");
                self.nic = None;
            }
            DEVICE.irq_ack(kernel).map_err(HandlerError::from)?;
        }
        self.run(kernel);
        Ok(())
    }
}

pd_rt::entry!(|init, kernel| {
    let to_netvsp = init.region_with("frames_to_netvsp", Perms::RW)?;
    let from_netvsp = init.region_with("frames_from_netvsp", Perms::RW)?;
    let peer = QueueBackend::new(to_netvsp, from_netvsp, QUEUE_SLOTS)
        .map_err(|_| ipc::InitError::MissingRegion("frame queues of QUEUE_SLOTS slots"))?;
    let (bus, rings) =
        virtio_pci::attach(init, "virtio-net", NETVSP, "net_rings", "net_rings_paddr")?;
    let nic = match Driver::init(bus, rings) {
        Ok(d) => d,
        Err(e) => {
            pd_rt::println!("virtio-net: device not usable: {e:?}");
            return Err(ipc::InitError::MissingRegion("a usable virtio-net device"));
        }
    };
    let mac = nic.mac().unwrap_or_default();
    pd_rt::println!("virtio-net: up, device MAC {mac:02x?}");
    let mut pd = VirtioNet {
        nic: Some(nic),
        peer,
        counts: Pumped::default(),
    };
    pd.run(kernel);
    Ok(Boxed(Box::new(pd)))
});
