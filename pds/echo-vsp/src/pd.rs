//! The echo VSP as an `ipc` protection domain.
//!
//! vmbus-server calls it with the VSP contract: GET_OFFER (one offer, slot 0),
//! MAP_GPADL (page list in the GPADL window), OPEN (attach both rings, claim the
//! channel's signal connection at hvcall-pd), CLOSE, MODIFY. The guest's
//! HvSignalEvent on that connection arrives as a notification from hvcall-pd; the PD
//! then drains every open channel, echoing in-band packets, and interrupts the guest
//! through synic-pd's SIGNAL_EVENT when the rings' signalling rules ask for it.
//!
//! What system.xml must grant (names in [`crate::config`]): `guest_ram` (rw) at
//! variable `guest_ram_gpa`, optionally `guest_shared` (rw) at `guest_shared_gpa`,
//! `gpadl_window` (r), and the three channel variables.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hvcall_pd::api::{register_connection, unregister_connection, RegisterStatus};
use hvcall_pd::api::{Registration, RouteKind};
use hvdef::Vtl;
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, Init, InitError, InitExt, Kernel, MessageInfo,
    MessageRegisters, Perms, Region,
};
use synic_pd::{Instance, SintTarget};
use vmbus_protocol::gpa;
use vmbus_protocol::status::{
    STATUS_DEVICE_NOT_CONNECTED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
};
use vmbus_protocol::{GpadlId, Guid, OfferFlags, Relid};
use vmbus_ring::{
    GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing,
    ReadError, WriteError,
};
use vmbus_server::vsp::{self, MapGpadl, VspOffer, VspOpen, VspRequest, REPLY_NONE, REPLY_OK};
use vmbus_server::Confidentiality;

use crate::config;
use crate::memory::{GuestWindows, RingPlacement};

/// The interface this VSP offers. Not a Hyper-V device class: no guest driver
/// binds to it by accident.
pub const INTERFACE_ID: Guid = Guid::from_fields(
    0xec40_0000,
    0x7673,
    0x7000,
    [0x65, 0x63, 0x68, 0x6f, 0, 0, 0, 1],
);
pub const INSTANCE_ID: Guid = Guid::from_fields(
    0xec40_0001,
    0x7673,
    0x7000,
    [0x65, 0x63, 0x68, 0x6f, 0, 0, 0, 1],
);

/// GPADLs held at once, and pages per GPADL: a guest cannot make this PD hold more.
pub const MAX_GPADLS: usize = 16;
pub const MAX_GPADL_PAGES: usize = 256;
/// Log lines before the PD starts thinning out guest-caused noise.
const LOG_BURST: u32 = 64;

type Ring = GpadlRingMem<'static, Vec<u64>>;

struct Gpadl {
    pfns: Vec<u64>,
    confidentiality: Confidentiality,
}

struct OpenChannel {
    ring_gpadl: GpadlId,
    inbound: IncomingRing<Ring>,
    outbound: OutgoingRing<Ring>,
    target: SintTarget,
    event_flag: u32,
    signal_connection_id: u32,
    /// A packet waits for room in the outbound ring.
    stalled: bool,
    echoed: u64,
}

/// What one drain of a channel came to.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Drained {
    echoed: u64,
    signal: bool,
}

pub struct EchoVsp {
    mem: GuestWindows,
    window: Region<'static>,
    vmbus: Channel,
    hvcall: Channel,
    synic: Channel,
    gpadls: BTreeMap<(Relid, GpadlId), Gpadl>,
    channels: BTreeMap<Relid, OpenChannel>,
    scratch: Vec<u8>,
    logged: u32,
    /// Packets echoed over the PD's life.
    pub echoed: u64,
    /// Channels dropped because their ring broke the protocol.
    pub broken_rings: u64,
}

impl fmt::Debug for EchoVsp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EchoVsp")
            .field("gpadls", &self.gpadls.len())
            .field("open", &self.channels.keys().collect::<Vec<_>>())
            .field("echoed", &self.echoed)
            .field("broken_rings", &self.broken_rings)
            .finish_non_exhaustive()
    }
}

/// The offer in slot 0. Confidential external memory is fine: the PD reads guest
/// memory through its own mapping whichever kind it is.
pub fn offer() -> VspOffer {
    VspOffer {
        interface_id: INTERFACE_ID,
        instance_id: INSTANCE_ID,
        subchannel_index: 0,
        flags: OfferFlags::EMPTY,
        mmio_megabytes: 0,
        mmio_megabytes_optional: 0,
        confidential_external_memory: true,
        user_defined: [0; 120],
    }
}

impl EchoVsp {
    pub fn init(init: &dyn Init) -> Result<Self, InitError> {
        let ram = init.region_with(config::GUEST_RAM, Perms::RW)?;
        let ram_gpa = init.variable(config::GUEST_RAM_GPA)?;
        let shared = match init.optional(init.region_with(config::GUEST_SHARED, Perms::RW))? {
            Some(region) => Some((init.variable(config::GUEST_SHARED_GPA)?, region)),
            None => None,
        };
        let mem = GuestWindows::new(ram_gpa, ram, shared).ok_or(InitError::InvalidVariable {
            name: config::GUEST_RAM_GPA,
            value: ram_gpa,
        })?;
        Ok(Self {
            mem,
            window: init.region_with(config::GPADL_WINDOW, Perms::R)?,
            vmbus: init.channel(config::VMBUS_CHANNEL)?,
            hvcall: init.channel(config::HVCALL_CHANNEL)?,
            synic: init.channel(config::SYNIC_CHANNEL)?,
            gpadls: BTreeMap::new(),
            channels: BTreeMap::new(),
            scratch: Vec::new(),
            logged: 0,
            echoed: 0,
            broken_rings: 0,
        })
    }

    /// Tells vmbus-server the offer is there (it asks with GET_OFFER). Call once
    /// after `init`; vmbus-server also asks on its own when it starts.
    pub fn announce(&self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        self.vmbus.notify(kernel)?;
        Ok(())
    }

    pub fn open_channels(&self) -> impl Iterator<Item = Relid> + '_ {
        self.channels.keys().copied()
    }

    pub fn gpadl_count(&self) -> usize {
        self.gpadls.len()
    }

    fn log(&mut self, kernel: &mut dyn Kernel, args: fmt::Arguments<'_>) {
        self.logged = self.logged.saturating_add(1);
        // A guest can make every packet an error: keep a burst, then one in 1024.
        if self.logged <= LOG_BURST || self.logged.is_multiple_of(1024) {
            kernel.debug_puts(&format!("echo_vsp: {args}\n"));
        }
    }

    fn map_gpadl(&mut self, m: &MapGpadl) -> u32 {
        if self.gpadls.contains_key(&(m.relid, m.gpadl)) {
            return STATUS_INVALID_PARAMETER;
        }
        if self.gpadls.len() >= MAX_GPADLS {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        let words = m.words as usize;
        if words > self.window.len() / 8 || words > MAX_GPADL_PAGES + usize::from(m.range_count) {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        let mut list = vec![0u64; words];
        if vsp::read_window(&self.window, &mut list).is_err() {
            return STATUS_INVALID_PARAMETER;
        }
        // vmbus-server validated the list before writing it, but the window is its
        // memory: check again what this PD will act on.
        let Ok(ranges) = gpa::validate(&list, m.range_count.into()) else {
            return STATUS_INVALID_PARAMETER;
        };
        let pfns: Vec<u64> = ranges.pfns().collect();
        if pfns.len() > MAX_GPADL_PAGES {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        self.gpadls.insert(
            (m.relid, m.gpadl),
            Gpadl {
                pfns,
                confidentiality: m.confidentiality,
            },
        );
        STATUS_SUCCESS
    }

    fn unmap_gpadl(&mut self, kernel: &mut dyn Kernel, relid: Relid, gpadl: GpadlId) {
        // The pages are no longer ours to touch: a channel still using them as its
        // ring stops here.
        if self
            .channels
            .get(&relid)
            .is_some_and(|c| c.ring_gpadl == gpadl)
        {
            self.close(kernel, relid);
            self.log(
                kernel,
                format_args!("relid {}: ring GPADL torn down while open; closed", relid.0),
            );
        }
        self.gpadls.remove(&(relid, gpadl));
    }

    /// Attaches both rings of an OPEN. The guest-to-host ring comes first.
    fn attach(&self, o: &VspOpen) -> Result<(OpenChannel, RingPlacement), u32> {
        let gpadl = self
            .gpadls
            .get(&(o.relid, o.ring_gpadl))
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let split = o.downstream_page_offset as usize;
        if split < 2 || gpadl.pfns.len().saturating_sub(split) < 2 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let (placement, region, pages) = self
            .mem
            .place(&gpadl.pfns)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        // A ring the connection keeps confidential must not be one the host can read.
        if (o.confidentiality.ring || gpadl.confidentiality.ring)
            && placement != RingPlacement::Private
        {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let (up, down) = pages.split_at(split);
        let ring = |pages: &[u64]| GpadlRingMem::new(region, pages.to_vec());
        let inbound = ring(up)
            .ok()
            .and_then(|m| IncomingRing::new(m).ok())
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let outbound = ring(down)
            .ok()
            .and_then(|m| OutgoingRing::new(m).ok())
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let target = SintTarget {
            vp: o.target_vp,
            instance: if o.paravisor_synic {
                Instance::PARAVISOR
            } else {
                Instance::HYPERVISOR
            },
            sint: o.target_sint,
        };
        Ok((
            OpenChannel {
                ring_gpadl: o.ring_gpadl,
                inbound,
                outbound,
                target,
                event_flag: o.event_flag,
                signal_connection_id: o.signal_connection_id,
                stalled: false,
                echoed: 0,
            },
            placement,
        ))
    }

    fn open(&mut self, kernel: &mut dyn Kernel, o: &VspOpen) -> u32 {
        if self.channels.contains_key(&o.relid) {
            return STATUS_INVALID_PARAMETER;
        }
        let (channel, placement) = match self.attach(o) {
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
        match register_connection(kernel, self.hvcall, &reg) {
            Ok(Some(RegisterStatus::Ok)) => {}
            Ok(other) => {
                self.log(
                    kernel,
                    format_args!(
                        "relid {}: hvcall-pd refused connection {:#x}: {other:?}",
                        o.relid.0, o.signal_connection_id
                    ),
                );
                return STATUS_UNSUCCESSFUL;
            }
            Err(_) => return STATUS_DEVICE_NOT_CONNECTED,
        }
        self.log(
            kernel,
            format_args!(
                "relid {} open: {} ring in {} memory, interrupts via the {} SynIC (vp {}, sint {}, flag {})",
                o.relid.0,
                if o.confidentiality.ring { "confidential" } else { "non-confidential" },
                match placement {
                    RingPlacement::Private => "private",
                    RingPlacement::Shared => "shared",
                },
                if o.paravisor_synic { "paravisor" } else { "hypervisor-relay" },
                o.target_vp,
                o.target_sint,
                o.event_flag,
            ),
        );
        self.channels.insert(o.relid, channel);
        STATUS_SUCCESS
    }

    fn close(&mut self, kernel: &mut dyn Kernel, relid: Relid) {
        let Some(channel) = self.channels.remove(&relid) else {
            return;
        };
        // hvcall-pd may be gone too; the channel is closed either way.
        let _ = unregister_connection(kernel, self.hvcall, channel.signal_connection_id, Vtl::VTL0);
        self.log(
            kernel,
            format_args!(
                "relid {} closed after {} packets echoed",
                relid.0, channel.echoed
            ),
        );
    }

    fn handle(
        &mut self,
        kernel: &mut dyn Kernel,
        req: VspRequest,
        mrs: &mut MessageRegisters,
    ) -> MessageInfo {
        match req {
            VspRequest::GetOffer { slot: 0 } => offer().encode(mrs),
            VspRequest::GetOffer { .. } => MessageInfo::new(REPLY_NONE, 0),
            VspRequest::MapGpadl(m) => {
                let status = self.map_gpadl(&m);
                vsp::status_reply(mrs, status)
            }
            VspRequest::UnmapGpadl { relid, gpadl } => {
                self.unmap_gpadl(kernel, relid, gpadl);
                MessageInfo::new(REPLY_OK, 0)
            }
            VspRequest::Open(o) => {
                let status = self.open(kernel, &o);
                vsp::status_reply(mrs, status)
            }
            VspRequest::Close { relid } => {
                self.close(kernel, relid);
                MessageInfo::new(REPLY_OK, 0)
            }
            VspRequest::Modify { relid, target_vp } => {
                let status = match self.channels.get_mut(&relid) {
                    Some(c) => {
                        c.target.vp = target_vp;
                        STATUS_SUCCESS
                    }
                    None => STATUS_INVALID_PARAMETER,
                };
                vsp::status_reply(mrs, status)
            }
        }
    }

    /// Serves every open channel; a broken one is dropped.
    fn drain_all(&mut self, kernel: &mut dyn Kernel) {
        let relids: Vec<Relid> = self.channels.keys().copied().collect();
        for relid in relids {
            let Some(channel) = self.channels.get_mut(&relid) else {
                continue;
            };
            match drain(channel, &mut self.scratch) {
                Ok(d) => {
                    channel.echoed += d.echoed;
                    self.echoed += d.echoed;
                    if d.signal {
                        let (target, flag) = (channel.target, channel.event_flag);
                        match synic_pd::api::signal_event(kernel, self.synic, target, flag) {
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
                    self.broken_rings += 1;
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

/// Why a channel had to be dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum DrainError {
    Read(ReadError),
    Write(WriteError),
}

impl fmt::Display for DrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "guest-to-host: {e}"),
            Self::Write(e) => write!(f, "host-to-guest: {e}"),
        }
    }
}

/// Echoes what the guest sent until its ring is empty or ours is full, then
/// publishes both indices. The re-check after committing closes the window in which
/// the guest wrote without signalling because it saw the ring not yet drained.
fn drain(c: &mut OpenChannel, scratch: &mut Vec<u8>) -> Result<Drained, DrainError> {
    let mut done = Drained::default();
    loop {
        loop {
            let packet = match c.inbound.peek() {
                Ok(p) => p,
                Err(ReadError::Empty) => break,
                Err(e) => return Err(DrainError::Read(e)),
            };
            if packet.kind != IncomingKind::InBand {
                // Nothing to echo for completions or packets naming guest memory.
                c.inbound.consume().map_err(DrainError::Read)?;
                continue;
            }
            scratch.resize(packet.payload.len(), 0);
            c.inbound
                .copy_from(&packet.payload, 0, scratch)
                .map_err(|e| DrainError::Read(ReadError::Corrupt(e)))?;
            let reply = OutgoingPacket {
                transaction_id: packet.transaction_id,
                completion_requested: false,
                kind: OutgoingKind::InBand,
            };
            match c.outbound.write_packet(&reply, &[scratch]) {
                Ok(()) => {
                    if c.stalled {
                        c.outbound.clear_pending_send_size();
                        c.stalled = false;
                    }
                    c.inbound.consume().map_err(DrainError::Read)?;
                    done.echoed += 1;
                }
                Err(WriteError::Full { needed }) => {
                    // Wait for the guest to read; it signals once `needed` is free.
                    let room_now = c
                        .outbound
                        .set_pending_send_size(needed)
                        .map_err(DrainError::Write)?;
                    c.stalled = true;
                    if !room_now {
                        break;
                    }
                }
                // Larger than our ring can ever carry back: drop it, keep serving.
                Err(WriteError::Invalid(_)) => c.inbound.consume().map_err(DrainError::Read)?,
                Err(e) => return Err(DrainError::Write(e)),
            }
        }
        done.signal |= c
            .outbound
            .commit()
            .map_err(|e| DrainError::Write(WriteError::Corrupt(e)))?;
        done.signal |= c
            .inbound
            .commit()
            .map_err(|e| DrainError::Read(ReadError::Corrupt(e)))?;
        if c.stalled
            || c.inbound
                .is_empty()
                .map_err(|e| DrainError::Read(ReadError::Corrupt(e)))?
        {
            return Ok(done);
        }
    }
}

impl Handler for EchoVsp {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        for ch in channels.iter() {
            if ch != self.hvcall {
                return Err(HandlerError::UnexpectedNotification(ch));
            }
        }
        // The guest signalled one of our channels (the connection does not say
        // which), or made room in an outbound ring: serve them all.
        self.drain_all(kernel);
        Ok(())
    }

    fn protected(
        &mut self,
        kernel: &mut dyn Kernel,
        ch: Channel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        if ch != self.vmbus {
            return Err(HandlerError::UnexpectedCall(ch));
        }
        let req = VspRequest::decode(msg, mrs).map_err(|_| HandlerError::BadRequest {
            channel: ch,
            label: msg.label(),
        })?;
        Ok(self.handle(kernel, req, mrs))
    }
}
