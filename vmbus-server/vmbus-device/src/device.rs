//! What a VSP writes: its offer and its protocol.

use alloc::vec::Vec;

use ipc::Channel;
use isolation::GuestMemory;
use vmbus_protocol::Guid;
use vmbus_protocol::Relid;
use vmbus_ring::{IncomingPacket, RingMem};
use vsp_api::{VspOffer, VspOpen};

use crate::gpadl::MAX_GPADL_PAGES;
use crate::packet::Packet;
use crate::serve::{serve, Served};
use crate::stream::Serving;
use crate::transport::RingBroken;

/// A device's one offer: interface and instance, no MMIO, no user data. The
/// device layer reads guest memory through the PD's own mapping, encrypted or
/// not, so confidential external memory is always fine.
pub fn offer(interface_id: Guid, instance_id: Guid) -> VspOffer {
    VspOffer {
        confidential_external_memory: true,
        ..VspOffer::device(interface_id, instance_id)
    }
}

/// How much of a packet the layer copies out of the ring for the device.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Payload bytes copied (a longer payload is cut, and the device sees that).
    pub max_payload: usize,
    /// Page numbers copied from a GPA-direct packet's range; a range with more is
    /// handed over as [`crate::BufferError::TooManyPages`].
    pub max_pages: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// A completion packet (storvsp's COMPLETE_IO).
    Completion,
    /// An in-band data packet.
    InBand,
}

/// One packet for [`VmbusDevice::packet`], with what answering it may need.
#[derive(Copy, Clone, Debug)]
pub struct Request<'a> {
    /// The channel it came on.
    pub relid: Relid,
    pub packet: Packet<'a>,
    /// Guest memory as the PD maps it (a GPA-direct buffer is read or written
    /// through it).
    pub mem: &'a GuestMemory<'a>,
}

/// The packet to send back; its payload is what the device wrote into the reply
/// buffer it was lent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub transaction_id: u64,
    pub kind: ReplyKind,
}

/// A VMBus device: the protocol side of one VSP.
pub trait VmbusDevice {
    /// Prefix of the layer's log lines (the PD's name).
    const NAME: &'static str;

    /// The offer in `slot` (vmbus-server asks slots 0.. until one is empty).
    fn offer(&self, slot: usize) -> Option<VspOffer>;

    fn limits(&self) -> Limits;

    /// A channel is about to open on rings the layer attached; `Err(status)`
    /// refuses it (the status goes back to the guest's OPEN).
    fn open(&mut self, open: &VspOpen) -> Result<(), u32> {
        let _ = open;
        Ok(())
    }

    /// The channel closed (the guest closed it, its ring GPADL went, or its ring
    /// broke): nothing of it may be used any more.
    fn close(&mut self, relid: Relid) {
        let _ = relid;
    }

    /// Payload bytes the reply to `packet` may need, `None` if it gets none. The
    /// layer takes the packet only once that much room is free in the outgoing
    /// ring, so a request is never carried out without room for its answer.
    fn reply_room(&self, packet: &IncomingPacket) -> Option<usize>;

    /// Handles one packet, writing the reply's payload into `reply` (empty on
    /// entry).
    fn packet(&mut self, req: Request<'_>, reply: &mut Vec<u8>) -> Option<Reply>;

    /// Pages a GPADL of this device may have. A NIC's buffers (Linux: a 4096-page
    /// receive buffer, a 258-page ring) need more than a disk's ring.
    fn max_gpadl_pages(&self) -> usize {
        MAX_GPADL_PAGES
    }

    /// Serves open channel `relid` until there is nothing to do now. The default
    /// is request/reply ([`serve`]: one reply per packet, its room reserved first);
    /// a streaming device replaces it and drives the rings itself.
    fn serve_channel<M: RingMem>(&mut self, ch: Serving<'_, '_, M>) -> Result<Served, RingBroken> {
        serve(self, ch.relid, ch.rings, ch.mem, ch.buf, ch.reply)
    }

    /// Whether a notification on `ch` is the device's own (its backend has work):
    /// the layer then serves every open channel instead of failing the PD.
    fn owns_notification(&self, ch: Channel) -> bool {
        let _ = ch;
        false
    }

    /// Whether the device's offers changed since the layer last asked (a NIC
    /// granted or withdrew sub-channels); asking clears it. The layer then
    /// notifies vmbus-server, which asks GET_OFFER again.
    fn take_offers_changed(&mut self) -> bool {
        false
    }

    /// Whether serving one channel left work for another (a NIC steering
    /// received frames to its sub-channels); asking clears it. The layer then
    /// serves its open channels once more.
    fn take_more_work(&mut self) -> bool {
        false
    }
}
