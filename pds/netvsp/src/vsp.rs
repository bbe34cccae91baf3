//! netvsp as a VMBus device: the [`Nic`] of each open channel behind the one
//! device layer ([`vmbus_device`]). The layer keeps GPADLs, attaches rings,
//! claims signal connections and tears channels down; this module offers the
//! network interface, gives each opened primary channel a fresh NIC, and serves
//! it with [`ring::serve_queue`] whenever the guest signals or the backend has
//! frames.
//!
//! vRSS: once the guest's SUBCHANNEL request is granted, offer slots `1..=n`
//! hold sub-channel offers of the same interface and instance with sub-channel
//! index `1..=n`, and the layer tells vmbus-server to ask again. An opened
//! sub-channel becomes queue `index` of its primary's NIC. When the primary
//! closes, its NIC goes and the sub-channel offers are withdrawn (vmbus-server
//! closes any still open and rescinds them), so the next bring-up asks afresh.
//!
//! A NIC keeps views of its receive and send buffers between calls, so the device
//! holds its own copy of the PD's guest-memory windows ([`VspPd::init_with`]) and
//! resolves a buffer GPADL once, when the guest hands it over.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ipc::{Channel, Init, InitError, Kernel};
use isolation::GuestMemory;
use vmbus_device::{Limits, Reply, Request, RingBroken, Served, Serving, VmbusDevice, VspPd};
use vmbus_protocol::ids::interface;
use vmbus_protocol::{GpadlId, Guid, Relid};
use vmbus_ring::{IncomingPacket, ReadError, RingMem, WriteError, PAGE_SIZE};
use vsp_api::{VspOffer, VspOpen};

use crate::backend::Backend;
use crate::mem::PagedBuffer;
use crate::nic::{Config, Nic};
use crate::ring::{self, RingError, ServeBuffers};

/// Pages a buffer GPADL may have: Linux's receive buffer (16 MiB) is the largest.
pub const MAX_BUFFER_PAGES: usize = 4096;
/// Primary channels one netvsp serves at once (it makes one offer; a guest that
/// reopens it gets a fresh NIC).
pub const MAX_CHANNELS: usize = 4;

/// The netvsp PD.
pub type NetvspPd = VspPd<'static, NetvspDevice<'static>>;

/// What a netvsp PD is built with besides its grants.
pub struct Setup {
    pub instance: Guid,
    pub mac: [u8; 6],
    pub backend: Box<dyn Backend>,
    /// The channel the backend's peer notifies when frames wait, and that this PD
    /// notifies after it sent frames; `None` for a backend nobody else drives.
    pub backend_channel: Option<Channel>,
}

impl core::fmt::Debug for Setup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Setup")
            .field("instance", &self.instance)
            .field("mac", &self.mac)
            .finish_non_exhaustive()
    }
}

/// Builds the PD from what system.xml granted ([`vmbus_device::names`]).
pub fn init(init: &dyn Init, setup: Setup) -> Result<NetvspPd, InitError> {
    VspPd::init_with(init, |mem| Ok(NetvspDevice::new(*mem, setup)))
}

pub struct NetvspDevice<'a> {
    mem: GuestMemory<'a>,
    setup: Setup,
    /// The NIC of each open primary channel.
    nics: BTreeMap<Relid, Nic<PagedBuffer<'a>>>,
    /// Each open sub-channel: its primary and its queue there.
    queues: BTreeMap<Relid, (Relid, usize)>,
    /// Sub-channel offers made (slots `1..=subchannels`).
    subchannels: u32,
    offers_changed: bool,
    more_work: bool,
    bufs: ServeBuffers,
    /// Frames moved to guests over the PD's life.
    pub frames_to_guest: u64,
}

impl core::fmt::Debug for NetvspDevice<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetvspDevice")
            .field("setup", &self.setup)
            .field("nics", &self.nics)
            .finish_non_exhaustive()
    }
}

impl<'a> NetvspDevice<'a> {
    pub fn new(mem: GuestMemory<'a>, setup: Setup) -> Self {
        Self {
            mem,
            setup,
            nics: BTreeMap::new(),
            queues: BTreeMap::new(),
            subchannels: 0,
            offers_changed: false,
            more_work: false,
            bufs: ServeBuffers::default(),
            frames_to_guest: 0,
        }
    }

    pub fn nic(&self, relid: Relid) -> Option<&Nic<PagedBuffer<'a>>> {
        self.nics.get(&relid)
    }

    /// Sub-channel offers standing now.
    pub fn subchannel_offers(&self) -> u32 {
        self.subchannels
    }

    /// The queue an open sub-channel is of its primary's NIC.
    pub fn queue_of(&self, relid: Relid) -> Option<usize> {
        self.queues.get(&relid).map(|&(_, q)| q)
    }

    /// A sub-channel opens: it becomes queue `index` of the primary that was
    /// granted that many.
    fn open_subchannel(&mut self, relid: Relid, index: usize) -> Result<(), u32> {
        let taken = self.queues.values().any(|&(_, q)| q == index);
        let primary = self
            .nics
            .iter_mut()
            .find(|(_, nic)| nic.subchannels().is_some_and(|n| index <= n as usize));
        match primary {
            Some((&primary, nic)) if !taken => {
                if !nic.open_queue(index) {
                    return Err(vmbus_protocol::status::STATUS_INVALID_PARAMETER);
                }
                self.queues.insert(relid, (primary, index));
                Ok(())
            }
            _ => Err(vmbus_protocol::status::STATUS_INVALID_PARAMETER),
        }
    }

    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.setup.backend.as_mut()
    }

    /// One guest page read at `offset`; false if the page is not granted or the
    /// read runs off it.
    fn read_page(mem: &GuestMemory<'_>, pfn: u64, offset: usize, buf: &mut [u8]) -> bool {
        offset.saturating_add(buf.len()) <= PAGE_SIZE
            && mem
                .page(pfn)
                .is_ok_and(|p| p.region.read_bytes(offset, buf).is_ok())
    }

    /// The buffer GPADL `id` of channel `relid` as one view, if all its pages lie
    /// in one window of guest memory.
    fn buffer(
        mem: &GuestMemory<'a>,
        gpadls: &vmbus_device::GpadlTable,
        relid: Relid,
        id: u32,
    ) -> Option<PagedBuffer<'a>> {
        let gpadl = gpadls.get(relid, GpadlId(id))?;
        // A buffer must start at a page boundary and be whole pages: Linux's are.
        if !gpadl.whole_pages {
            return None;
        }
        let placed = mem.place(&gpadl.pfns)?;
        let pages = gpadl.pfns.iter().map(|&p| placed.page_index(p)).collect();
        PagedBuffer::new(placed.region, pages)
    }
}

fn broken(e: RingError) -> RingBroken {
    match e {
        RingError::Incoming(c) => RingBroken::Incoming(ReadError::Corrupt(c)),
        RingError::Outgoing(c) => RingBroken::Outgoing(WriteError::Corrupt(c)),
    }
}

impl VmbusDevice for NetvspDevice<'_> {
    const NAME: &'static str = "netvsp";

    fn offer(&self, slot: usize) -> Option<VspOffer> {
        let index = u16::try_from(slot).ok()?;
        (slot <= self.subchannels as usize).then(|| VspOffer {
            subchannel_index: index,
            ..vmbus_device::offer(interface::NETWORK, self.setup.instance)
        })
    }

    /// Unused: the NIC reads its rings itself ([`Self::serve_channel`]).
    fn limits(&self) -> Limits {
        Limits {
            max_payload: 0,
            max_pages: 0,
        }
    }

    fn open(&mut self, open: &VspOpen) -> Result<(), u32> {
        if open.subchannel_index != 0 {
            return self.open_subchannel(open.relid, usize::from(open.subchannel_index));
        }
        if self.nics.len() >= MAX_CHANNELS || self.nics.contains_key(&open.relid) {
            return Err(vmbus_protocol::status::STATUS_INSUFFICIENT_RESOURCES);
        }
        self.nics
            .insert(open.relid, Nic::new(Config::new(self.setup.mac)));
        Ok(())
    }

    fn close(&mut self, relid: Relid) {
        if let Some((primary, q)) = self.queues.remove(&relid) {
            if let Some(nic) = self.nics.get_mut(&primary) {
                nic.close_queue(q);
            }
            return;
        }
        if self.nics.remove(&relid).is_some() {
            // Its sub-channels belong to the NIC that went: withdraw them.
            self.queues.retain(|_, (primary, _)| *primary != relid);
            if self.subchannels != 0 {
                self.subchannels = 0;
                self.offers_changed = true;
            }
        }
    }

    fn reply_room(&self, _: &IncomingPacket) -> Option<usize> {
        None
    }

    fn packet(&mut self, _: Request<'_>, _: &mut Vec<u8>) -> Option<Reply> {
        None
    }

    fn max_gpadl_pages(&self) -> usize {
        MAX_BUFFER_PAGES
    }

    fn serve_channel<M: RingMem>(&mut self, ch: Serving<'_, '_, M>) -> Result<Served, RingBroken> {
        let relid = ch.relid;
        let (primary, q) = self.queues.get(&relid).copied().unwrap_or((relid, 0));
        let Some(nic) = self.nics.get_mut(&primary) else {
            return Ok(Served::default());
        };
        let mem = self.mem;
        let read = |pfn, offset, buf: &mut [u8]| Self::read_page(&mem, pfn, offset, buf);
        let gpadls = ch.gpadls;
        // The buffers are the primary's GPADLs, whichever channel names them.
        let mut lookup = |id| Self::buffer(&mem, gpadls, primary, id);
        let served = ring::serve_queue(
            nic,
            q,
            ch.rings.rings(),
            &read,
            &mut lookup,
            self.setup.backend.as_mut(),
            &mut self.bufs,
        )
        .map_err(broken)?;
        self.more_work |= nic.take_woken() != 0;
        let granted = nic.subchannels().unwrap_or(0);
        if q == 0 && granted != self.subchannels {
            self.subchannels = granted;
            self.offers_changed = true;
        }
        self.frames_to_guest += served.frames_to_guest as u64;
        wake_peer(
            &mut *self.setup.backend,
            self.setup.backend_channel,
            ch.kernel,
        );
        Ok(Served {
            packets: served.packets,
            dropped: 0,
            signal: served.signal,
        })
    }

    fn owns_notification(&self, ch: Channel) -> bool {
        self.setup.backend_channel == Some(ch)
    }

    fn take_offers_changed(&mut self) -> bool {
        core::mem::take(&mut self.offers_changed)
    }

    fn take_more_work(&mut self) -> bool {
        core::mem::take(&mut self.more_work)
    }
}

/// Tells the backend's peer that frames wait for it, if the backend asks.
fn wake_peer(backend: &mut dyn Backend, channel: Option<Channel>, kernel: &mut dyn Kernel) {
    if let Some(ch) = channel {
        if backend.take_wakeup() {
            // A peer that is gone loses the frames it would have read; the NIC
            // serves on.
            let _ = ch.notify(kernel);
        }
    }
}
