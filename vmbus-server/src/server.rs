//! The channel-management state machine.
//!
//! Connection: `Disconnected` until an INITIATE_CONTACT with a version this server
//! speaks, then connected until UNLOAD, a new INITIATE_CONTACT (a rebooted or kexec'd
//! guest does not unload first) or [`Server::reset`].
//!
//! Channel, per offer:
//!
//! ```text
//!   offer()          REQUESTOFFERS / hot add        OPENCHANNEL
//!  ────────> Unsent ─────────────────────> Offered ─────────────> Open
//!              ^  <── RELID_RELEASED ────   │  ^ <── CLOSECHANNEL ──┘ │
//!              │  <── unload/reconnect ──   │                         │
//!              │                      revoke() (RESCIND)      revoke() (VSP closed, RESCIND)
//!              │                            v                         │
//!              └─ (removed) <─ RELID_RELEASED / unload ── Revoked <────┘
//! ```
//!
//! GPADLs belong to a channel the guest can see. They are freed by GPADL_TEARDOWN or
//! when the guest lets go of the channel (RELID_RELEASED, unload, reconnect).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use vmbus_protocol::messages::*;
use vmbus_protocol::status::*;
use vmbus_protocol::{
    parse, FeatureFlags, GpadlId, Guid, Message, MessageType, Negotiated, OfferFlags,
    OutgoingMessage, Relid, Version, VmbusMessage, MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_4,
    MESSAGE_SINT, PAGE_SIZE, VP_INDEX_DISABLE_INTERRUPT,
};

use crate::config::{Config, ConfigError};
use crate::env::{
    Confidentiality, ConnectionInfo, GpadlMapping, Level, MessageTarget, OpenRequest, ServerEnv,
    Status,
};
use crate::error::{ContactError, MessageError, OfferError, RevokeError, RingError};
use crate::gpadl::{GpadlError, GpadlTable};
use crate::relid::RelidAllocator;

/// SINTs per VP.
const SINT_COUNT: u8 = 16;
/// What OFFERCHANNEL carries when no monitor id is allocated.
const NO_MONITOR: u8 = 0xff;

/// Who serves an offer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OfferSource {
    /// A VSP PD in the paravisor: its rings can stay in private memory when the guest
    /// negotiated confidential channels.
    Paravisor {
        /// The VSP can also work on encrypted GPADLs / GPA-direct ranges.
        confidential_external_memory: bool,
    },
    /// A host offer the paravisor relays: its memory is always host-visible.
    Relay,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RelidRequest {
    /// Any free relid at or above `Config::first_dynamic_relid`.
    Any,
    /// This relid (a relay keeping the host's number).
    Fixed(Relid),
}

/// An offer a VSP registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferParams {
    pub interface_id: Guid,
    pub instance_id: Guid,
    pub subchannel_index: u16,
    /// The confidential bits are ignored: the server sets them per connection.
    pub flags: OfferFlags,
    pub mmio_megabytes: u16,
    pub mmio_megabytes_optional: u16,
    pub user_defined: UserDefinedData,
    pub relid: RelidRequest,
    pub source: OfferSource,
}

/// A paravisor VSP's offer, as the server takes it: any relid.
impl From<&vsp_api::VspOffer> for OfferParams {
    fn from(o: &vsp_api::VspOffer) -> Self {
        Self {
            interface_id: o.interface_id,
            instance_id: o.instance_id,
            subchannel_index: o.subchannel_index,
            flags: o.flags,
            mmio_megabytes: o.mmio_megabytes,
            mmio_megabytes_optional: o.mmio_megabytes_optional,
            user_defined: o.user_defined,
            relid: RelidRequest::Any,
            source: OfferSource::Paravisor {
                confidential_external_memory: o.confidential_external_memory,
            },
        }
    }
}

impl OfferParams {
    /// A plain device offer from a paravisor VSP.
    pub fn device(interface_id: Guid, instance_id: Guid) -> Self {
        Self::from(&vsp_api::VspOffer::device(interface_id, instance_id))
    }

    fn key(&self) -> (Guid, Guid, u16) {
        (self.interface_id, self.instance_id, self.subchannel_index)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChannelState {
    /// Registered, not (or no longer) known to the guest.
    Unsent,
    /// Offered to the guest, closed.
    Offered,
    Open {
        ring_gpadl: GpadlId,
        target_vp: u32,
    },
    /// Withdrawn by its VSP; the guest got RESCIND and owes RELID_RELEASED.
    Revoked,
}

impl ChannelState {
    /// Whether the guest holds a reference to the channel.
    fn guest_visible(self) -> bool {
        !matches!(self, Self::Unsent)
    }

    fn ring_gpadl(self) -> Option<GpadlId> {
        match self {
            Self::Open { ring_gpadl, .. } => Some(ring_gpadl),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Channel {
    params: OfferParams,
    state: ChannelState,
}

#[derive(Debug)]
struct Connection {
    info: ConnectionInfo,
    offers_sent: bool,
}

/// The server side of the VMBus control plane.
#[derive(Debug)]
pub struct Server {
    config: Config,
    connection: Option<Connection>,
    channels: BTreeMap<Relid, Channel>,
    relids: RelidAllocator,
    gpadls: GpadlTable,
    outbox: VecDeque<(MessageTarget, OutgoingMessage)>,
    /// A message went to the SynIC since the last `signal`.
    posted: bool,
}

impl Server {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            relids: RelidAllocator::new(config.first_dynamic_relid),
            config,
            connection: None,
            channels: BTreeMap::new(),
            gpadls: GpadlTable::default(),
            outbox: VecDeque::new(),
            posted: false,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn connection(&self) -> Option<&ConnectionInfo> {
        self.connection.as_ref().map(|c| &c.info)
    }

    pub fn channel_state(&self, relid: Relid) -> Option<ChannelState> {
        self.channels.get(&relid).map(|c| c.state)
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn gpadl_count(&self) -> usize {
        self.gpadls.len()
    }

    /// Messages waiting for a free SynIC slot.
    pub fn pending_messages(&self) -> usize {
        self.outbox.len()
    }

    /// The complete (mapped) GPADLs and their owners.
    pub fn gpadls(&self) -> impl Iterator<Item = (GpadlId, Relid)> + '_ {
        self.gpadls
            .iter()
            .filter(|(_, g)| g.ready)
            .map(|(id, g)| (id, g.relid))
    }

    /// The signal connection id the guest uses for a channel.
    pub fn signal_connection_id(&self, relid: Relid) -> u32 {
        self.config.signal_connection_base + relid.0
    }

    fn features_offered(&self) -> FeatureFlags {
        if self.config.confidential {
            FeatureFlags::CONFIDENTIAL_CHANNELS
        } else {
            FeatureFlags::EMPTY
        }
    }

    // ----- VSP-facing API -----

    /// Registers an offer. The guest sees it at its next REQUESTOFFERS, or at once if
    /// it already enumerated.
    pub fn offer<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        params: OfferParams,
    ) -> Result<Relid, OfferError> {
        let key = params.key();
        if self
            .channels
            .values()
            .any(|c| c.state != ChannelState::Revoked && c.params.key() == key)
        {
            return Err(OfferError::Duplicate);
        }
        let relid = match params.relid {
            RelidRequest::Any => self.relids.allocate()?,
            RelidRequest::Fixed(relid) => {
                self.relids.reserve(relid)?;
                relid
            }
        };
        self.channels.insert(
            relid,
            Channel {
                params,
                state: ChannelState::Unsent,
            },
        );
        if let Some(info) = self.enumerated_connection() {
            self.send_offer(env, relid, &info);
        }
        self.finish(env);
        Ok(relid)
    }

    /// Withdraws an offer (the VSP is going away). An open channel is closed at the
    /// VSP first; the guest is told with RESCIND and releases the relid later.
    pub fn revoke<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        relid: Relid,
    ) -> Result<(), RevokeError> {
        let state = self
            .channels
            .get(&relid)
            .map(|c| c.state)
            .ok_or(RevokeError::Unknown(relid))?;
        match state {
            ChannelState::Revoked => return Err(RevokeError::AlreadyRevoked(relid)),
            ChannelState::Unsent => {
                self.channels.remove(&relid);
                self.relids.release(relid);
                return Ok(());
            }
            ChannelState::Open { ring_gpadl, .. } => self.close_at_vsp(env, relid, ring_gpadl),
            ChannelState::Offered => {}
        }
        self.set_state(relid, ChannelState::Revoked);
        self.send(env, &RescindChannelOffer { child_relid: relid });
        self.finish(env);
        Ok(())
    }

    /// Retries messages the SynIC could not take (call on EOM / slot free).
    pub fn flush<E: ServerEnv + ?Sized>(&mut self, env: &mut E) {
        while let Some((target, msg)) = self.outbox.front() {
            if !env.post_message(*target, msg) {
                break;
            }
            self.outbox.pop_front();
            self.posted = true;
        }
        self.finish(env);
    }

    /// A VM reset: forget the guest's connection, channels' guest state and any
    /// undelivered messages. Offers stay registered.
    pub fn reset<E: ServerEnv + ?Sized>(&mut self, env: &mut E) {
        self.teardown_guest_state(env);
        self.outbox.clear();
    }

    // ----- guest-facing API -----

    /// Handles one channel message the guest posted to `connection_id`.
    pub fn handle_message<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        connection_id: u32,
        bytes: &[u8],
    ) -> Result<(), MessageError> {
        let result = self.dispatch(env, connection_id, bytes);
        if let Err(e) = &result {
            let level = if *e == MessageError::Busy {
                Level::Debug
            } else {
                Level::Warn
            };
            env.log(level, format_args!("vmbus: {e}"));
        }
        self.finish(env);
        result
    }

    fn dispatch<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        connection_id: u32,
        bytes: &[u8],
    ) -> Result<(), MessageError> {
        // Refusing before parsing keeps a guest that never frees its message slot
        // from growing the queue: it gets INSUFFICIENT_BUFFERS and retries.
        if self.outbox.len() >= self.config.limits.max_pending_messages {
            return Err(MessageError::Busy);
        }
        let negotiated = self.connection.as_ref().map(|c| Negotiated {
            version: c.info.version,
            features: c.info.features,
        });
        let message = parse(bytes, negotiated).map_err(MessageError::Parse)?;
        self.check_connection_id(&message, connection_id)?;
        match message {
            Message::InitiateContact(c) => self.initiate_contact(env, &c),
            Message::RequestOffers => self.request_offers(env),
            Message::GpadlHeader(h, data) => self.gpadl_header(env, &h, data),
            Message::GpadlBody(b, data) => self.gpadl_body(env, &b, data),
            Message::GpadlTeardown(t) => self.gpadl_teardown(env, &t),
            Message::OpenChannel(o) => self.open_channel(env, &o),
            Message::CloseChannel(c) => self.close_channel(env, c.child_relid),
            Message::RelidReleased(r) => self.relid_released(env, r.child_relid),
            Message::ModifyChannel(m) => self.modify_channel(env, &m),
            Message::Unload => {
                self.unload(env);
                Ok(())
            }
            Message::TlConnectRequest(r) => self.tl_connect(env, &r),
            Message::ModifyConnection(_) | Message::Pause | Message::Resume => {
                // Parsing requires features this server never grants.
                Err(MessageError::NotSupported(message.message_type()))
            }
            Message::OfferChannel(_)
            | Message::RescindChannelOffer(_)
            | Message::AllOffersDelivered
            | Message::OpenResult(_)
            | Message::GpadlCreated(_)
            | Message::GpadlTorndown(_)
            | Message::VersionResponse(..)
            | Message::UnloadResponse
            | Message::TlConnectResult(_)
            | Message::ModifyChannelResponse(_)
            | Message::ModifyConnectionResponse(_)
            | Message::PauseResponse => Err(MessageError::ClientMessage(message.message_type())),
        }
    }

    /// Messages for a connection arrive on its message connection; INITIATE_CONTACT
    /// (and anything before contact) on either of the two the protocol defines.
    fn check_connection_id(&self, message: &Message<'_>, got: u32) -> Result<(), MessageError> {
        let expected = match (&self.connection, message) {
            (Some(c), m) if !matches!(m, Message::InitiateContact(_)) => {
                c.info.message_connection_id
            }
            _ if got == MESSAGE_CONNECTION_ID || got == MESSAGE_CONNECTION_ID_4 => return Ok(()),
            _ => MESSAGE_CONNECTION_ID_4,
        };
        if got == expected {
            Ok(())
        } else {
            Err(MessageError::WrongConnectionId { expected, got })
        }
    }

    // ----- version negotiation -----

    fn initiate_contact<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        c: &InitiateContact,
    ) -> Result<(), MessageError> {
        // Whatever the guest had before is gone: it would unload first otherwise.
        self.teardown_guest_state(env);

        let version = Version(c.version_requested);
        // Before 3.0 messages always went to VP 0; before 5.0 always to SINT 2.
        let vp = if version >= Version::WIN8_1 {
            c.target_vcpu
        } else {
            0
        };
        let sint = if version >= Version::WIN10_V5 {
            c.msg_sint()
        } else {
            MESSAGE_SINT
        };
        // A 6.0 guest asking for confidential channels talks to the paravisor's SynIC
        // (if this server is the paravisor's); everyone else to the hypervisor's.
        let features = if version >= Version::V6_0 {
            FeatureFlags(c.feature_flags()) & self.features_offered()
        } else {
            FeatureFlags::EMPTY
        };
        // A refusal still has to reach the guest: fall back to a target that exists.
        let target = MessageTarget {
            vp: if vp < self.config.vp_count { vp } else { 0 },
            sint: if sint < SINT_COUNT {
                sint
            } else {
                MESSAGE_SINT
            },
            paravisor_synic: features.contains(FeatureFlags::CONFIDENTIAL_CHANNELS),
        };

        let refusal = if !version.is_known() || version > self.config.max_version {
            Some(ContactError::UnsupportedVersion(version))
        } else if vp >= self.config.vp_count {
            Some(ContactError::BadVp(vp))
        } else if sint >= SINT_COUNT {
            Some(ContactError::BadSint(sint))
        } else if version >= Version::WIN10_V5_1 && c.msg_vtl() != 0 {
            Some(ContactError::OtherVtl(c.msg_vtl()))
        } else {
            None
        };
        if let Some(error) = refusal {
            self.post(
                env,
                target,
                OutgoingMessage::new(&version_response(false, 0)),
            );
            return Err(MessageError::Contact(error));
        }

        let message_connection_id = version.message_connection_id();
        // Before 5.0 the field echoes the version; from 5.0 it names the connection.
        let msg_conn_id = if version >= Version::WIN10_V5 {
            message_connection_id
        } else {
            version.0
        };

        let monitor_pages = match (c.monitor_page1, c.monitor_page2) {
            (0, 0) => None,
            (a, b) if a != 0 && b != 0 => Some((a, b)),
            _ => {
                // Win8+ guests understand a failed connection state; older ones only
                // "unsupported".
                let mut r = version_response(version >= Version::WIN8, msg_conn_id);
                r.connection_state = ConnectionState::FAILED_UNKNOWN_FAILURE;
                self.post(env, target, OutgoingMessage::new(&r));
                return Err(MessageError::Contact(ContactError::MonitorPages));
            }
        };
        // From 5.0 the field holds SINT/VTL/features; before that it is the guest's
        // shared interrupt page, which only pre-Win8 connections signal through.
        let interrupt_page = (version < Version::WIN8 && c.interrupt_page_or_target_info != 0)
            .then_some(c.interrupt_page_or_target_info);
        let info = ConnectionInfo {
            version,
            features,
            target,
            message_connection_id,
            interrupt_page,
            monitor_pages,
        };
        self.connection = Some(Connection {
            info,
            offers_sent: false,
        });
        env.connection_changed(Some(&info));
        env.log(
            Level::Info,
            format_args!("vmbus: guest connected with version {version}, features {features:?}"),
        );

        let response = version_response(true, msg_conn_id);
        let message = if version >= Version::V6_0 {
            OutgoingMessage::new(&VersionResponse2 {
                response,
                supported_features: features.bits(),
            })
        } else {
            OutgoingMessage::new(&response)
        };
        self.post(env, target, message);
        Ok(())
    }

    fn unload<E: ServerEnv + ?Sized>(&mut self, env: &mut E) {
        let target = self.target();
        let version = self.connection.as_ref().map(|c| c.info.version);
        self.teardown_guest_state(env);
        // UNLOAD_RESPONSE exists from Win7 on.
        if version.is_none_or(|v| v >= Version::WIN7) {
            self.post(env, target, OutgoingMessage::new(&UnloadResponse {}));
        }
    }

    /// Drops everything the guest holds: open channels are closed at their VSPs,
    /// GPADLs unmapped, revoked offers forgotten, the rest back to `Unsent`.
    fn teardown_guest_state<E: ServerEnv + ?Sized>(&mut self, env: &mut E) {
        for (&relid, channel) in &self.channels {
            if let ChannelState::Open { .. } = channel.state {
                env.close_channel(relid);
            }
        }
        self.gpadls.drain_where(
            |_| true,
            |id, g| {
                if g.ready {
                    env.unmap_gpadl(g.relid, id);
                }
            },
        );
        let relids = &mut self.relids;
        self.channels.retain(|&relid, channel| {
            if channel.state == ChannelState::Revoked {
                relids.release(relid);
                false
            } else {
                channel.state = ChannelState::Unsent;
                true
            }
        });
        if self.connection.take().is_some() {
            env.connection_changed(None);
        }
    }

    // ----- offers -----

    fn request_offers<E: ServerEnv + ?Sized>(&mut self, env: &mut E) -> Result<(), MessageError> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(MessageError::Parse(
                vmbus_protocol::ParseError::NotConnected(MessageType::REQUESTOFFERS),
            ));
        };
        if connection.offers_sent {
            return Err(MessageError::OffersAlreadySent);
        }
        connection.offers_sent = true;
        let info = connection.info;
        let unsent: Vec<Relid> = self
            .channels
            .iter()
            .filter(|(_, c)| c.state == ChannelState::Unsent)
            .map(|(&r, _)| r)
            .collect();
        for relid in unsent {
            self.send_offer(env, relid, &info);
        }
        self.send(env, &AllOffersDelivered {});
        Ok(())
    }

    /// The connection, if the guest has asked for offers on it.
    fn enumerated_connection(&self) -> Option<ConnectionInfo> {
        self.connection
            .as_ref()
            .filter(|c| c.offers_sent)
            .map(|c| c.info)
    }

    fn send_offer<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        relid: Relid,
        info: &ConnectionInfo,
    ) {
        let Some(channel) = self.channels.get_mut(&relid) else {
            return;
        };
        channel.state = ChannelState::Offered;
        let p = &channel.params;
        let confidentiality = confidentiality(p.source, info);
        let mut flags = p.flags.without(OfferFlags::CONFIDENTIAL);
        if confidentiality.ring {
            flags = flags | OfferFlags::CONFIDENTIAL_RING_BUFFER;
        }
        if confidentiality.external {
            flags = flags | OfferFlags::CONFIDENTIAL_EXTERNAL_MEMORY;
        }
        let offer = OfferChannel {
            interface_id: p.interface_id,
            instance_id: p.instance_id,
            reserved: [0; 4],
            flags,
            mmio_megabytes: p.mmio_megabytes,
            user_defined: p.user_defined,
            subchannel_index: p.subchannel_index,
            mmio_megabytes_optional: p.mmio_megabytes_optional,
            child_relid: relid,
            monitor_id: NO_MONITOR,
            monitor_allocated: 0,
            // Every channel has its own event flag; pre-Win7 guests ignore this.
            is_dedicated_interrupt: 1,
            connection_id: self.signal_connection_id(relid),
        };
        self.send(env, &offer);
    }

    fn channel_confidentiality(&self, relid: Relid) -> Confidentiality {
        match (self.channels.get(&relid), &self.connection) {
            (Some(c), Some(conn)) => confidentiality(c.params.source, &conn.info),
            _ => Confidentiality::NONE,
        }
    }

    /// What `accept` takes from the state of a channel the guest holds a reference
    /// to; otherwise why `message` about it is refused (no such channel, or a state
    /// `accept` turns down).
    fn guest_channel<T>(
        &self,
        relid: Relid,
        message: MessageType,
        accept: impl FnOnce(ChannelState) -> Option<T>,
    ) -> Result<T, MessageError> {
        let state = self
            .channels
            .get(&relid)
            .map(|c| c.state)
            .filter(|s| s.guest_visible())
            .ok_or(MessageError::UnknownChannel { relid, message })?;
        accept(state).ok_or(MessageError::ChannelState {
            relid,
            state,
            message,
        })
    }

    fn set_state(&mut self, relid: Relid, state: ChannelState) {
        if let Some(c) = self.channels.get_mut(&relid) {
            c.state = state;
        }
    }

    fn relid_released<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        relid: Relid,
    ) -> Result<(), MessageError> {
        let state = self.guest_channel(relid, MessageType::RELID_RELEASED, |s| {
            (!matches!(s, ChannelState::Open { .. })).then_some(s)
        })?;
        self.release_gpadls(env, relid);
        if state == ChannelState::Revoked {
            self.channels.remove(&relid);
            self.relids.release(relid);
        } else {
            self.set_state(relid, ChannelState::Unsent);
        }
        Ok(())
    }

    fn release_gpadls<E: ServerEnv + ?Sized>(&mut self, env: &mut E, relid: Relid) {
        self.gpadls.drain_where(
            |g| g.relid == relid,
            |id, g| {
                if g.ready {
                    env.unmap_gpadl(relid, id);
                }
            },
        );
    }

    // ----- GPADLs -----

    fn gpadl_header<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        h: &GpadlHeader,
        data: &[u8],
    ) -> Result<(), MessageError> {
        let relid = h.child_relid;
        let accepted = self.guest_channel(relid, MessageType::GPADL_HEADER, |s| {
            (s != ChannelState::Revoked).then_some(())
        });
        if let Err(error) = accepted {
            self.gpadl_created(env, relid, h.gpadl, refusal_status(&error));
            return Err(error);
        }
        let limits = self.config.limits;
        match self.gpadls.begin(
            h.gpadl,
            relid,
            h.range_buf_len,
            h.range_count,
            data,
            &limits,
        ) {
            Ok(false) => Ok(()),
            Ok(true) => self.complete_gpadl(env, h.gpadl),
            // Answering would also answer the GPADL still being sent under this handle.
            Err(error @ GpadlError::Duplicate { complete: false }) => Err(MessageError::Gpadl {
                gpadl: h.gpadl,
                error,
            }),
            Err(error) => {
                self.gpadl_created(env, relid, h.gpadl, gpadl_status(error));
                Err(MessageError::Gpadl {
                    gpadl: h.gpadl,
                    error,
                })
            }
        }
    }

    fn gpadl_body<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        b: &GpadlBody,
        data: &[u8],
    ) -> Result<(), MessageError> {
        match self.gpadls.body(b.gpadl, data) {
            Ok((_, false)) => Ok(()),
            Ok((_, true)) => self.complete_gpadl(env, b.gpadl),
            Err(error) => Err(MessageError::Gpadl {
                gpadl: b.gpadl,
                error,
            }),
        }
    }

    /// All of a GPADL's bytes are in: validate, map, answer.
    fn complete_gpadl<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        id: GpadlId,
    ) -> Result<(), MessageError> {
        let Some(relid) = self.gpadls.get(id).map(|g| g.relid) else {
            return Err(MessageError::Gpadl {
                gpadl: id,
                error: GpadlError::Unknown(id),
            });
        };
        if let Err(error) = self.gpadls.validate(id, &self.config.guest_memory) {
            self.gpadls.remove(id);
            self.gpadl_created(env, relid, id, gpadl_status(error));
            return Err(MessageError::Gpadl { gpadl: id, error });
        }
        let confidentiality = self.channel_confidentiality(relid);
        let mapped = match self.gpadls.get(id).map(|g| g.ranges()) {
            Some(Ok(ranges)) => env.map_gpadl(&GpadlMapping {
                relid,
                gpadl: id,
                ranges,
                confidentiality,
            }),
            _ => Err(Status(STATUS_UNSUCCESSFUL)),
        };
        match mapped {
            Ok(()) => {
                if let Some(g) = self.gpadls.get_mut(id) {
                    g.ready = true;
                }
                self.gpadl_created(env, relid, id, STATUS_SUCCESS);
                Ok(())
            }
            Err(status) => {
                self.gpadls.remove(id);
                self.gpadl_created(env, relid, id, status.0);
                Err(MessageError::Refused { relid, status })
            }
        }
    }

    fn gpadl_created<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        relid: Relid,
        gpadl: GpadlId,
        status: u32,
    ) {
        self.send(
            env,
            &GpadlCreated {
                child_relid: relid,
                gpadl,
                status,
            },
        );
    }

    fn gpadl_teardown<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        t: &GpadlTeardown,
    ) -> Result<(), MessageError> {
        let gpadl = t.gpadl;
        let err = |error| Err(MessageError::Gpadl { gpadl, error });
        let Some(g) = self.gpadls.get(gpadl) else {
            return err(GpadlError::Unknown(gpadl));
        };
        if g.relid != t.child_relid {
            return err(GpadlError::WrongChannel {
                gpadl,
                owner: g.relid,
            });
        }
        if !g.ready {
            // Still being sent: there is nothing mapped to tear down yet.
            return err(GpadlError::Unknown(gpadl));
        }
        if g.in_use {
            // The guest closes a channel before tearing down its ring.
            return err(GpadlError::InUse(gpadl));
        }
        env.unmap_gpadl(g.relid, gpadl);
        self.gpadls.remove(gpadl);
        self.send(env, &GpadlTorndown { gpadl });
        Ok(())
    }

    // ----- open / close / modify -----

    fn open_channel<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        o: &OpenChannel,
    ) -> Result<(), MessageError> {
        let relid = o.child_relid;
        let result = self.try_open(env, o);
        let status = match &result {
            Ok(()) => STATUS_SUCCESS,
            Err(error) => refusal_status(error),
        };
        self.send(
            env,
            &OpenResult {
                child_relid: relid,
                open_id: o.open_id,
                status,
            },
        );
        result
    }

    fn try_open<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        o: &OpenChannel,
    ) -> Result<(), MessageError> {
        let relid = o.child_relid;
        let message = MessageType::OPENCHANNEL;
        self.guest_channel(relid, message, |s| {
            (s == ChannelState::Offered).then_some(())
        })?;
        if o.target_vp >= self.config.vp_count && o.target_vp != VP_INDEX_DISABLE_INTERRUPT {
            return Err(MessageError::BadTargetVp {
                relid,
                vp: o.target_vp,
            });
        }
        let gpadl = o.ring_buffer_gpadl;
        let gpadl_err = |error| MessageError::Gpadl { gpadl, error };
        let g = self
            .gpadls
            .get(gpadl)
            .filter(|g| g.ready)
            .ok_or(gpadl_err(GpadlError::Unknown(gpadl)))?;
        if g.relid != relid {
            return Err(gpadl_err(GpadlError::WrongChannel {
                gpadl,
                owner: g.relid,
            }));
        }
        if g.in_use {
            return Err(gpadl_err(GpadlError::InUse(gpadl)));
        }
        let ring = g.ranges().map_err(|e| gpadl_err(GpadlError::Ranges(e)))?;
        check_ring(&ring, o.downstream_ring_buffer_page_offset)
            .map_err(|error| MessageError::Ring { relid, error })?;

        let Some(connection) = self.connection.as_ref().map(|c| c.info) else {
            return Err(MessageError::Parse(
                vmbus_protocol::ParseError::NotConnected(message),
            ));
        };
        let version = connection.version;
        let subchannel_index = self
            .channels
            .get(&relid)
            .map_or(0, |c| c.params.subchannel_index);
        let request = OpenRequest {
            relid,
            subchannel_index,
            open_id: o.open_id,
            ring_gpadl: gpadl,
            ring,
            downstream_page_offset: o.downstream_ring_buffer_page_offset,
            target_vp: o.target_vp,
            target_sint: connection.target.sint,
            paravisor_synic: connection.target.paravisor_synic,
            user_data: &o.user_data,
            signal_connection_id: self.signal_connection_id(relid),
            event_flag: relid.0,
            confidentiality: self.channel_confidentiality(relid),
            version,
        };
        env.open_channel(&request)
            .map_err(|status| MessageError::Refused { relid, status })?;
        if let Some(g) = self.gpadls.get_mut(gpadl) {
            g.in_use = true;
        }
        self.set_state(
            relid,
            ChannelState::Open {
                ring_gpadl: gpadl,
                target_vp: o.target_vp,
            },
        );
        Ok(())
    }

    fn close_channel<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        relid: Relid,
    ) -> Result<(), MessageError> {
        // The VSP already closed a revoked channel; Linux still closes it.
        let state = self.guest_channel(relid, MessageType::CLOSECHANNEL, |s| {
            matches!(s, ChannelState::Open { .. } | ChannelState::Revoked).then_some(s)
        })?;
        if let Some(ring) = state.ring_gpadl() {
            self.close_at_vsp(env, relid, ring);
            self.set_state(relid, ChannelState::Offered);
        }
        Ok(())
    }

    /// Closes an open channel at its VSP; its ring GPADL may then be torn down.
    fn close_at_vsp<E: ServerEnv + ?Sized>(&mut self, env: &mut E, relid: Relid, ring: GpadlId) {
        env.close_channel(relid);
        if let Some(g) = self.gpadls.get_mut(ring) {
            g.in_use = false;
        }
    }

    fn modify_channel<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        m: &ModifyChannel,
    ) -> Result<(), MessageError> {
        let relid = m.child_relid;
        let result = self
            .guest_channel(relid, MessageType::MODIFYCHANNEL, ChannelState::ring_gpadl)
            .and_then(|ring_gpadl| {
                if m.target_vp >= self.config.vp_count {
                    return Err(MessageError::BadTargetVp {
                        relid,
                        vp: m.target_vp,
                    });
                }
                env.modify_channel(relid, m.target_vp)
                    .map_err(|status| MessageError::Refused { relid, status })?;
                self.set_state(
                    relid,
                    ChannelState::Open {
                        ring_gpadl,
                        target_vp: m.target_vp,
                    },
                );
                Ok(())
            });
        // Only 5.3+ guests wait for an answer.
        let answers = self
            .connection
            .as_ref()
            .is_some_and(|c| c.info.version >= Version::WIN10_V5_3);
        if answers {
            let status = match &result {
                Ok(()) => STATUS_SUCCESS,
                Err(MessageError::Refused { status, .. }) => status.0,
                Err(_) => STATUS_INVALID_PARAMETER,
            };
            self.send(
                env,
                &ModifyChannelResponse {
                    child_relid: relid,
                    status,
                },
            );
        }
        result
    }

    fn tl_connect<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        r: &TlConnectRequest,
    ) -> Result<(), MessageError> {
        let answers = self
            .connection
            .as_ref()
            .is_some_and(|c| c.info.version >= Version::WIN10_V4_1);
        if answers {
            self.send(
                env,
                &TlConnectResult {
                    guest_endpoint_id: r.guest_endpoint_id,
                    host_service_id: r.host_service_id,
                    status: STATUS_CONNECTION_REFUSED,
                },
            );
        }
        Err(MessageError::NotSupported(MessageType::TL_CONNECT_REQUEST))
    }

    // ----- outgoing messages -----

    fn target(&self) -> MessageTarget {
        self.connection
            .as_ref()
            .map(|c| c.info.target)
            .unwrap_or(MessageTarget::DEFAULT)
    }

    fn send<E: ServerEnv + ?Sized, T: VmbusMessage>(&mut self, env: &mut E, body: &T) {
        let target = self.target();
        self.post(env, target, OutgoingMessage::new(body));
    }

    /// Posts in order: once one message waits, later ones queue behind it.
    fn post<E: ServerEnv + ?Sized>(
        &mut self,
        env: &mut E,
        target: MessageTarget,
        message: OutgoingMessage,
    ) {
        if self.outbox.is_empty() && env.post_message(target, &message) {
            self.posted = true;
        } else {
            self.outbox.push_back((target, message));
        }
    }

    fn finish<E: ServerEnv + ?Sized>(&mut self, env: &mut E) {
        if core::mem::take(&mut self.posted) {
            env.signal();
        }
    }

    // ----- consistency -----

    /// Checks the server's internal invariants; tests and the fuzzer call it after
    /// every step.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if self.relids.count() != self.channels.len() {
            return Err("relid allocator count differs from channel count");
        }
        if self.channels.keys().any(|&r| !self.relids.is_allocated(r)) {
            return Err("channel relid not allocated");
        }
        let enumerated = self.connection.as_ref().is_some_and(|c| c.offers_sent);
        for channel in self.channels.values() {
            if channel.state.guest_visible() && !enumerated {
                return Err("guest-visible channel without an enumerated connection");
            }
            if let ChannelState::Open { ring_gpadl, .. } = channel.state {
                match self.gpadls.get(ring_gpadl) {
                    Some(g) if g.ready && g.in_use => {}
                    _ => return Err("open channel's ring GPADL missing or not marked in use"),
                }
            }
        }
        for (id, g) in self.gpadls.iter() {
            match self.channels.get(&g.relid) {
                Some(c) if c.state.guest_visible() => {}
                _ => return Err("GPADL owned by a channel the guest does not hold"),
            }
            if g.ready != g.is_complete() {
                return Err("GPADL ready flag disagrees with completeness");
            }
            if g.in_use {
                let owner_open = matches!(
                    self.channels.get(&g.relid).map(|c| c.state),
                    Some(ChannelState::Open { ring_gpadl, .. }) if ring_gpadl == id
                );
                if !owner_open {
                    return Err("GPADL marked in use without an open channel on it");
                }
            }
        }
        if self.gpadls.recount() != self.gpadls.words() {
            return Err("GPADL word accounting drifted");
        }
        if self.gpadls.len() > self.config.limits.max_gpadls {
            return Err("GPADL count over limit");
        }
        Ok(())
    }
}

fn version_response(supported: bool, msg_conn_id: u32) -> VersionResponse {
    VersionResponse {
        version_supported: supported.into(),
        connection_state: ConnectionState::SUCCESSFUL,
        padding: 0,
        msg_conn_id: if supported { msg_conn_id } else { 0 },
    }
}

fn confidentiality(source: OfferSource, info: &ConnectionInfo) -> Confidentiality {
    match source {
        OfferSource::Paravisor {
            confidential_external_memory,
        } if info.features.contains(FeatureFlags::CONFIDENTIAL_CHANNELS) => Confidentiality {
            ring: true,
            external: confidential_external_memory,
        },
        _ => Confidentiality::NONE,
    }
}

/// How an OPENCHANNEL or GPADL_HEADER that `error` refuses is answered.
fn refusal_status(error: &MessageError) -> u32 {
    match error {
        MessageError::Refused { status, .. } => status.0,
        MessageError::ChannelState {
            state: ChannelState::Revoked,
            ..
        } => STATUS_DEVICE_NOT_CONNECTED,
        MessageError::ChannelState { .. } => STATUS_UNSUCCESSFUL,
        _ => STATUS_INVALID_PARAMETER,
    }
}

fn gpadl_status(error: GpadlError) -> u32 {
    match error {
        GpadlError::Limit => STATUS_INSUFFICIENT_RESOURCES,
        _ => STATUS_INVALID_PARAMETER,
    }
}

/// A ring GPADL is one page-aligned range holding two rings, each a control page and
/// at least one data page: the guest-to-host ring first, the other from `offset` on.
fn check_ring(ring: &vmbus_protocol::gpa::GpaRanges<'_>, offset: u32) -> Result<(), RingError> {
    let mut ranges = ring.iter();
    let (Some(range), None) = (ranges.next(), ranges.next()) else {
        return Err(RingError::Shape);
    };
    if range.byte_offset != 0 || u64::from(range.byte_count) % PAGE_SIZE != 0 {
        return Err(RingError::Shape);
    }
    let pages = range.pfns.len();
    let offset_pages = offset as usize;
    if offset_pages < 2 || pages.saturating_sub(offset_pages) < 2 {
        return Err(RingError::Offset { offset, pages });
    }
    Ok(())
}
