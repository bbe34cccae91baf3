//! vmbus-server as an `ipc` protection domain.
//!
//! Guest channel messages reach it through hvcall-pd: it registers the two VMBus
//! message connections (1 and 4) as service routes, and hvcall-pd queues each
//! HvPostMessage to them in [`SERVICE_QUEUE`] and notifies. Replies go out as
//! synic-pd POST_MESSAGE calls. VSP PDs are called with the [`crate::vsp`] contract.
//!
//! What system.xml must grant (the `setvar_vaddr`/`setvar` names):
//! - region [`SERVICE_QUEUE`] (rw): hvcall-pd's `service<i>_queue` for this PD, an
//!   `ipc::queue` of `ServiceMessage` with `SERVICE_QUEUE_CAPACITY` entries;
//! - [`HVCALL_CHANNEL`] (pp to hvcall-pd, which also notifies on it) and
//!   [`SYNIC_CHANNEL`] (pp to synic-pd, with delivery rights to both instances; it
//!   notifies when a SINT queue that refused an answer has room again, without
//!   which an answer held back waits for the guest's next message);
//! - variables [`VP_COUNT`], [`GUEST_RAM_GPA`], [`GUEST_RAM_SIZE`] (the RAM GPADLs
//!   may name), [`CONFIDENTIAL_VMBUS`] (0/1), optionally [`GUEST_SHARED_GPA`] and
//!   [`GUEST_SHARED_SIZE`] (the host-visible alias GPADLs may name too: where a guest
//!   without Confidential VMBus keeps its rings), [`MAX_VERSION`] and
//!   [`FIRST_DYNAMIC_RELID`];
//! - per VSP `i` (up to [`MAX_VSPS`]): variable `vsp<i>_channel` (pp to the VSP, which
//!   notifies on it when its offers change) and region `vsp<i>_gpadl` (rw here, r for
//!   the VSP): the GPADL window.

use alloc::collections::BTreeMap;
use alloc::format;
use core::fmt;

use hvcall_api::{
    ConnectionGrant, RegisterStatus, Registration, RouteKind, ServiceMessage,
    SERVICE_QUEUE_CAPACITY,
};
use hvdef::message::{HvMessage, HvMessageType};
use hvdef::{HvStatus, Vtl};
use ipc::{
    Channel, ChannelSet, Consumer, Handler, HandlerError, Init, InitError, InitExt, Kernel,
    MessageRegisters, Perms, Region,
};
use synic_api::{GrantStatus, Instance, SintTarget};
use vmbus_protocol::status::*;
use vmbus_protocol::{
    GpadlId, OutgoingMessage, Relid, Version, MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_4,
    PAGE_SIZE,
};

use crate::config::{Config, PfnRange};
use crate::env::{
    ConnectionInfo, GpadlMapping, Level, MessageTarget, OpenRequest, ServerEnv, Status,
};
use crate::server::{OfferParams, Server};
use vsp_api::{
    CloseChannel, GetOffer, MapGpadl, ModifyChannel, StatusReply, UnmapGpadl, VspOffer, VspOpen,
    MAX_OFFERS_PER_VSP,
};

pub const SERVICE_QUEUE: &str = "service_queue";
pub const HVCALL_CHANNEL: &str = "hvcall_channel";
pub const SYNIC_CHANNEL: &str = "synic_channel";
pub use ipc::guest_names::{GUEST_RAM_GPA, GUEST_SHARED_GPA, VP_COUNT};
pub const GUEST_RAM_SIZE: &str = "guest_ram_size";
pub const GUEST_SHARED_SIZE: &str = "guest_shared_size";
pub const CONFIDENTIAL_VMBUS: &str = "confidential_vmbus";
pub const MAX_VERSION: &str = "max_vmbus_version";
pub const FIRST_DYNAMIC_RELID: &str = "first_dynamic_relid";

pub use vsp_api::{MAX_VSPS, VSP_CHANNEL_VARS};
pub const VSP_GPADL_REGIONS: [&str; MAX_VSPS] = ipc::numbered_names!("vsp", "_gpadl", [0, 1, 2, 3]);

/// Log lines before the PD starts thinning out guest-caused noise.
const LOG_BURST: u32 = 64;

struct Vsp {
    channel: Channel,
    window: Region<'static>,
    /// The relid each offer slot holds.
    slots: [Option<Relid>; MAX_OFFERS_PER_VSP],
}

pub struct VmbusPd {
    server: Server,
    queue: Consumer<'static, ServiceMessage>,
    links: Links,
}

/// What the server's effects go through: the channels to the other PDs and what
/// this PD granted over them. Apart from the server, so the server can be driven
/// while its environment ([`PdEnv`]) borrows these.
struct Links {
    hvcall: Channel,
    synic: Channel,
    vsps: [Option<Vsp>; MAX_VSPS],
    /// Which VSP serves each relid.
    owners: BTreeMap<Relid, usize>,
    /// What each open channel's VSP was granted at hvcall-pd and synic-pd.
    grants: BTreeMap<Relid, ChannelGrant>,
    logged: u32,
}

/// An open channel's doorbell and interrupt, as granted to its VSP: hvcall-pd lets
/// only that VSP route `connection_id`, synic-pd lets only it set `flag` on `target`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct ChannelGrant {
    connection_id: u32,
    target: SintTarget,
    flag: u32,
}

fn sint_target(vp: u32, paravisor_synic: bool, sint: u8) -> SintTarget {
    SintTarget {
        vp,
        instance: if paravisor_synic {
            Instance::PARAVISOR
        } else {
            Instance::HYPERVISOR
        },
        sint,
    }
}

fn vsp_open(r: &OpenRequest<'_>) -> VspOpen {
    VspOpen {
        relid: r.relid,
        subchannel_index: r.subchannel_index,
        open_id: r.open_id,
        ring_gpadl: r.ring_gpadl,
        downstream_page_offset: r.downstream_page_offset,
        target_vp: r.target_vp,
        target_sint: r.target_sint,
        paravisor_synic: r.paravisor_synic,
        confidentiality: r.confidentiality,
        signal_connection_id: r.signal_connection_id,
        event_flag: r.event_flag,
        version: r.version,
        user_data: *r.user_data,
    }
}

impl fmt::Debug for VmbusPd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmbusPd")
            .field("connection", &self.server.connection())
            .field("channels", &self.server.channel_count())
            .field("hvcall", &self.links.hvcall)
            .field("synic", &self.links.synic)
            .finish_non_exhaustive()
    }
}

fn config_from(init: &dyn Init) -> Result<Config, InitError> {
    let invalid = |name, value| InitError::InvalidVariable { name, value };
    let vp_count = init.variable(VP_COUNT)?;
    let ram_gpa = init.variable(GUEST_RAM_GPA)?;
    let ram_size = init.variable(GUEST_RAM_SIZE)?;
    if !ram_gpa.is_multiple_of(PAGE_SIZE) {
        return Err(invalid(GUEST_RAM_GPA, ram_gpa));
    }
    let mut config = Config::new(
        u32::try_from(vp_count).map_err(|_| invalid(VP_COUNT, vp_count))?,
        alloc::vec![PfnRange {
            start: ram_gpa / PAGE_SIZE,
            count: ram_size / PAGE_SIZE,
        }],
    );
    if let Some(gpa) = init.optional(init.variable(GUEST_SHARED_GPA))? {
        let size = init.variable(GUEST_SHARED_SIZE)?;
        if !gpa.is_multiple_of(PAGE_SIZE) {
            return Err(invalid(GUEST_SHARED_GPA, gpa));
        }
        config.guest_memory.push(PfnRange {
            start: gpa / PAGE_SIZE,
            count: size / PAGE_SIZE,
        });
    }
    config.confidential = match init.variable(CONFIDENTIAL_VMBUS)? {
        0 => false,
        1 => true,
        v => return Err(invalid(CONFIDENTIAL_VMBUS, v)),
    };
    if let Some(v) = init.optional(init.variable(MAX_VERSION))? {
        config.max_version = Version(u32::try_from(v).map_err(|_| invalid(MAX_VERSION, v))?);
    }
    if let Some(v) = init.optional(init.variable(FIRST_DYNAMIC_RELID))? {
        config.first_dynamic_relid =
            u32::try_from(v).map_err(|_| invalid(FIRST_DYNAMIC_RELID, v))?;
    }
    Ok(config)
}

impl VmbusPd {
    pub fn init(init: &dyn Init) -> Result<Self, InitError> {
        let config = config_from(init)?;
        let server = Server::new(config).map_err(|_| InitError::InvalidVariable {
            name: VP_COUNT,
            value: init.variable(VP_COUNT).unwrap_or(0),
        })?;
        let queue = init.queue(SERVICE_QUEUE, SERVICE_QUEUE_CAPACITY)?;
        let mut vsps: [Option<Vsp>; MAX_VSPS] = [None, None, None, None];
        for (slot, (var, window)) in vsps
            .iter_mut()
            .zip(VSP_CHANNEL_VARS.iter().zip(VSP_GPADL_REGIONS))
        {
            let Some(channel) = init.optional(init.channel(var))? else {
                continue;
            };
            *slot = Some(Vsp {
                channel,
                window: init.region_with(window, Perms::RW)?,
                slots: [None; MAX_OFFERS_PER_VSP],
            });
        }
        Ok(Self {
            server,
            queue,
            links: Links {
                hvcall: init.channel(HVCALL_CHANNEL)?,
                synic: init.channel(SYNIC_CHANNEL)?,
                vsps,
                owners: BTreeMap::new(),
                grants: BTreeMap::new(),
                logged: 0,
            },
        })
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Claims the VMBus message connections, collects the VSPs' offers and handles
    /// anything already queued. Call once after `init`.
    pub fn start(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        for connection_id in [MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_4] {
            let reg = Registration {
                connection_id,
                vtl: Vtl::VTL0,
                kind: RouteKind::Service,
            };
            match hvcall_api::register_connection(kernel, self.links.hvcall, &reg)? {
                // Duplicate: this PD restarted and the route is still its own.
                Some(RegisterStatus::Ok | RegisterStatus::Duplicate) => {}
                _ => return Err(HandlerError::PeerMisbehaved(self.links.hvcall)),
            }
        }
        for i in 0..MAX_VSPS {
            self.refresh_offers(kernel, i);
        }
        self.drain(kernel)
    }

    /// Asks VSP `i` for its offers and brings the server in line: new slots are
    /// offered, emptied slots revoked.
    fn refresh_offers(&mut self, kernel: &mut dyn Kernel, i: usize) {
        for slot in 0..MAX_OFFERS_PER_VSP {
            let Some(vsp) = self.links.vsps[i].as_ref() else {
                return;
            };
            let channel = vsp.channel;
            let current = vsp.slots[slot];
            let mut mrs = MessageRegisters::new();
            let msg = GetOffer { slot }.encode(&mut mrs);
            let offer = channel
                .pp_call(kernel, msg, &mut mrs)
                .map_err(|_| ())
                .and_then(|reply| VspOffer::decode(reply, &mrs).map_err(|_| ()));
            let offer = match offer {
                Ok(o) => o,
                Err(()) => {
                    self.log(
                        kernel,
                        Level::Warn,
                        format_args!("vsp{i}: bad GET_OFFER reply"),
                    );
                    None
                }
            };
            match (current, offer) {
                (None, Some(o)) => {
                    let params = OfferParams::from(&o);
                    let result = self.with_env(kernel, |server, env| server.offer(env, params));
                    match result {
                        Ok(relid) => {
                            self.links.owners.insert(relid, i);
                            if let Some(v) = self.links.vsps[i].as_mut() {
                                v.slots[slot] = Some(relid);
                            }
                        }
                        Err(e) => self.log(
                            kernel,
                            Level::Warn,
                            format_args!("vsp{i}: offer refused: {e}"),
                        ),
                    }
                }
                (Some(relid), None) => {
                    let _ = self.with_env(kernel, |server, env| server.revoke(env, relid));
                    if let Some(v) = self.links.vsps[i].as_mut() {
                        v.slots[slot] = None;
                    }
                    // The relid stays owned until the guest releases it; a later
                    // open or GPADL on it is refused by the server.
                }
                _ => {}
            }
        }
        self.forget_released();
    }

    /// Drops ownership records of relids the server no longer knows.
    fn forget_released(&mut self) {
        let server = &self.server;
        self.links
            .owners
            .retain(|&r, _| server.channel_state(r).is_some());
    }

    /// Handles every message hvcall-pd queued, as long as the SynIC takes answers.
    fn drain(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        loop {
            // Leave messages in hvcall-pd's queue while answers are backed up: the
            // queue fills and the guest's posts fail with INSUFFICIENT_BUFFERS.
            self.with_env(kernel, |server, env| server.flush(env));
            if self.server.pending_messages() >= self.server.config().limits.max_pending_messages {
                return Ok(());
            }
            let message = self
                .queue
                .dequeue()
                .map_err(|_| HandlerError::PeerMisbehaved(self.links.hvcall))?;
            let Some(message) = message else {
                if self.queue.take_signal_request() {
                    self.links.hvcall.notify(kernel)?;
                }
                if self
                    .queue
                    .prepare_to_sleep()
                    .map_err(|_| HandlerError::PeerMisbehaved(self.links.hvcall))?
                {
                    return Ok(());
                }
                continue;
            };
            if message.vtl != 0 || message.message_type != HvMessageType::VMBUS.0 {
                self.log(
                    kernel,
                    Level::Warn,
                    format_args!(
                        "vmbus: dropped post of type {:#x} from VTL {}",
                        message.message_type, message.vtl
                    ),
                );
                continue;
            }
            let connection_id = message.connection_id;
            let _ = self.with_env(kernel, |server, env| {
                server.handle_message(env, connection_id, message.payload())
            });
            self.forget_released();
        }
    }

    fn with_env<R>(
        &mut self,
        kernel: &mut dyn Kernel,
        f: impl FnOnce(&mut Server, &mut PdEnv<'_>) -> R,
    ) -> R {
        let mut env = PdEnv {
            kernel,
            links: &mut self.links,
        };
        f(&mut self.server, &mut env)
    }

    fn log(&mut self, kernel: &mut dyn Kernel, level: Level, args: fmt::Arguments<'_>) {
        log_line(kernel, &mut self.links.logged, level, args);
    }
}

fn log_line(kernel: &mut dyn Kernel, logged: &mut u32, level: Level, args: fmt::Arguments<'_>) {
    if level == Level::Debug {
        return;
    }
    *logged = logged.saturating_add(1);
    // A guest can make every message an error: keep a burst, then one in 1024.
    if *logged <= LOG_BURST || (*logged).is_multiple_of(1024) {
        kernel.debug_puts(&format!("vmbus-server: {level:?}: {args}\n"));
    }
}

/// The server's effects, carried out over this PD's channels.
struct PdEnv<'a> {
    kernel: &'a mut dyn Kernel,
    links: &'a mut Links,
}

impl PdEnv<'_> {
    fn vsp(&self, relid: Relid) -> Option<&Vsp> {
        self.links
            .owners
            .get(&relid)
            .and_then(|&i| self.links.vsps.get(i))
            .and_then(Option::as_ref)
    }

    /// Tells hvcall-pd and synic-pd that `relid`'s VSP (and only it) owns `g`,
    /// replacing what the channel held before.
    fn grant(&mut self, relid: Relid, g: ChannelGrant) -> Result<(), Status> {
        let vsp = self
            .links
            .owners
            .get(&relid)
            .and_then(|&i| u8::try_from(i).ok())
            .ok_or(Status(STATUS_DEVICE_NOT_CONNECTED))?;
        let connection = ConnectionGrant {
            vsp,
            relid: relid.0,
            connection_id: g.connection_id,
            vtl: Vtl::VTL0,
        };
        let hv = hvcall_api::grant_connection(self.kernel, self.links.hvcall, &connection);
        let sy = synic_api::grant_event(
            self.kernel,
            self.links.synic,
            vsp,
            relid.0,
            g.target,
            g.flag,
        );
        if !matches!(hv, Ok(Some(RegisterStatus::Ok))) || !matches!(sy, Ok(GrantStatus::Ok)) {
            log_line(
                self.kernel,
                &mut self.links.logged,
                Level::Error,
                format_args!("{relid}: granting {g:?} to vsp{vsp} failed: {hv:?} {sy:?}"),
            );
            return Err(Status(STATUS_INSUFFICIENT_RESOURCES));
        }
        self.links.grants.insert(relid, g);
        Ok(())
    }

    /// Takes `relid`'s doorbell and interrupt back from its VSP (hvcall-pd also
    /// drops the VSP's route if the VSP did not).
    fn revoke(&mut self, relid: Relid) {
        self.links.grants.remove(&relid);
        let Some(vsp) = self
            .links
            .owners
            .get(&relid)
            .and_then(|&i| u8::try_from(i).ok())
        else {
            return;
        };
        // NotFound answers are expected after a grant that failed half-way.
        let _ = hvcall_api::revoke_connection(self.kernel, self.links.hvcall, vsp, relid.0);
        let _ = synic_api::revoke_event(self.kernel, self.links.synic, vsp, relid.0);
    }

    /// A protected call to the VSP serving `relid`; a dead or unknown VSP is
    /// "device not connected".
    fn call_vsp(
        &mut self,
        relid: Relid,
        encode: impl FnOnce(&mut MessageRegisters) -> ipc::MessageInfo,
    ) -> Result<(), Status> {
        let channel = self
            .vsp(relid)
            .map(|v| v.channel)
            .ok_or(Status(STATUS_DEVICE_NOT_CONNECTED))?;
        let mut mrs = MessageRegisters::new();
        let msg = encode(&mut mrs);
        match channel.pp_call(self.kernel, msg, &mut mrs) {
            Ok(reply) => match StatusReply::decode(reply, &mrs) {
                Ok(StatusReply {
                    status: STATUS_SUCCESS,
                }) => Ok(()),
                Ok(StatusReply { status }) => Err(Status(status)),
                Err(_) => Err(Status(STATUS_UNSUCCESSFUL)),
            },
            Err(_) => Err(Status(STATUS_DEVICE_NOT_CONNECTED)),
        }
    }

    fn notify_vsp(
        &mut self,
        relid: Relid,
        encode: impl FnOnce(&mut MessageRegisters) -> ipc::MessageInfo,
    ) {
        if let Some(channel) = self.vsp(relid).map(|v| v.channel) {
            let mut mrs = MessageRegisters::new();
            let msg = encode(&mut mrs);
            if channel.pp_call(self.kernel, msg, &mut mrs).is_err() {
                log_line(
                    self.kernel,
                    &mut self.links.logged,
                    Level::Error,
                    format_args!("VSP for {relid} did not answer"),
                );
            }
        }
    }
}

impl ServerEnv for PdEnv<'_> {
    fn post_message(&mut self, target: MessageTarget, message: &OutgoingMessage) -> bool {
        let Some(hv) = HvMessage::new(HvMessageType::VMBUS, 0, message.as_bytes()) else {
            return true;
        };
        let sint_target = sint_target(target.vp, target.paravisor_synic, target.sint);
        match synic_api::post_message(self.kernel, self.links.synic, sint_target, &hv) {
            Ok(Ok(_)) => true,
            // The SINT's queue is full: keep the message and retry later.
            Ok(Err(HvStatus::INSUFFICIENT_BUFFERS)) => false,
            other => {
                // Undeliverable (a SINT that does not exist, synic-pd gone): retrying
                // cannot help, and the guest that asked for this target sees nothing.
                log_line(
                    self.kernel,
                    &mut self.links.logged,
                    Level::Error,
                    format_args!("post to {sint_target:?} failed: {other:?}"),
                );
                true
            }
        }
    }

    fn map_gpadl(&mut self, mapping: &GpadlMapping<'_>) -> Result<(), Status> {
        let &GpadlMapping {
            relid,
            gpadl,
            ranges,
            confidentiality,
        } = mapping;
        let window = self
            .vsp(relid)
            .map(|v| v.window)
            .ok_or(Status(STATUS_DEVICE_NOT_CONNECTED))?;
        let words = ranges.iter().flat_map(|r| {
            core::iter::once(vmbus_protocol::gpa::range_header(
                r.byte_count,
                r.byte_offset,
            ))
            .chain(r.pfns.iter().copied())
        });
        // A GPADL larger than the window cannot be handed over.
        let count = vsp_api::write_window(&window, words)
            .map_err(|_| Status(STATUS_INSUFFICIENT_RESOURCES))?;
        let map = MapGpadl {
            relid,
            gpadl,
            range_count: u16::try_from(ranges.len())
                .map_err(|_| Status(STATUS_INVALID_PARAMETER))?,
            words: count,
            confidentiality,
        };
        self.call_vsp(relid, |mrs| map.encode(mrs))
    }

    fn unmap_gpadl(&mut self, relid: Relid, gpadl: GpadlId) {
        self.notify_vsp(relid, |mrs| UnmapGpadl { relid, gpadl }.encode(mrs));
    }

    fn open_channel(&mut self, request: &OpenRequest<'_>) -> Result<(), Status> {
        let open = vsp_open(request);
        let grant = ChannelGrant {
            connection_id: request.signal_connection_id,
            target: sint_target(
                request.target_vp,
                request.paravisor_synic,
                request.target_sint,
            ),
            flag: request.event_flag,
        };
        // The VSP registers its doorbell while it opens, so the grant comes first.
        if let Err(e) = self.grant(request.relid, grant) {
            self.revoke(request.relid);
            return Err(e);
        }
        let opened = self.call_vsp(request.relid, |mrs| open.encode(mrs));
        if opened.is_err() {
            self.revoke(request.relid);
        }
        opened
    }

    fn close_channel(&mut self, relid: Relid) {
        self.notify_vsp(relid, |mrs| CloseChannel { relid }.encode(mrs));
        self.revoke(relid);
    }

    fn modify_channel(&mut self, relid: Relid, target_vp: u32) -> Result<(), Status> {
        // The VSP's signals follow the channel to the new VP: move the grant first,
        // and back if the VSP refuses.
        let old = self.links.grants.get(&relid).copied();
        if let Some(g) = old {
            let target = SintTarget {
                vp: target_vp,
                ..g.target
            };
            self.grant(relid, ChannelGrant { target, ..g })?;
        }
        let result = self.call_vsp(relid, |mrs| ModifyChannel { relid, target_vp }.encode(mrs));
        if let (Err(_), Some(g)) = (result, old) {
            let _ = self.grant(relid, g);
        }
        result
    }

    fn connection_changed(&mut self, connection: Option<&ConnectionInfo>) {
        match connection {
            Some(c) => log_line(
                self.kernel,
                &mut self.links.logged,
                Level::Info,
                format_args!(
                    "guest connected: version {}, features {:?}",
                    c.version, c.features
                ),
            ),
            None => log_line(
                self.kernel,
                &mut self.links.logged,
                Level::Info,
                format_args!("guest disconnected"),
            ),
        }
    }

    fn log(&mut self, level: Level, args: fmt::Arguments<'_>) {
        log_line(self.kernel, &mut self.links.logged, level, args);
    }
}

impl Handler for VmbusPd {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        for ch in channels.iter() {
            // hvcall-pd: guest messages queued. synic-pd: a SINT queue that refused
            // an answer has room again (drain retries the undelivered first).
            if ch == self.links.hvcall || ch == self.links.synic {
                continue;
            }
            let vsp = self
                .links
                .vsps
                .iter()
                .position(|v| v.as_ref().is_some_and(|v| v.channel == ch))
                .ok_or(HandlerError::UnexpectedNotification(ch))?;
            self.refresh_offers(kernel, vsp);
        }
        // Whatever woke us, retry undelivered answers and take new guest messages.
        self.drain(kernel)
    }
}
