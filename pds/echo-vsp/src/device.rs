//! The echo VSP as a VMBus device: one offer, and every in-band packet written
//! back with the same transaction id. GPADLs, rings, signal registration,
//! open/close and teardown are the shared device layer's ([`vmbus_device`]).

use alloc::vec::Vec;

use ipc::{Init, InitError};
use vmbus_device::{Limits, Reply, ReplyKind, Request, VmbusDevice, VspPd};
use vmbus_protocol::Guid;
use vmbus_ring::{IncomingKind, IncomingPacket};
use vsp_api::VspOffer;

/// The interface this VSP offers. Not a Hyper-V device class: no guest driver
/// binds to it by accident.
pub const INTERFACE_ID: Guid = echo_guid(0);
pub const INSTANCE_ID: Guid = echo_guid(1);

/// The echo VSP's GUIDs ("echo" in the tail), told apart by the low bits.
const fn echo_guid(n: u32) -> Guid {
    Guid::from_fields(0xec40_0000 | n, 0x7673, 0x7000, *b"echo\0\0\0\x01")
}

/// The echo PD: the device behind the layer.
pub type EchoVsp = VspPd<'static, EchoDevice>;

/// Builds the PD from what system.xml granted ([`vmbus_device::names`]).
pub fn init(init: &dyn Init) -> Result<EchoVsp, InitError> {
    VspPd::init(init, EchoDevice::default())
}

/// The offer in slot 0.
pub fn offer() -> VspOffer {
    vmbus_device::offer(INTERFACE_ID, INSTANCE_ID)
}

#[derive(Copy, Clone, Debug, Default)]
pub struct EchoDevice {
    /// Packets echoed over the PD's life.
    pub echoed: u64,
}

impl VmbusDevice for EchoDevice {
    const NAME: &'static str = "echo_vsp";

    fn offer(&self, slot: usize) -> Option<VspOffer> {
        (slot == 0).then(offer)
    }

    /// The whole payload (the ring bounds it); no page lists.
    fn limits(&self) -> Limits {
        Limits {
            max_payload: usize::MAX,
            max_pages: 0,
        }
    }

    /// Nothing to echo for completions or packets naming guest memory.
    fn reply_room(&self, packet: &IncomingPacket) -> Option<usize> {
        (packet.kind == IncomingKind::InBand).then_some(packet.payload.len())
    }

    fn packet(&mut self, req: Request<'_>, reply: &mut Vec<u8>) -> Option<Reply> {
        if req.packet.header.kind != IncomingKind::InBand {
            return None;
        }
        reply.extend_from_slice(req.packet.payload);
        self.echoed += 1;
        Some(Reply {
            transaction_id: req.packet.transaction_id(),
            kind: ReplyKind::InBand,
        })
    }
}
