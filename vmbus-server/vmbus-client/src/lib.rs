//! A guest-side VMBus client for tests, behaving as Linux's `hv_vmbus` does on the
//! wire: it negotiates from 6.0 downward (asking for confidential channels when told
//! to), posts to the connection id the server names, enumerates offers (dropping
//! confidential offers it did not negotiate, as Linux does), builds GPADLs with
//! Linux's header/body split, opens and closes channels, and unloads.
//!
//! It talks through a [`Transport`]: the host-sim PD plumbing in system tests, or
//! [`loopback::Loopback`] (feature `loopback`) straight into a server core.
//!
//! `no_std` with `alloc`, so the same client runs in a bare-metal PD.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vmbus_protocol::gpa;
use vmbus_protocol::messages::*;
use vmbus_protocol::{
    parse, FeatureFlags, GpadlId, Guid, Message, Negotiated, OfferFlags, OutgoingMessage,
    ParseError, Relid, Version, VmbusMessage, MESSAGE_CONNECTION_ID, MESSAGE_SINT,
};

#[cfg(any(test, feature = "loopback"))]
pub mod loopback;

/// Carries channel messages between the client and a server.
pub trait Transport {
    /// Posts one channel message to `connection_id` (HvPostMessage).
    fn post(&mut self, connection_id: u32, message: &[u8]) -> Result<(), TransportError>;

    /// The next message from the server, or `None` if none arrives in time.
    fn receive(&mut self) -> Result<Option<Vec<u8>>, TransportError>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The server's message buffers are full (HV_STATUS_INSUFFICIENT_BUFFERS).
    Busy,
    /// Nothing listens on the connection id (HV_STATUS_INVALID_CONNECTION_ID).
    InvalidConnection,
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("transport: {0:?}")]
    Transport(TransportError),
    /// The server did not answer.
    #[error("no {0} from the server")]
    NoResponse(&'static str),
    /// The server sent bytes that are not a valid message.
    #[error("malformed server message: {0}")]
    Malformed(ParseError),
    /// No version in the list was accepted.
    #[error("the server accepted no version")]
    NoVersion,
    /// The server accepted contact but reported a failed connection state.
    #[error("connection failed: {0:?}")]
    ConnectionFailed(ConnectionState),
    #[error("not connected")]
    NotConnected,
    #[error("no offer with {0}")]
    UnknownChannel(Relid),
    /// The pages do not fit one GPADL.
    #[error("page list too large for one GPADL")]
    GpadlTooLarge,
    /// The server answered with a failure status.
    #[error("{operation} failed with status {status:#x}")]
    Status {
        operation: &'static str,
        status: u32,
    },
}

impl From<TransportError> for ClientError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Versions to try, in order.
    pub versions: Vec<Version>,
    /// Ask for confidential channels (a 6.0 guest that detected a paravisor offering
    /// Confidential VMBus).
    pub confidential: bool,
    /// The VP messages should go to (Win8.1+).
    pub target_vp: u32,
    /// The SINT messages should arrive on (5.0+).
    pub sint: u8,
    pub monitor_pages: (u64, u64),
    /// The shared interrupt page for pre-5.0 contacts.
    pub interrupt_page: u64,
}

impl ClientConfig {
    /// What a current Linux tries: 6.0 down to Win8 (2.4).
    pub fn linux() -> Self {
        Self {
            versions: Version::ALL
                .iter()
                .copied()
                .filter(|&v| v >= Version::WIN8)
                .collect(),
            confidential: false,
            target_vp: 0,
            sint: MESSAGE_SINT,
            monitor_pages: (0x1000, 0x2000),
            interrupt_page: 0x3000,
        }
    }

    /// Linux with Confidential VMBus detected (CPUID 0x40000082 bit 3).
    pub fn linux_confidential() -> Self {
        Self {
            confidential: true,
            ..Self::linux()
        }
    }

    /// Every version down to WS2008, as old kernels tried.
    pub fn all_versions() -> Self {
        Self {
            versions: Version::ALL.to_vec(),
            ..Self::linux()
        }
    }
}

/// An offer as the client recorded it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub relid: Relid,
    pub interface_id: Guid,
    pub instance_id: Guid,
    pub subchannel_index: u16,
    pub flags: OfferFlags,
    /// What to pass to HvSignalEvent for this channel.
    pub connection_id: u32,
    pub dedicated_interrupt: bool,
    /// The server rescinded it; the client owes RELID_RELEASED.
    pub rescinded: bool,
}

impl Offer {
    /// The ring buffer stays encrypted: do not make its pages host-visible.
    pub fn confidential_ring(&self) -> bool {
        self.flags.contains(OfferFlags::CONFIDENTIAL_RING_BUFFER)
    }

    pub fn confidential_external_memory(&self) -> bool {
        self.flags
            .contains(OfferFlags::CONFIDENTIAL_EXTERNAL_MEMORY)
    }

    fn from_message(o: &OfferChannel) -> Self {
        Self {
            relid: o.child_relid,
            interface_id: o.interface_id,
            instance_id: o.instance_id,
            subchannel_index: o.subchannel_index,
            flags: o.flags,
            connection_id: o.connection_id,
            dedicated_interrupt: o.is_dedicated_interrupt & 1 != 0,
            rescinded: false,
        }
    }
}

/// Something the server did on its own initiative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Offered(Offer),
    Rescinded(Relid),
    /// An offer dropped because it asked for confidentiality the connection lacks.
    RejectedOffer(Relid),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub version: Version,
    pub features: FeatureFlags,
    /// Where channel messages are posted now.
    pub message_connection_id: u32,
}

/// What OPENCHANNEL carries beyond the relid.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OpenParams {
    pub ring_gpadl: GpadlId,
    /// Start of the host-to-guest ring in the GPADL, in pages.
    pub downstream_page_offset: u32,
    pub target_vp: u32,
    pub user_data: UserDefinedData,
}

/// Linux starts GPADL handles here.
const FIRST_GPADL: u32 = 0xE1E10;

pub struct Client<T: Transport> {
    transport: T,
    config: ClientConfig,
    connection: Option<Connection>,
    offers: BTreeMap<Relid, Offer>,
    events: VecDeque<Event>,
    next_gpadl: u32,
    next_open_id: u32,
}

impl<T: Transport> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connection", &self.connection)
            .field("offers", &self.offers.len())
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T, config: ClientConfig) -> Self {
        Self {
            transport,
            config,
            connection: None,
            offers: BTreeMap::new(),
            events: VecDeque::new(),
            next_gpadl: FIRST_GPADL,
            next_open_id: 1,
        }
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn connection(&self) -> Option<Connection> {
        self.connection
    }

    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }

    pub fn offer(&self, relid: Relid) -> Option<&Offer> {
        self.offers.get(&relid)
    }

    /// Takes the next unsolicited event (hot-added or rescinded offers).
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Negotiates the newest version the server accepts, trying the configured list in
    /// order as Linux's `vmbus_connect` does.
    pub fn connect(&mut self) -> Result<Connection, ClientError> {
        self.connection = None;
        self.offers.clear();
        let versions = self.config.versions.clone();
        for version in versions {
            let contact = self.initiate_contact(version);
            // Linux posts INITIATE_CONTACT for 5.0+ to connection 4, older to 1.
            self.transport.post(
                version.message_connection_id(),
                OutgoingMessage::new(&contact).as_bytes(),
            )?;
            let (response, features) = self.wait_for("VERSION_RESPONSE", |m| match m {
                Message::VersionResponse(r, f) => Some((*r, *f)),
                _ => None,
            })?;
            if response.version_supported == 0 {
                continue;
            }
            if response.connection_state != ConnectionState::SUCCESSFUL {
                return Err(ClientError::ConnectionFailed(response.connection_state));
            }
            let requested = FeatureFlags(contact.feature_flags());
            let connection = Connection {
                version,
                // A 6.0 server reports what it granted; never more than was asked.
                features: features.unwrap_or(FeatureFlags::EMPTY) & requested,
                message_connection_id: if version >= Version::WIN10_V5 {
                    response.msg_conn_id
                } else {
                    MESSAGE_CONNECTION_ID
                },
            };
            self.connection = Some(connection);
            return Ok(connection);
        }
        Err(ClientError::NoVersion)
    }

    fn initiate_contact(&self, version: Version) -> InitiateContact {
        let c = &self.config;
        let info = if version >= Version::WIN10_V5 {
            let features = if version >= Version::V6_0 && c.confidential {
                FeatureFlags::CONFIDENTIAL_CHANNELS.bits()
            } else {
                0
            };
            InitiateContact::target_info(c.sint, 0, features)
        } else {
            c.interrupt_page
        };
        InitiateContact {
            version_requested: version.0,
            target_vcpu: if version >= Version::WIN8_1 {
                c.target_vp
            } else {
                0
            },
            interrupt_page_or_target_info: info,
            monitor_page1: c.monitor_pages.0,
            monitor_page2: c.monitor_pages.1,
        }
    }

    /// REQUESTOFFERS; returns the offers accepted (confidential offers without the
    /// negotiated feature are dropped and reported as [`Event::RejectedOffer`]).
    pub fn request_offers(&mut self) -> Result<Vec<Offer>, ClientError> {
        self.send(&RequestOffers {})?;
        self.wait_for("ALLOFFERS_DELIVERED", |m| {
            matches!(m, Message::AllOffersDelivered).then_some(())
        })?;
        Ok(self.offers.values().copied().collect())
    }

    /// Creates a GPADL over `pfns` as one range of whole pages, the way Linux's
    /// `vmbus_establish_gpadl` lays it out, and waits for GPADL_CREATED.
    pub fn create_gpadl(&mut self, relid: Relid, pfns: &[u64]) -> Result<GpadlId, ClientError> {
        let byte_count = u32::try_from(pfns.len())
            .ok()
            .and_then(|n| n.checked_mul(4096))
            .ok_or(ClientError::GpadlTooLarge)?;
        let mut words = Vec::with_capacity(pfns.len() + 1);
        words.push(gpa::range_header(byte_count, 0));
        words.extend_from_slice(pfns);
        self.create_gpadl_ranges(relid, 1, &words)
    }

    /// Creates a GPADL from raw range words (headers and page numbers).
    pub fn create_gpadl_ranges(
        &mut self,
        relid: Relid,
        range_count: u16,
        words: &[u64],
    ) -> Result<GpadlId, ClientError> {
        if !self.offers.contains_key(&relid) {
            return Err(ClientError::UnknownChannel(relid));
        }
        let range_buf_len =
            u16::try_from(words.len() * 8).map_err(|_| ClientError::GpadlTooLarge)?;
        let gpadl = GpadlId(self.next_gpadl);
        self.next_gpadl = self.next_gpadl.wrapping_add(1);
        for message in gpadl_messages(relid, gpadl, range_count, range_buf_len, words) {
            self.post(message.as_bytes())?;
        }
        let status = self.wait_for("GPADL_CREATED", |m| match m {
            Message::GpadlCreated(c) if c.child_relid == relid && c.gpadl == gpadl => {
                Some(c.status)
            }
            _ => None,
        })?;
        check_status("GPADL creation", status)?;
        Ok(gpadl)
    }

    pub fn teardown_gpadl(&mut self, relid: Relid, gpadl: GpadlId) -> Result<(), ClientError> {
        self.send(&GpadlTeardown {
            child_relid: relid,
            gpadl,
        })?;
        self.wait_for("GPADL_TORNDOWN", |m| match m {
            Message::GpadlTorndown(t) if t.gpadl == gpadl => Some(()),
            _ => None,
        })
    }

    pub fn open(&mut self, relid: Relid, params: &OpenParams) -> Result<(), ClientError> {
        if !self.offers.contains_key(&relid) {
            return Err(ClientError::UnknownChannel(relid));
        }
        let open_id = self.next_open_id;
        self.next_open_id = self.next_open_id.wrapping_add(1);
        self.send(&OpenChannel {
            child_relid: relid,
            open_id,
            ring_buffer_gpadl: params.ring_gpadl,
            target_vp: params.target_vp,
            downstream_ring_buffer_page_offset: params.downstream_page_offset,
            user_data: params.user_data,
        })?;
        let status = self.wait_for("OPENCHANNEL_RESULT", |m| match m {
            Message::OpenResult(r) if r.child_relid == relid && r.open_id == open_id => {
                Some(r.status)
            }
            _ => None,
        })?;
        check_status("open", status)
    }

    /// CLOSECHANNEL has no answer.
    pub fn close(&mut self, relid: Relid) -> Result<(), ClientError> {
        self.send(&CloseChannel { child_relid: relid })
    }

    /// Retargets a channel's interrupts; from 5.3 waits for the server's answer.
    pub fn modify(&mut self, relid: Relid, target_vp: u32) -> Result<(), ClientError> {
        self.send(&ModifyChannel {
            child_relid: relid,
            target_vp,
        })?;
        if self.version()? < Version::WIN10_V5_3 {
            return Ok(());
        }
        let status = self.wait_for("MODIFYCHANNEL_RESPONSE", |m| match m {
            Message::ModifyChannelResponse(r) if r.child_relid == relid => Some(r.status),
            _ => None,
        })?;
        check_status("modify", status)
    }

    /// Lets go of a (rescinded) relid.
    pub fn release(&mut self, relid: Relid) -> Result<(), ClientError> {
        self.send(&RelidReleased { child_relid: relid })?;
        self.offers.remove(&relid);
        Ok(())
    }

    /// UNLOAD; waits for UNLOAD_RESPONSE where the version has one.
    pub fn unload(&mut self) -> Result<(), ClientError> {
        let version = self.version()?;
        self.send(&Unload {})?;
        if version >= Version::WIN7 {
            self.wait_for("UNLOAD_RESPONSE", |m| {
                matches!(m, Message::UnloadResponse).then_some(())
            })?;
        }
        self.connection = None;
        self.offers.clear();
        Ok(())
    }

    /// Handles whatever the server sent unprompted; returns how many messages.
    pub fn poll(&mut self) -> Result<usize, ClientError> {
        let mut n = 0;
        while let Some(bytes) = self.transport.receive()? {
            let negotiated = self.negotiated();
            let message = parse(&bytes, negotiated).map_err(ClientError::Malformed)?;
            self.unsolicited(&message);
            n += 1;
        }
        Ok(n)
    }

    fn version(&self) -> Result<Version, ClientError> {
        self.connection
            .map(|c| c.version)
            .ok_or(ClientError::NotConnected)
    }

    fn negotiated(&self) -> Option<Negotiated> {
        self.connection.map(|c| Negotiated {
            version: c.version,
            features: c.features,
        })
    }

    fn send<M: VmbusMessage>(&mut self, body: &M) -> Result<(), ClientError> {
        self.post(OutgoingMessage::new(body).as_bytes())
    }

    fn post(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let connection = self.connection.ok_or(ClientError::NotConnected)?;
        self.transport
            .post(connection.message_connection_id, bytes)
            .map_err(ClientError::Transport)
    }

    /// Receives until `pick` accepts a message; anything else is an unsolicited
    /// message and handled as such.
    fn wait_for<R>(
        &mut self,
        what: &'static str,
        mut pick: impl FnMut(&Message<'_>) -> Option<R>,
    ) -> Result<R, ClientError> {
        loop {
            let bytes = self
                .transport
                .receive()?
                .ok_or(ClientError::NoResponse(what))?;
            let negotiated = self.negotiated();
            let message = parse(&bytes, negotiated).map_err(ClientError::Malformed)?;
            if let Some(r) = pick(&message) {
                return Ok(r);
            }
            self.unsolicited(&message);
        }
    }

    fn unsolicited(&mut self, message: &Message<'_>) {
        match message {
            Message::OfferChannel(o) => {
                let offer = Offer::from_message(o);
                if self.acceptable(&offer) {
                    self.offers.insert(offer.relid, offer);
                    self.events.push_back(Event::Offered(offer));
                } else {
                    self.events.push_back(Event::RejectedOffer(offer.relid));
                }
            }
            Message::RescindChannelOffer(r) => {
                if let Some(o) = self.offers.get_mut(&r.child_relid) {
                    o.rescinded = true;
                }
                self.events.push_back(Event::Rescinded(r.child_relid));
            }
            // Anything else arrived late or unasked; a guest ignores it.
            _ => {}
        }
    }

    /// Linux's `vmbus_onoffer` checks: external memory only with an encrypted ring,
    /// and either only on a 6.0 connection that negotiated confidential channels.
    fn acceptable(&self, offer: &Offer) -> bool {
        let ring = offer.confidential_ring();
        let external = offer.confidential_external_memory();
        if external && !ring {
            return false;
        }
        if ring || external {
            return self.connection.is_some_and(|c| {
                c.version >= Version::V6_0
                    && c.features.contains(FeatureFlags::CONFIDENTIAL_CHANNELS)
            });
        }
        true
    }
}

fn check_status(operation: &'static str, status: u32) -> Result<(), ClientError> {
    if status == 0 {
        Ok(())
    } else {
        Err(ClientError::Status { operation, status })
    }
}

/// Splits range words into a GPADL_HEADER and GPADL_BODY messages as Linux's
/// `create_gpadl_header` does: as many words as fit after each header.
pub fn gpadl_messages(
    relid: Relid,
    gpadl: GpadlId,
    range_count: u16,
    range_buf_len: u16,
    words: &[u64],
) -> Vec<OutgoingMessage> {
    let to_bytes = |w: &[u64]| -> Vec<u8> { w.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let header = GpadlHeader {
        child_relid: relid,
        gpadl,
        range_buf_len,
        range_count,
    };
    let first = words.len().min(GpadlHeader::MAX_DATA / 8);
    let mut out = Vec::new();
    if let Some(m) = OutgoingMessage::with_tail(&header, &to_bytes(&words[..first])) {
        out.push(m);
    }
    for chunk in words[first..].chunks(GpadlBody::MAX_DATA / 8) {
        let body = GpadlBody {
            message_number: 0,
            gpadl,
        };
        if let Some(m) = OutgoingMessage::with_tail(&body, &to_bytes(chunk)) {
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests;
