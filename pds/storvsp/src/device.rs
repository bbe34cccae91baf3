//! storvsp as a VMBus device: its offer and its protocol behind the one device
//! layer ([`vmbus_device`]), which does the GPADLs, rings, signal registration,
//! open/close and teardown.
//!
//! What system.xml must grant: what [`vmbus_device::names`] lists, and on bare
//! metal the disk as region [`DISK`] (rw); the host-sim entry passes a file
//! backend instead.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ipc::{Init, InitError, InitExt, Perms};
use storvsp_protocol::VSTOR_PACKET_SIZE;
use vmbus_device::{Limits, Reply, ReplyKind, Request, VmbusDevice, VspPd};
use vmbus_protocol::ids::{interface, Guid};
use vmbus_protocol::status::STATUS_INSUFFICIENT_RESOURCES;
use vmbus_protocol::Relid;
use vmbus_ring::{IncomingKind, IncomingPacket};
use vsp_api::{VspOffer, VspOpen};

use crate::backend::{Backend, RegionBackend};
use crate::scsi::{Controller, DiskConfig, ScsiAddress, ScsiDisk};
use crate::state_machine::{Completion, NoSubChannels, Storvsp, StorvspConfig, SubChannels};

pub const DISK: &str = "disk";

/// The instance GUID of the one controller this PD offers.
pub const INSTANCE_ID: Guid =
    Guid::from_fields(0x5354_4f52, 0x5653, 0x5000, [0, 0, 0, 0, 0, 0, 0, 1]);

/// The storvsp PD: the device behind the layer.
pub type StorvspPd<'a> = VspPd<'a, StorvspDevice>;

/// The storage offer. Data buffers are read straight from guest RAM as this PD
/// maps it, encrypted or not.
pub fn offer() -> VspOffer {
    vmbus_device::offer(interface::STORAGE, INSTANCE_ID)
}

/// Copy limits: a whole `vstor_packet`, and the page list of the largest transfer.
pub fn limits(config: &StorvspConfig) -> Limits {
    Limits {
        max_payload: VSTOR_PACKET_SIZE,
        max_pages: (config.max_transfer_bytes as usize).div_ceil(hvdef::HV_PAGE_SIZE as usize) + 1,
    }
}

/// One channel of a storvsp instance as a device: the state it shares with the
/// other channels, and its index (0 is the primary). The PD's [`StorvspDevice`]
/// serves through it, and so do in-process harnesses.
#[derive(Debug)]
pub struct StorvspChannel<'a> {
    pub vsp: &'a mut Storvsp,
    pub subchannels: &'a mut dyn SubChannels,
    pub index: u16,
}

impl VmbusDevice for StorvspChannel<'_> {
    const NAME: &'static str = "storvsp";

    fn offer(&self, slot: usize) -> Option<VspOffer> {
        (slot == 0).then(offer)
    }

    fn limits(&self) -> Limits {
        limits(&StorvspConfig::default())
    }

    /// Every packet gets at most one COMPLETE_IO `vstor_packet` back.
    fn reply_room(&self, _packet: &IncomingPacket) -> Option<usize> {
        Some(VSTOR_PACKET_SIZE)
    }

    /// In-band and GPA-direct packets are requests; any other kind is refused by
    /// its id.
    fn packet(&mut self, req: Request<'_>, reply: &mut Vec<u8>) -> Option<Reply> {
        let packet = &req.packet;
        let completion: Option<Completion> = match packet.header.kind {
            IncomingKind::InBand | IncomingKind::GpaDirect(_) => {
                self.vsp
                    .handle_packet(self.index, packet, req.mem, self.subchannels)
            }
            IncomingKind::Completion | IncomingKind::TransferPages(_) => self
                .vsp
                .refuse(packet.transaction_id(), packet.completion_requested()),
        };
        let c = completion?;
        reply.extend_from_slice(c.bytes());
        Some(Reply {
            transaction_id: c.transaction_id,
            kind: ReplyKind::Completion,
        })
    }
}

/// The storage device: the protocol state shared by its channels, and which
/// channel index each open relid is (0, the primary, is the first opened).
#[derive(Debug)]
pub struct StorvspDevice<S = NoSubChannels> {
    pub vsp: Storvsp,
    pub subchannels: S,
    config: StorvspConfig,
    channels: BTreeMap<Relid, u16>,
}

impl<S: SubChannels> StorvspDevice<S> {
    /// A controller with one disk at 0:0:0 on `backend`.
    pub fn new(backend: Box<dyn Backend + Send>, subchannels: S) -> Self {
        let mut controller = Controller::new();
        // A fresh controller has no disks, so attaching cannot collide.
        let _ = controller.attach(
            ScsiAddress::default(),
            ScsiDisk::new(backend, DiskConfig::default()),
        );
        Self::with_controller(controller, subchannels)
    }

    pub fn with_controller(controller: Controller, subchannels: S) -> Self {
        let config = StorvspConfig::default();
        Self {
            vsp: Storvsp::new(controller, config),
            subchannels,
            config,
            channels: BTreeMap::new(),
        }
    }
}

impl<S: SubChannels + 'static> VmbusDevice for StorvspDevice<S> {
    const NAME: &'static str = "storvsp";

    fn offer(&self, slot: usize) -> Option<VspOffer> {
        (slot == 0).then(offer)
    }

    fn limits(&self) -> Limits {
        limits(&self.config)
    }

    fn open(&mut self, open: &VspOpen) -> Result<(), u32> {
        let index = (0..=u16::MAX)
            .find(|i| !self.channels.values().any(|v| v == i))
            .ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        if index == 0 {
            // A fresh primary negotiates afresh.
            self.vsp.reset();
        }
        self.channels.insert(open.relid, index);
        Ok(())
    }

    fn close(&mut self, relid: Relid) {
        if self.channels.remove(&relid) == Some(0) {
            self.vsp.reset();
        }
    }

    fn reply_room(&self, _packet: &IncomingPacket) -> Option<usize> {
        Some(VSTOR_PACKET_SIZE)
    }

    fn packet(&mut self, req: Request<'_>, reply: &mut Vec<u8>) -> Option<Reply> {
        // The layer serves only channels it opened through us.
        let index = *self.channels.get(&req.relid)?;
        StorvspChannel {
            vsp: &mut self.vsp,
            subchannels: &mut self.subchannels,
            index,
        }
        .packet(req, reply)
    }
}

/// Builds the PD from what system.xml granted. `backend` is the disk when the
/// runtime has one to give (host-sim: an image file); otherwise the [`DISK`]
/// region is the disk.
pub fn init(
    init: &dyn Init,
    backend: Option<Box<dyn Backend + Send>>,
) -> Result<StorvspPd<'static>, InitError> {
    let backend = match backend {
        Some(b) => b,
        None => Box::new(RegionBackend::new(init.region_with(DISK, Perms::RW)?)),
    };
    VspPd::init(init, StorvspDevice::new(backend, NoSubChannels))
}
