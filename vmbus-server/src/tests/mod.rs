//! Server tests against a recording fake environment, one guest action at a time.
//! After every step the harness checks the server's invariants and that what the
//! fake saw (mapped GPADLs, open channels) matches the server's view.

mod gpadl;
mod malformed;
mod negotiation;
mod offers;
mod open;

use std::collections::{BTreeMap, VecDeque};
use std::string::{String, ToString};
use std::vec::Vec;

use vmbus_protocol::gpa;
use vmbus_protocol::messages::*;
use vmbus_protocol::*;
use zerocopy::FromBytes;

use crate::*;

/// Guest RAM in the tests: 0x100..0x10100 (256 MiB from 1 MiB).
pub const RAM: PfnRange = PfnRange {
    start: 0x100,
    count: 0x10000,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRecord {
    pub open_id: u32,
    pub ring_gpadl: GpadlId,
    pub ring_pfns: Vec<u64>,
    pub downstream_page_offset: u32,
    pub target_vp: u32,
    pub target_sint: u8,
    pub paravisor_synic: bool,
    pub user_data: UserDefinedData,
    pub signal_connection_id: u32,
    pub event_flag: u32,
    pub confidentiality: Confidentiality,
    pub version: Version,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Map(Relid, GpadlId),
    Unmap(Relid, GpadlId),
    Open(Relid),
    Close(Relid),
    Modify(Relid, u32),
    Connected(Version),
    Disconnected,
}

#[derive(Default)]
pub struct TestEnv {
    pub sent: VecDeque<(MessageTarget, Vec<u8>)>,
    /// While set, the SynIC slot is full.
    pub busy: bool,
    pub signals: usize,
    pub mapped: BTreeMap<GpadlId, (Relid, Vec<u64>, Confidentiality)>,
    pub open: BTreeMap<Relid, OpenRecord>,
    pub events: Vec<Event>,
    pub logs: Vec<(Level, String)>,
    pub fail_map: Option<Status>,
    pub fail_open: Option<Status>,
    pub fail_modify: Option<Status>,
    pub connection: Option<ConnectionInfo>,
}

/// What the env does first when asked to set something up: fail with the status
/// a test injected, else check the server never sets `key` up twice.
fn admit<K: Ord + core::fmt::Display, V>(
    fail: Option<Status>,
    done: &BTreeMap<K, V>,
    key: K,
    what: &str,
) -> Result<(), Status> {
    if let Some(status) = fail {
        return Err(status);
    }
    assert!(!done.contains_key(&key), "{key} {what} twice");
    Ok(())
}

impl ServerEnv for TestEnv {
    fn post_message(&mut self, target: MessageTarget, message: &OutgoingMessage) -> bool {
        if self.busy {
            return false;
        }
        self.sent.push_back((target, message.as_bytes().to_vec()));
        true
    }

    fn signal(&mut self) {
        self.signals += 1;
    }

    fn map_gpadl(&mut self, m: &GpadlMapping<'_>) -> Result<(), Status> {
        admit(self.fail_map, &self.mapped, m.gpadl, "mapped")?;
        self.mapped.insert(
            m.gpadl,
            (m.relid, m.ranges.pfns().collect(), m.confidentiality),
        );
        self.events.push(Event::Map(m.relid, m.gpadl));
        Ok(())
    }

    fn unmap_gpadl(&mut self, relid: Relid, gpadl: GpadlId) {
        let (owner, ..) = self.mapped.remove(&gpadl).expect("unmap of unmapped GPADL");
        assert_eq!(owner, relid);
        self.events.push(Event::Unmap(relid, gpadl));
    }

    fn open_channel(&mut self, r: &OpenRequest<'_>) -> Result<(), Status> {
        admit(self.fail_open, &self.open, r.relid, "opened")?;
        self.open.insert(
            r.relid,
            OpenRecord {
                open_id: r.open_id,
                ring_gpadl: r.ring_gpadl,
                ring_pfns: r.ring.pfns().collect(),
                downstream_page_offset: r.downstream_page_offset,
                target_vp: r.target_vp,
                target_sint: r.target_sint,
                paravisor_synic: r.paravisor_synic,
                user_data: *r.user_data,
                signal_connection_id: r.signal_connection_id,
                event_flag: r.event_flag,
                confidentiality: r.confidentiality,
                version: r.version,
            },
        );
        self.events.push(Event::Open(r.relid));
        Ok(())
    }

    fn close_channel(&mut self, relid: Relid) {
        assert!(
            self.open.remove(&relid).is_some(),
            "close of closed {relid}"
        );
        self.events.push(Event::Close(relid));
    }

    fn modify_channel(&mut self, relid: Relid, target_vp: u32) -> Result<(), Status> {
        if let Some(status) = self.fail_modify {
            return Err(status);
        }
        self.open
            .get_mut(&relid)
            .expect("modify of closed channel")
            .target_vp = target_vp;
        self.events.push(Event::Modify(relid, target_vp));
        Ok(())
    }

    fn connection_changed(&mut self, connection: Option<&ConnectionInfo>) {
        self.connection = connection.copied();
        self.events.push(match connection {
            Some(c) => Event::Connected(c.version),
            None => Event::Disconnected,
        });
    }

    fn log(&mut self, level: Level, args: core::fmt::Arguments<'_>) {
        self.logs.push((level, args.to_string()));
    }
}

/// Everything a test may expect to read back from the server.
pub const ANY: Option<Negotiated> = Some(Negotiated {
    version: Version::V6_0,
    features: FeatureFlags(u32::MAX),
});

pub fn bytes<T: VmbusMessage>(body: &T) -> Vec<u8> {
    OutgoingMessage::new(body).as_bytes().to_vec()
}

pub fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub fn contact(version: Version, target_info: u64) -> InitiateContact {
    InitiateContact {
        version_requested: version.0,
        target_vcpu: 0,
        interrupt_page_or_target_info: target_info,
        monitor_page1: 0x1000,
        monitor_page2: 0x2000,
    }
}

/// What Linux puts in INITIATE_CONTACT for `version` (SINT 2, VTL 0, features from 6.0).
pub fn linux_contact(version: Version, features: FeatureFlags) -> InitiateContact {
    let info = if version >= Version::WIN10_V5 {
        InitiateContact::default_target_info(if version >= Version::V6_0 {
            features.bits()
        } else {
            0
        })
    } else {
        0x3000 // the interrupt page GPA
    };
    contact(version, info)
}

/// `c` with only the monitor pages whose bit is set in `pages` (1: the first, 2:
/// the second); the others are 0, not given.
pub fn only_monitor_pages(mut c: InitiateContact, pages: u8) -> InitiateContact {
    if pages & 1 == 0 {
        c.monitor_page1 = 0;
    }
    if pages & 2 == 0 {
        c.monitor_page2 = 0;
    }
    c
}

pub struct Harness {
    pub server: Server,
    pub env: TestEnv,
    /// The connection id the guest posts to.
    pub conn_id: u32,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self {
            server: Server::new(config).expect("valid config"),
            env: TestEnv::default(),
            conn_id: MESSAGE_CONNECTION_ID_4,
        }
    }

    pub fn config() -> Config {
        let mut c = Config::new(4, std::vec![RAM]);
        c.confidential = true;
        c
    }

    pub fn default() -> Self {
        Self::new(Self::config())
    }

    /// Sends raw bytes and checks consistency afterwards.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), MessageError> {
        let r = self
            .server
            .handle_message(&mut self.env, self.conn_id, bytes);
        self.check();
        r
    }

    pub fn send<T: VmbusMessage>(&mut self, body: &T) -> Result<(), MessageError> {
        self.raw(&bytes(body))
    }

    pub fn check(&self) {
        self.server.check_invariants().expect("server invariants");
        let server_gpadls: BTreeMap<GpadlId, Relid> = self.server.gpadls().collect();
        let env_gpadls: BTreeMap<GpadlId, Relid> = self
            .env
            .mapped
            .iter()
            .map(|(&g, (r, ..))| (g, *r))
            .collect();
        assert_eq!(server_gpadls, env_gpadls, "mapped GPADLs diverge");
        for relid in 1..=MAX_RELID {
            let open = matches!(
                self.server.channel_state(Relid(relid)),
                Some(ChannelState::Open { .. })
            );
            assert_eq!(
                open,
                self.env.open.contains_key(&Relid(relid)),
                "relid {relid}"
            );
        }
        assert_eq!(self.env.connection.as_ref(), self.server.connection());
    }

    /// Pops the next message the guest received.
    pub fn next(&mut self) -> (MessageTarget, Vec<u8>) {
        self.env.sent.pop_front().expect("a message for the guest")
    }

    pub fn next_message(&mut self) -> Message<'static> {
        let (_, b) = self.next();
        let leaked: &'static [u8] = Vec::leak(b);
        parse(leaked, ANY).expect("server sent a valid message")
    }

    pub fn expect<T: VmbusMessage + core::fmt::Debug>(&mut self) -> T {
        let (_, b) = self.next();
        let (header, rest) = MessageHeader::read_from_prefix(&b).expect("header");
        assert_eq!(header.message_type, T::TYPE, "unexpected message");
        T::read_from_prefix(rest).expect("body").0
    }

    pub fn assert_quiet(&self) {
        assert!(
            self.env.sent.is_empty(),
            "unexpected messages: {:?}",
            self.env
                .sent
                .iter()
                .map(|(_, b)| parse(b, ANY).map(|m| m.message_type()))
                .collect::<Vec<_>>()
        );
    }

    /// Sends `body` before any contact: it is dropped unanswered.
    pub fn assert_needs_contact<T: VmbusMessage>(&mut self, body: &T) {
        assert_eq!(
            self.send(body),
            Err(MessageError::Parse(ParseError::NotConnected(T::TYPE)))
        );
        self.assert_quiet();
    }

    /// Negotiates `version` as Linux would ask for it and returns the response.
    pub fn connect_with(&mut self, version: Version, features: FeatureFlags) -> VersionResponse {
        self.conn_id = version.message_connection_id();
        self.send(&linux_contact(version, features))
            .expect("contact accepted");
        let (_, b) = self.next();
        match parse(&b, None) {
            Ok(Message::VersionResponse(r, _)) => {
                assert_eq!(r.version_supported, 1);
                r
            }
            other => panic!("expected a version response, got {other:?}"),
        }
    }

    pub fn connect(&mut self, version: Version) {
        self.connect_with(version, FeatureFlags::CONFIDENTIAL_CHANNELS);
    }

    /// REQUESTOFFERS; returns the offers up to ALLOFFERS_DELIVERED.
    pub fn request_offers(&mut self) -> Vec<OfferChannel> {
        self.send(&RequestOffers {}).expect("offers requested");
        let mut offers = Vec::new();
        loop {
            match self.next_message() {
                Message::OfferChannel(o) => offers.push(o),
                Message::AllOffersDelivered => return offers,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub fn offer(&mut self, instance: u32) -> Relid {
        let r = self
            .server
            .offer(&mut self.env, device(instance))
            .expect("offer");
        self.check();
        r
    }

    /// Connects at 6.0 with confidential channels and enumerates one device.
    pub fn with_channel() -> (Self, Relid) {
        Self::with_channel_at(Version::V6_0)
    }

    /// Connects at `version` (confidential channels asked for) and enumerates one
    /// device.
    pub fn with_channel_at(version: Version) -> (Self, Relid) {
        let mut h = Self::default();
        let relid = h.offer(1);
        h.connect(version);
        assert_eq!(h.request_offers().len(), 1);
        (h, relid)
    }

    /// Connects at 6.0 with one device offered but not yet enumerated; returns the
    /// relids the guest holds no reference to: that device's and one never offered.
    pub fn with_unheld_relids() -> (Self, [Relid; 2]) {
        let mut h = Self::default();
        let unsent = h.offer(1);
        h.connect(Version::V6_0);
        (h, [unsent, Relid(77)])
    }

    /// Revokes `relid`, which the guest holds, and takes the RESCIND it is told.
    pub fn revoke(&mut self, relid: Relid) {
        self.server.revoke(&mut self.env, relid).expect("revoke");
        let _: RescindChannelOffer = self.expect();
    }

    /// Sends a GPADL the way Linux does: one range of `pfns.len()` pages, header then
    /// as many bodies as needed. Returns the GPADL_CREATED status.
    pub fn gpadl(&mut self, relid: Relid, id: GpadlId, pfns: &[u64]) -> u32 {
        let messages = linux_gpadl_messages(relid, id, pfns);
        let last = messages.len() - 1;
        for (i, m) in messages.iter().enumerate() {
            let r = self.raw(m);
            if i < last {
                assert_eq!(r, Ok(()), "partial GPADL message {i}");
                self.assert_quiet();
            }
        }
        let created: GpadlCreated = self.expect();
        assert_eq!((created.child_relid, created.gpadl), (relid, id));
        created.status
    }

    /// A ring GPADL of `pages` consecutive pages from `first`.
    pub fn ring_gpadl(&mut self, relid: Relid, id: GpadlId, first: u64, pages: u64) {
        let pfns: Vec<u64> = (first..first + pages).collect();
        assert_eq!(self.gpadl(relid, id, &pfns), status::STATUS_SUCCESS);
    }

    pub fn open(&mut self, relid: Relid, gpadl: GpadlId, offset: u32) -> u32 {
        let _ = self.send(&open_msg(relid, gpadl, offset));
        let r: OpenResult = self.expect();
        assert_eq!(r.child_relid, relid);
        assert_eq!(r.open_id, 0x77);
        r.status
    }

    /// A channel opened on an 8-page ring (4 + 4).
    pub fn with_open_channel() -> (Self, Relid, GpadlId) {
        Self::with_open_channel_at(Version::V6_0)
    }

    /// [`Self::with_open_channel`] on a connection at `version`.
    pub fn with_open_channel_at(version: Version) -> (Self, Relid, GpadlId) {
        let (mut h, relid) = Self::with_channel_at(version);
        let g = GpadlId(0xe1e10);
        h.ring_gpadl(relid, g, 0x1000, 8);
        assert_eq!(h.open(relid, g, 4), status::STATUS_SUCCESS);
        (h, relid, g)
    }
}

/// What [`Server::channel_state`] says of a channel open on `ring_gpadl`.
pub fn opened(ring_gpadl: GpadlId, target_vp: u32) -> Option<ChannelState> {
    Some(ChannelState::Open {
        ring_gpadl,
        target_vp,
    })
}

pub fn device(instance: u32) -> OfferParams {
    OfferParams::device(
        ids::interface::STORAGE,
        Guid::from_fields(instance, 0, 0, [0; 8]),
    )
}

pub fn open_msg(relid: Relid, gpadl: GpadlId, offset: u32) -> OpenChannel {
    OpenChannel {
        child_relid: relid,
        open_id: 0x77,
        ring_buffer_gpadl: gpadl,
        target_vp: 1,
        downstream_ring_buffer_page_offset: offset,
        user_data: [0x5a; 120],
    }
}

/// Linux's create_gpadl_header: 26 page numbers fit in the header, 28 in each body.
pub fn linux_gpadl_messages(relid: Relid, id: GpadlId, pfns: &[u64]) -> Vec<Vec<u8>> {
    let byte_count = (pfns.len() as u32) * 4096;
    let mut words = std::vec![gpa::range_header(byte_count, 0)];
    words.extend_from_slice(pfns);
    let header = GpadlHeader {
        child_relid: relid,
        gpadl: id,
        range_buf_len: (words.len() * 8) as u16,
        range_count: 1,
    };
    let first = words.len().min(GpadlHeader::MAX_DATA / 8);
    let mut out = std::vec![
        OutgoingMessage::with_tail(&header, &words_to_bytes(&words[..first]))
            .expect("fits")
            .as_bytes()
            .to_vec()
    ];
    for chunk in words[first..].chunks(GpadlBody::MAX_DATA / 8) {
        let body = GpadlBody {
            message_number: 0,
            gpadl: id,
        };
        out.push(
            OutgoingMessage::with_tail(&body, &words_to_bytes(chunk))
                .expect("fits")
                .as_bytes()
                .to_vec(),
        );
    }
    out
}

#[test]
fn linux_gpadl_split_matches_the_kernels_arithmetic() {
    assert_eq!(GpadlHeader::MAX_DATA / 8 - 1, 26);
    assert_eq!(GpadlBody::MAX_DATA / 8, 28);
    let pfns: Vec<u64> = (0..26).collect();
    assert_eq!(linux_gpadl_messages(Relid(1), GpadlId(1), &pfns).len(), 1);
    let pfns: Vec<u64> = (0..27).collect();
    assert_eq!(linux_gpadl_messages(Relid(1), GpadlId(1), &pfns).len(), 2);
    let pfns: Vec<u64> = (0..26 + 28 * 3).collect();
    assert_eq!(linux_gpadl_messages(Relid(1), GpadlId(1), &pfns).len(), 4);
}
