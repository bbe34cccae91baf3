//! The client against a real server core in-process (the loopback transport), and
//! against scripted servers for the paths a correct server never takes.

use std::prelude::rust_2021::*;
use std::vec;

use super::loopback::Loopback;
use super::*;
use vmbus_protocol::ids::interface;
use vmbus_protocol::status::*;
use vmbus_protocol::{MessageType, HEADER_SIZE, MESSAGE_CONNECTION_ID_4};
use vmbus_server::{Config, OfferParams, OfferSource, PfnRange, Server};

const RAM: PfnRange = PfnRange {
    start: 0x100,
    count: 0x10000,
};

fn server(confidential: bool, max_version: Version) -> Server {
    let mut config = Config::new(2, vec![RAM]);
    config.confidential = confidential;
    config.max_version = max_version;
    Server::new(config).expect("config")
}

/// A confidential paravisor with a storage device (its own VSP) and a relayed NIC.
fn paravisor(max_version: Version) -> Loopback {
    let mut lb = Loopback::new(server(true, max_version));
    let storage = OfferParams::device(interface::STORAGE, Guid::from_fields(1, 0, 0, [0; 8]));
    let mut nic = OfferParams::device(interface::NETWORK, Guid::from_fields(2, 0, 0, [0; 8]));
    nic.source = OfferSource::Relay;
    lb.server.offer(&mut lb.env, storage).expect("offer");
    lb.server.offer(&mut lb.env, nic).expect("offer");
    lb
}

fn posted_types(c: &mut Client<Loopback>) -> Vec<(u32, MessageType)> {
    c.transport()
        .posted
        .iter()
        .map(|(conn, b)| {
            let mut t = [0u8; 4];
            t.copy_from_slice(&b[..4]);
            (*conn, MessageType(u32::from_le_bytes(t)))
        })
        .collect()
}

fn contacts(c: &mut Client<Loopback>) -> Vec<(u32, Version)> {
    c.transport()
        .posted
        .iter()
        .filter(|(_, b)| b[..4] == 14u32.to_le_bytes())
        .map(|(conn, b)| {
            let mut v = [0u8; 4];
            v.copy_from_slice(&b[HEADER_SIZE..HEADER_SIZE + 4]);
            (*conn, Version(u32::from_le_bytes(v)))
        })
        .collect()
}

fn storage_relid(offers: &[Offer]) -> Relid {
    offers
        .iter()
        .find(|o| o.interface_id == interface::STORAGE)
        .expect("storage offered")
        .relid
}

/// Ring GPADL of `pages` pages and an open with the rings split in half.
fn open_ring(c: &mut Client<Loopback>, relid: Relid, first: u64, pages: u64) -> GpadlId {
    let pfns: Vec<u64> = (first..first + pages).collect();
    let gpadl = c.create_gpadl(relid, &pfns).expect("ring GPADL");
    c.open(
        relid,
        &OpenParams {
            ring_gpadl: gpadl,
            downstream_page_offset: (pages / 2) as u32,
            target_vp: 1,
            user_data: [0; 120],
        },
    )
    .expect("open");
    gpadl
}

#[test]
fn a_confidential_6_0_guest_gets_private_rings_for_paravisor_devices() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux_confidential());
    let conn = c.connect().expect("connect");
    assert_eq!(conn.version, Version::V6_0);
    assert_eq!(conn.features, FeatureFlags::CONFIDENTIAL_CHANNELS);
    assert_eq!(conn.message_connection_id, MESSAGE_CONNECTION_ID_4);
    let offers = c.request_offers().expect("offers");
    assert_eq!(offers.len(), 2);
    let storage = offers
        .iter()
        .find(|o| o.interface_id == interface::STORAGE)
        .unwrap();
    let nic = offers
        .iter()
        .find(|o| o.interface_id == interface::NETWORK)
        .unwrap();
    assert!(storage.confidential_ring() && !storage.confidential_external_memory());
    assert!(
        !nic.confidential_ring(),
        "relayed host devices use shared memory"
    );

    let relid = storage.relid;
    open_ring(&mut c, relid, 0x1000, 8);
    let opened = &c.transport().env.open[&relid];
    assert!(opened.confidentiality.ring);
    assert_eq!(opened.downstream_page_offset, 4);
    assert_eq!(opened.signal_connection_id, storage.connection_id);
    // Everything after contact went to the connection the server named.
    assert!(posted_types(&mut c).iter().all(|(conn, _)| *conn == 4));
}

#[test]
fn a_5_3_guest_on_the_same_paravisor_gets_the_pre_6_0_offers() {
    // Debian 6.1 / 6.12 kernels stop at 5.3.
    let mut config = ClientConfig::linux_confidential();
    config.versions.retain(|&v| v <= Version::WIN10_V5_3);
    let mut c = Client::new(paravisor(Version::V6_0), config);
    let conn = c.connect().expect("connect");
    assert_eq!(conn.version, Version::WIN10_V5_3);
    assert_eq!(conn.features, FeatureFlags::EMPTY);
    let offers = c.request_offers().expect("offers");
    assert!(offers
        .iter()
        .all(|o| o.flags.intersection(OfferFlags::CONFIDENTIAL).is_empty()));
    let relid = storage_relid(&offers);
    open_ring(&mut c, relid, 0x1000, 8);
    assert!(!c.transport().env.open[&relid].confidentiality.ring);
}

#[test]
fn the_client_steps_down_like_linux_against_an_older_server() {
    let mut c = Client::new(
        paravisor(Version::WIN10_V5_2),
        ClientConfig::linux_confidential(),
    );
    let conn = c.connect().expect("connect");
    assert_eq!(conn.version, Version::WIN10_V5_2);
    assert_eq!(
        contacts(&mut c),
        [
            (4, Version::V6_0),
            (4, Version::WIN10_V5_3),
            (4, Version::WIN10_V5_2)
        ]
    );
    // Confidential offers need 6.0: none here.
    let offers = c.request_offers().expect("offers");
    assert!(offers.iter().all(|o| !o.confidential_ring()));
}

#[test]
fn old_versions_post_on_connection_1_down_to_ws2008() {
    let mut c = Client::new(paravisor(Version::WS2008), ClientConfig::all_versions());
    let conn = c.connect().expect("connect");
    assert_eq!(conn.version, Version::WS2008);
    assert_eq!(conn.message_connection_id, MESSAGE_CONNECTION_ID);
    let tried = contacts(&mut c);
    assert_eq!(tried.len(), Version::ALL.len());
    for (conn_id, v) in tried {
        assert_eq!(conn_id, v.message_connection_id(), "{v}");
    }
    assert_eq!(c.request_offers().expect("offers").len(), 2);
    c.unload()
        .expect("WS2008 unload has no response to wait for");
}

#[test]
fn no_acceptable_version_is_an_error() {
    let mut config = ClientConfig::linux();
    config.versions = vec![Version(0x0007_0000), Version(0x0005_0009)];
    let mut c = Client::new(paravisor(Version::V6_0), config);
    assert_eq!(c.connect(), Err(ClientError::NoVersion));
}

#[test]
fn a_multi_message_gpadl_is_created() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux_confidential());
    c.connect().expect("connect");
    let relid = storage_relid(&c.request_offers().expect("offers"));
    let before = c.transport().posted.len();
    // 26 page numbers in the header, 28 in each body: 100 pages take 4 messages.
    let pfns: Vec<u64> = (0x2000..0x2000 + 100).collect();
    let gpadl = c.create_gpadl(relid, &pfns).expect("GPADL");
    let sent = &posted_types(&mut c)[before..];
    assert_eq!(
        sent.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        [
            MessageType::GPADL_HEADER,
            MessageType::GPADL_BODY,
            MessageType::GPADL_BODY,
            MessageType::GPADL_BODY
        ]
    );
    let (owner, mapped, confidentiality) = &c.transport().env.mapped[&gpadl];
    assert_eq!(*owner, relid);
    assert_eq!(mapped, &pfns);
    assert!(confidentiality.ring);
    assert_eq!(gpadl, GpadlId(0xE1E10), "Linux's first handle");
    c.teardown_gpadl(relid, gpadl).expect("teardown");
    assert!(c.transport().env.mapped.is_empty());
}

#[test]
fn gpadl_pages_outside_guest_memory_are_refused() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux());
    c.connect().expect("connect");
    let relid = storage_relid(&c.request_offers().expect("offers"));
    let pfns: Vec<u64> = (RAM.start + RAM.count - 1..RAM.start + RAM.count + 40).collect();
    assert_eq!(
        c.create_gpadl(relid, &pfns),
        Err(ClientError::Status {
            operation: "GPADL creation",
            status: STATUS_INVALID_PARAMETER
        })
    );
}

#[test]
fn open_close_and_reopen() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux_confidential());
    c.connect().expect("connect");
    let relid = storage_relid(&c.request_offers().expect("offers"));
    let gpadl = open_ring(&mut c, relid, 0x1000, 16);
    assert_eq!(c.transport().env.open[&relid].ring_pfns.len(), 16);
    c.close(relid).expect("close");
    assert!(c.transport().env.closed.contains(&relid));
    // Linux tears down the ring after closing; a fresh ring opens again.
    c.teardown_gpadl(relid, gpadl).expect("teardown");
    open_ring(&mut c, relid, 0x3000, 4);
    assert!(c.transport().env.open.contains_key(&relid));
}

#[test]
fn a_vsp_refusing_to_open_fails_the_open() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux());
    c.connect().expect("connect");
    let relid = storage_relid(&c.request_offers().expect("offers"));
    let pfns: Vec<u64> = (0x1000..0x1004).collect();
    let gpadl = c.create_gpadl(relid, &pfns).expect("GPADL");
    c.transport().env.fail_open = Some(vmbus_server::Status(STATUS_INSUFFICIENT_RESOURCES));
    let params = OpenParams {
        ring_gpadl: gpadl,
        downstream_page_offset: 2,
        target_vp: 0,
        user_data: [0; 120],
    };
    assert_eq!(
        c.open(relid, &params),
        Err(ClientError::Status {
            operation: "open",
            status: STATUS_INSUFFICIENT_RESOURCES
        })
    );
}

#[test]
fn modify_waits_for_the_answer_from_5_3_only() {
    for (version, answered) in [(Version::WIN10_V5_3, true), (Version::WIN10_V5_2, false)] {
        let mut c = Client::new(paravisor(version), ClientConfig::linux());
        c.connect().expect("connect");
        let relid = storage_relid(&c.request_offers().expect("offers"));
        open_ring(&mut c, relid, 0x1000, 4);
        let before = c.transport().env.sent_count;
        c.modify(relid, 0).expect("modify");
        assert_eq!(c.transport().env.open[&relid].target_vp, 0);
        let answers = c.transport().env.sent_count - before;
        assert_eq!(answers, usize::from(answered), "{version}");
        assert!(
            c.transport().env.inbox.is_empty(),
            "{version}: nothing left unread"
        );
    }
}

#[test]
fn hot_added_and_rescinded_offers_arrive_as_events() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux_confidential());
    c.connect().expect("connect");
    let relid = storage_relid(&c.request_offers().expect("offers"));
    while c.next_event().is_some() {}
    let gpadl = open_ring(&mut c, relid, 0x1000, 4);

    let lb = c.transport();
    let extra = OfferParams::device(interface::STORAGE, Guid::from_fields(9, 0, 0, [0; 8]));
    let added = lb.server.offer(&mut lb.env, extra).expect("hot add");
    lb.server.revoke(&mut lb.env, relid).expect("revoke");
    assert!(!lb.env.open.contains_key(&relid), "the VSP closed first");
    assert_eq!(c.poll().expect("poll"), 2);
    assert!(matches!(c.next_event(), Some(Event::Offered(o)) if o.relid == added));
    assert_eq!(c.next_event(), Some(Event::Rescinded(relid)));
    assert!(c.offer(relid).expect("still known").rescinded);

    // Linux's cleanup of a rescinded channel.
    c.close(relid).expect("close");
    c.teardown_gpadl(relid, gpadl).expect("teardown");
    c.release(relid).expect("release");
    assert_eq!(c.transport().server.channel_state(relid), None);
}

#[test]
fn unload_and_reconnect_keep_relids() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux_confidential());
    c.connect().expect("connect");
    let relids = |c: &mut Client<_>| -> Vec<Relid> {
        let offers = c.request_offers().expect("offers");
        offers.iter().map(|o| o.relid).collect()
    };
    let first = relids(&mut c);
    let relid = first[0];
    open_ring(&mut c, relid, 0x1000, 4);
    c.unload().expect("unload");
    assert!(c.transport().env.open.is_empty());
    assert!(c.transport().env.mapped.is_empty());
    c.connect().expect("reconnect");
    let again = relids(&mut c);
    assert_eq!(first, again);
    open_ring(&mut c, relid, 0x1000, 4);
}

/// A server that plays back canned answers.
struct Scripted {
    answers: VecDeque<Vec<u8>>,
}

impl Transport for Scripted {
    fn post(&mut self, _: u32, _: &[u8]) -> Result<(), TransportError> {
        Ok(())
    }

    fn receive(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.answers.pop_front())
    }
}

fn bytes<M: VmbusMessage>(m: &M) -> Vec<u8> {
    OutgoingMessage::new(m).as_bytes().to_vec()
}

fn accept(msg_conn_id: u32) -> Vec<u8> {
    bytes(&VersionResponse {
        version_supported: 1,
        connection_state: ConnectionState::SUCCESSFUL,
        padding: 0,
        msg_conn_id,
    })
}

fn offer_with(relid: u32, flags: OfferFlags) -> Vec<u8> {
    use zerocopy::FromZeros;
    let mut o = OfferChannel::new_zeroed();
    o.child_relid = Relid(relid);
    o.flags = flags;
    bytes(&o)
}

#[test]
fn confidential_offers_without_the_feature_are_dropped_like_linux_does() {
    let answers = VecDeque::from(vec![
        accept(4),
        offer_with(1, OfferFlags::CONFIDENTIAL_RING_BUFFER),
        offer_with(2, OfferFlags::CONFIDENTIAL_EXTERNAL_MEMORY),
        offer_with(3, OfferFlags::EMPTY),
        bytes(&AllOffersDelivered {}),
    ]);
    let mut config = ClientConfig::linux();
    config.versions = vec![Version::WIN10_V5_3];
    let mut c = Client::new(Scripted { answers }, config);
    c.connect().expect("connect");
    let offers = c.request_offers().expect("offers");
    assert_eq!(
        offers.iter().map(|o| o.relid).collect::<Vec<_>>(),
        [Relid(3)]
    );
    assert_eq!(c.next_event(), Some(Event::RejectedOffer(Relid(1))));
    assert_eq!(c.next_event(), Some(Event::RejectedOffer(Relid(2))));
}

#[test]
fn external_memory_without_a_private_ring_is_dropped_even_on_6_0() {
    let answers = VecDeque::from(vec![
        bytes(&VersionResponse2 {
            response: VersionResponse {
                version_supported: 1,
                connection_state: ConnectionState::SUCCESSFUL,
                padding: 0,
                msg_conn_id: 4,
            },
            supported_features: FeatureFlags::CONFIDENTIAL_CHANNELS.bits(),
        }),
        offer_with(1, OfferFlags::CONFIDENTIAL_EXTERNAL_MEMORY),
        offer_with(2, OfferFlags::CONFIDENTIAL),
        bytes(&AllOffersDelivered {}),
    ]);
    let mut c = Client::new(Scripted { answers }, ClientConfig::linux_confidential());
    assert_eq!(
        c.connect().expect("connect").features,
        FeatureFlags::CONFIDENTIAL_CHANNELS
    );
    let offers = c.request_offers().expect("offers");
    assert_eq!(
        offers.iter().map(|o| o.relid).collect::<Vec<_>>(),
        [Relid(2)]
    );
}

#[test]
fn a_silent_or_garbled_server_is_reported() {
    let mut c = Client::new(
        Scripted {
            answers: VecDeque::new(),
        },
        ClientConfig::linux(),
    );
    assert_eq!(
        c.connect(),
        Err(ClientError::NoResponse("VERSION_RESPONSE"))
    );
    let mut c = Client::new(
        Scripted {
            answers: VecDeque::from(vec![vec![15, 0, 0, 0, 0, 0, 0, 0, 1]]),
        },
        ClientConfig::linux(),
    );
    assert!(matches!(c.connect(), Err(ClientError::Malformed(_))));
    let failed = VersionResponse {
        version_supported: 1,
        connection_state: ConnectionState::FAILED_LOW_RESOURCES,
        padding: 0,
        msg_conn_id: 4,
    };
    let mut c = Client::new(
        Scripted {
            answers: VecDeque::from(vec![bytes(&failed)]),
        },
        ClientConfig::linux(),
    );
    assert_eq!(
        c.connect(),
        Err(ClientError::ConnectionFailed(
            ConnectionState::FAILED_LOW_RESOURCES
        ))
    );
}

#[test]
fn operations_before_connecting_are_refused() {
    let mut c = Client::new(paravisor(Version::V6_0), ClientConfig::linux());
    assert_eq!(c.request_offers(), Err(ClientError::NotConnected));
    assert_eq!(c.unload(), Err(ClientError::NotConnected));
    assert_eq!(
        c.create_gpadl(Relid(1), &[0x100]),
        Err(ClientError::UnknownChannel(Relid(1)))
    );
}

#[test]
fn gpadl_messages_split_like_linux() {
    let words: Vec<u64> = (0..1 + 26 + 28 + 1).collect();
    let msgs = gpadl_messages(Relid(1), GpadlId(2), 1, (words.len() * 8) as u16, &words);
    let lens: Vec<usize> = msgs.iter().map(|m| m.as_bytes().len()).collect();
    assert_eq!(lens, [20 + 27 * 8, 16 + 28 * 8, 16 + 8]);
}
