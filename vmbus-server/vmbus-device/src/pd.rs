//! A VSP as an `ipc` protection domain: vmbus-server's calls in, the guest's
//! signals in, interrupts out, and every open channel's rings in between.
//!
//! What system.xml must grant (the `setvar_vaddr` / `setvar` names in [`names`]):
//! guest RAM (rw) and where it sits, optionally its host-visible alias, the
//! GPADL window vmbus-server writes (r), and the channels to vmbus-server (it
//! calls us), hvcall-pd (we call it; it notifies us of guest signals) and
//! synic-pd (we call it to interrupt the guest).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Bound::{Excluded, Unbounded};

use hvcall_api::{
    register_connection, unregister_connection, RegisterStatus, Registration, RouteKind,
};
use hvdef::Vtl;
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, HandlerReply, Init, InitError, InitExt, Kernel,
    MessageInfo, MessageRegisters, Perms, PpCall, Region,
};
use isolation::{GpaClass, GuestMemory};
use synic_api::{Instance, SintTarget};
use vmbus_protocol::status::{
    STATUS_DEVICE_NOT_CONNECTED, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
};
use vmbus_protocol::{GpadlId, Relid};
use vmbus_ring::GpadlRingMem;
use vsp_api::{self as vsp, VspOpen, VspRequest, REPLY_NONE, REPLY_OK};

use crate::device::VmbusDevice;
use crate::gpadl::GpadlTable;
use crate::packet::PacketBuf;
use crate::stream::Serving;
use crate::transport::RingTransport;

/// The names a VSP's grants carry in system.xml.
pub mod names {
    /// Guest RAM (rw): private memory, where confidential rings live; the
    /// host-visible alias (rw, optional): where a guest without Confidential VMBus
    /// keeps its rings.
    pub use ipc::guest_names::*;
    /// vmbus-server's GPADL window for this VSP (r).
    pub const GPADL_WINDOW: &str = "gpadl_window";
    pub const VMBUS_CHANNEL: &str = "vmbus_channel";
    pub const HVCALL_CHANNEL: &str = "hvcall_channel";
    pub const SYNIC_CHANNEL: &str = "synic_channel";

    /// The variable table of a VSP image that maps guest RAM and its shared alias:
    /// its three channel ids (vmbus-server, hvcall-pd, synic-pd) and the two GPAs
    /// the system descriptions decide, under the names `init` reads.
    pub const fn vsp_variables(
        vmbus: ipc::Channel,
        hvcall: ipc::Channel,
        synic: ipc::Channel,
    ) -> [(&'static str, u64); 5] {
        [
            (VMBUS_CHANNEL, vmbus.index() as u64),
            (HVCALL_CHANNEL, hvcall.index() as u64),
            (SYNIC_CHANNEL, synic.index() as u64),
            (GUEST_RAM_GPA, system_constants::GUEST_RAM_GPA),
            (GUEST_SHARED_GPA, system_constants::GUEST_SHARED_GPA),
        ]
    }
}

/// Log lines before the layer starts thinning out guest-caused noise.
const LOG_BURST: u32 = 64;
/// Passes over the open channels one wake-up may take when serving one leaves
/// work for another; what is left waits for the next signal.
const MAX_PASSES: usize = 4;

type Ring<'a> = GpadlRingMem<'a, Vec<u64>>;

/// The channels a VSP PD uses.
#[derive(Copy, Clone, Debug)]
pub struct Channels {
    pub vmbus: Channel,
    pub hvcall: Channel,
    pub synic: Channel,
}

/// Counters over the PD's life.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    /// Packets dropped because their reply could never fit the ring.
    pub dropped: u64,
    /// Channels torn down because their ring broke the protocol.
    pub broken_rings: u64,
}

struct OpenChannel<'a> {
    ring_gpadl: GpadlId,
    rings: RingTransport<Ring<'a>>,
    target: SintTarget,
    event_flag: u32,
    signal_connection_id: u32,
    class: GpaClass,
    /// Packets served on it.
    packets: u64,
}

/// A VSP PD: device `D` behind the one VMBus device layer.
pub struct VspPd<'a, D> {
    device: D,
    mem: GuestMemory<'a>,
    window: Region<'a>,
    channels: Channels,
    gpadls: GpadlTable,
    open: BTreeMap<Relid, OpenChannel<'a>>,
    buf: PacketBuf,
    reply: Vec<u8>,
    logged: u32,
    pub stats: Stats,
}

impl<D: fmt::Debug> fmt::Debug for VspPd<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VspPd")
            .field("device", &self.device)
            .field("gpadls", &self.gpadls.len())
            .field("open", &self.open.keys().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<D: VmbusDevice> VspPd<'static, D> {
    /// Builds the PD from what system.xml granted (names in [`names`]).
    pub fn init(init: &dyn Init, device: D) -> Result<Self, InitError> {
        Self::init_with(init, |_| Ok(device))
    }

    /// The same, for a device built from the guest memory the PD maps (a NIC keeps
    /// views of its buffers across calls) and its own grants.
    pub fn init_with(
        init: &dyn Init,
        device: impl FnOnce(&GuestMemory<'static>) -> Result<D, InitError>,
    ) -> Result<Self, InitError> {
        let windows = init.guest_windows()?;
        let ram = windows.ram;
        let mut mem = GuestMemory::private(ram.gpa, ram.region).map_err(|_| ram.refused())?;
        if let Some(shared) = windows.shared {
            mem.add(shared.gpa, shared.region, GpaClass::Shared)
                .map_err(|_| shared.refused())?;
        }
        let channels = Channels {
            vmbus: init.channel(names::VMBUS_CHANNEL)?,
            hvcall: init.channel(names::HVCALL_CHANNEL)?,
            synic: init.channel(names::SYNIC_CHANNEL)?,
        };
        let window = init.region_with(names::GPADL_WINDOW, Perms::R)?;
        let device = device(&mem)?;
        Ok(Self::new(mem, window, channels, device))
    }
}

impl<'a, D: VmbusDevice> VspPd<'a, D> {
    pub fn new(mem: GuestMemory<'a>, window: Region<'a>, channels: Channels, device: D) -> Self {
        let buf = PacketBuf::new(device.limits());
        let gpadls = GpadlTable::with_page_limit(device.max_gpadl_pages());
        Self {
            device,
            mem,
            window,
            channels,
            gpadls,
            open: BTreeMap::new(),
            buf,
            reply: Vec::new(),
            logged: 0,
            stats: Stats::default(),
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Tells vmbus-server the offers are there (it asks with GET_OFFER); for a PD
    /// that may start after vmbus-server asked.
    pub fn announce(&self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        self.channels.vmbus.notify(kernel)?;
        Ok(())
    }

    pub fn open_channels(&self) -> impl Iterator<Item = Relid> + '_ {
        self.open.keys().copied()
    }

    pub fn gpadl_count(&self) -> usize {
        self.gpadls.len()
    }

    fn log(&mut self, kernel: &mut dyn Kernel, args: fmt::Arguments<'_>) {
        self.logged = self.logged.saturating_add(1);
        // A guest can make every packet an error: keep a burst, then one in 1024.
        if self.logged <= LOG_BURST || self.logged.is_multiple_of(1024) {
            kernel.debug_puts(&format!("{}: {args}\n", D::NAME));
        }
    }

    fn unmap_gpadl(&mut self, kernel: &mut dyn Kernel, relid: Relid, gpadl: GpadlId) {
        // The pages are no longer ours to touch: a channel still using them as its
        // ring stops here.
        if self.open.get(&relid).is_some_and(|c| c.ring_gpadl == gpadl) {
            self.close(kernel, relid);
            self.log(
                kernel,
                format_args!("relid {}: ring GPADL torn down while open; closed", relid.0),
            );
        }
        self.gpadls.remove(relid, gpadl);
    }

    /// Attaches both rings of an OPEN; the guest-to-host ring comes first.
    fn attach(&self, o: &VspOpen) -> Result<OpenChannel<'a>, u32> {
        let gpadl = self
            .gpadls
            .get(o.relid, o.ring_gpadl)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let split = o.downstream_page_offset as usize;
        if !gpadl.whole_pages || split < 2 || gpadl.pfns.len().saturating_sub(split) < 2 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let placed = self
            .mem
            .place(&gpadl.pfns)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        // A ring the connection keeps confidential must not be one the host can read.
        if (o.confidentiality.ring || gpadl.confidentiality.ring)
            && placed.class != GpaClass::Private
        {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let pages: Vec<u64> = gpadl.pfns.iter().map(|&p| placed.page_index(p)).collect();
        let (up, down) = pages.split_at(split);
        let ring = |pages: &[u64]| GpadlRingMem::new(placed.region, pages.to_vec()).ok();
        let rings = ring(up)
            .zip(ring(down))
            .and_then(|(up, down)| RingTransport::new(up, down).ok())
            .ok_or(STATUS_INVALID_PARAMETER)?;
        Ok(OpenChannel {
            ring_gpadl: o.ring_gpadl,
            rings,
            target: SintTarget {
                vp: o.target_vp,
                instance: if o.paravisor_synic {
                    Instance::PARAVISOR
                } else {
                    Instance::HYPERVISOR
                },
                sint: o.target_sint,
            },
            event_flag: o.event_flag,
            signal_connection_id: o.signal_connection_id,
            class: placed.class,
            packets: 0,
        })
    }

    fn open(&mut self, kernel: &mut dyn Kernel, o: &VspOpen) -> u32 {
        if self.open.contains_key(&o.relid) {
            return STATUS_INVALID_PARAMETER;
        }
        let channel = match self.attach(o).and_then(|c| self.device.open(o).map(|()| c)) {
            Ok(c) => c,
            Err(status) => {
                self.log(
                    kernel,
                    format_args!("relid {}: open refused ({status:#x})", o.relid.0),
                );
                return status;
            }
        };
        // The guest signals the channel through hvcall-pd from now on.
        let reg = Registration {
            connection_id: o.signal_connection_id,
            vtl: Vtl::VTL0,
            kind: RouteKind::Service,
        };
        let refused = match register_connection(kernel, self.channels.hvcall, &reg) {
            Ok(Some(RegisterStatus::Ok)) => None,
            Ok(other) => {
                self.log(
                    kernel,
                    format_args!(
                        "relid {}: hvcall-pd refused connection {:#x}: {other:?}",
                        o.relid.0, o.signal_connection_id
                    ),
                );
                Some(STATUS_UNSUCCESSFUL)
            }
            Err(_) => Some(STATUS_DEVICE_NOT_CONNECTED),
        };
        if let Some(status) = refused {
            self.device.close(o.relid);
            return status;
        }
        self.log(
            kernel,
            format_args!(
                "relid {} open: {} ring in {} memory, interrupts via the {} SynIC (vp {}, sint {}, flag {})",
                o.relid.0,
                if o.confidentiality.ring { "confidential" } else { "non-confidential" },
                match channel.class {
                    GpaClass::Private => "private",
                    GpaClass::Shared => "shared",
                },
                if o.paravisor_synic { "paravisor" } else { "hypervisor-relay" },
                o.target_vp,
                o.target_sint,
                o.event_flag,
            ),
        );
        self.open.insert(o.relid, channel);
        STATUS_SUCCESS
    }

    fn close(&mut self, kernel: &mut dyn Kernel, relid: Relid) {
        let Some(channel) = self.open.remove(&relid) else {
            return;
        };
        // hvcall-pd may be gone too; the channel is closed either way.
        let _ = unregister_connection(
            kernel,
            self.channels.hvcall,
            channel.signal_connection_id,
            Vtl::VTL0,
        );
        self.device.close(relid);
        self.log(
            kernel,
            format_args!("relid {} closed after {} packets", relid.0, channel.packets),
        );
    }

    /// Answers one call from vmbus-server.
    pub fn vsp_call(
        &mut self,
        kernel: &mut dyn Kernel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        let request = VspRequest::decode(msg, mrs).map_err(|_| HandlerError::BadRequest {
            channel: self.channels.vmbus,
            label: msg.label(),
        })?;
        let status = match request {
            VspRequest::GetOffer { slot } => {
                return Ok(match self.device.offer(slot) {
                    Some(offer) => offer.encode(mrs),
                    None => MessageInfo::new(REPLY_NONE, 0),
                })
            }
            VspRequest::MapGpadl(m) => self.gpadls.map(&self.window, &m),
            VspRequest::UnmapGpadl { relid, gpadl } => {
                self.unmap_gpadl(kernel, relid, gpadl);
                return Ok(MessageInfo::new(REPLY_OK, 0));
            }
            VspRequest::Open(o) => self.open(kernel, &o),
            VspRequest::Close { relid } => {
                self.close(kernel, relid);
                self.announce_changes(kernel);
                return Ok(MessageInfo::new(REPLY_OK, 0));
            }
            VspRequest::Modify { relid, target_vp } => match self.open.get_mut(&relid) {
                Some(c) => {
                    c.target.vp = target_vp;
                    STATUS_SUCCESS
                }
                None => STATUS_INVALID_PARAMETER,
            },
        };
        Ok(vsp::status_reply(mrs, status))
    }

    /// Tells vmbus-server when the device's offers changed (it asks again).
    fn announce_changes(&mut self, kernel: &mut dyn Kernel) {
        if self.device.take_offers_changed() && self.announce(kernel).is_err() {
            self.log(
                kernel,
                format_args!("telling vmbus-server of new offers failed"),
            );
        }
    }

    /// [`Self::serve_all`] with the rings' interrupts kept masked (`keep`: the
    /// runtime polls) or re-armed; whether any packet was served.
    fn serve_masked(&mut self, kernel: &mut dyn Kernel, keep: bool) -> bool {
        for c in self.open.values_mut() {
            c.rings.keep_masked(keep);
        }
        let before = self.stats.packets + self.stats.dropped;
        self.serve_all(kernel);
        self.stats.packets + self.stats.dropped != before
    }

    /// Serves every open channel and interrupts the guest where the rings say so;
    /// a channel whose ring broke is closed. Serving one channel may leave work
    /// for another (the device says so): then they are all served again, a few
    /// times at most.
    pub fn serve_all(&mut self, kernel: &mut dyn Kernel) {
        for _ in 0..MAX_PASSES {
            self.serve_pass(kernel);
            if !self.device.take_more_work() {
                break;
            }
        }
        self.announce_changes(kernel);
    }

    fn serve_pass(&mut self, kernel: &mut dyn Kernel) {
        // Channel by channel from the map itself, not a collected copy of its
        // keys: a polling runtime passes here every poll, and an allocation each
        // time was a fair share of an idle poll. Only the channel being served
        // can close on the way, so each step looks up the first channel past the
        // last one served.
        let mut from = Unbounded;
        while let Some((&relid, c)) = self.open.range_mut((from, Unbounded)).next() {
            from = Excluded(relid);
            let result = self.device.serve_channel(Serving {
                relid,
                rings: &mut c.rings,
                mem: &self.mem,
                gpadls: &self.gpadls,
                buf: &mut self.buf,
                reply: &mut self.reply,
                kernel: &mut *kernel,
            });
            let (target, flag) = (c.target, c.event_flag);
            match result {
                Ok(done) => {
                    c.packets += done.packets as u64;
                    self.stats.packets += done.packets as u64;
                    self.stats.dropped += done.dropped as u64;
                    if done.signal {
                        // A full SynIC queue only delays the guest; it polls on its
                        // next interrupt anyway.
                        match synic_api::signal_event(kernel, self.channels.synic, target, flag) {
                            Ok(Ok(_)) => {}
                            other => self.log(
                                kernel,
                                format_args!(
                                    "relid {}: interrupting the guest failed: {other:?}",
                                    relid.0
                                ),
                            ),
                        }
                    }
                }
                Err(e) => {
                    // A ring that lied cannot be used again: the guest sees a device
                    // that failed. Closing it as CLOSE does gives the signal
                    // connection back, so the dead channel's doorbells stop waking
                    // us and the id can be routed again on reopen.
                    self.stats.broken_rings += 1;
                    self.log(
                        kernel,
                        format_args!("relid {}: ring broken ({e}); channel dropped", relid.0),
                    );
                    self.close(kernel, relid);
                }
            }
        }
    }
}

impl<D: VmbusDevice> Handler for VspPd<'_, D> {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        channels.only_from(|ch| {
            ch == self.channels.hvcall
                || ch == self.channels.vmbus
                || self.device.owns_notification(ch)
        })?;
        // The guest signalled one of our channels (the connection does not say
        // which), made room in an outgoing ring, or the device's backend has
        // work: serve them all.
        self.serve_all(kernel);
        Ok(())
    }

    /// Serves what the guest queued without signalling: the rings stay masked
    /// while the runtime polls, so a guest that keeps us busy never signals.
    fn poll(&mut self, kernel: &mut dyn Kernel) -> Result<bool, HandlerError> {
        Ok(self.serve_masked(kernel, true))
    }

    /// Unmasks every ring and serves what came before the guest saw that.
    fn park(&mut self, kernel: &mut dyn Kernel) -> Result<bool, HandlerError> {
        Ok(self.serve_masked(kernel, false))
    }

    fn protected(&mut self, kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        if call.ch != self.channels.vmbus {
            return Err(call.unexpected());
        }
        self.vsp_call(kernel, call.msg, call.mrs)
    }
}
