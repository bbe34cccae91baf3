//! netvsp against a driver that does what Linux's hv_netvsc does, over real rings
//! in guest memory: bring-up at every version, the data path through a loopback,
//! section reuse, link indications, and hostile packets answered with the
//! protocol's failure status while the NIC keeps serving.

#![allow(clippy::unwrap_used)]

use netvsp::backend::Loopback;
use netvsp::testing::{self, Client, GuestLayout, Host};
use netvsp::Config;
use netvsp_protocol::nvsp::{self, u32le, Message, MessageType, Status, Version};
use netvsp_protocol::rndis;
use vmbus_ring::PAGE_SIZE;

const MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03];

fn setup(receive_pages: usize) -> (Host, Client) {
    testing::guest(
        GuestLayout::new(receive_pages, 16),
        Config::new(MAC),
        Box::new(Loopback::new(1 << 16)),
    )
}

fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&seq.to_le_bytes());
    f.resize(len, seq as u8);
    f
}

#[test]
fn bring_up_at_every_version_linux_tries() {
    for max in Version::SUPPORTED {
        let (mut host, mut c) = setup(64);
        let info = c.bring_up(max, &mut host.pump());
        let info = info.unwrap_or_else(|e| panic!("{max:?}: {e:?}"));
        assert_eq!(info.version, max);
        assert_eq!((info.mac, info.mtu, info.link_up), (MAC, 1500, true));
        // The client asks RSS capabilities from NVSP 5 on, as Linux does.
        let queues = if max >= Version::V5 { 8 } else { 0 };
        assert_eq!(
            info.rss_queues, queues,
            "vRSS over the primary and 7 sub-channels"
        );
        assert_eq!(info.receive_sections, (64 * PAGE_SIZE / 1728) as u32);
        assert_eq!(info.send_sections, (16 * PAGE_SIZE / 6144) as u32);
        assert!(host.nic.ready_for_frames());
        assert_eq!(host.nic.guest_mtu(), 1514);
        assert_eq!(host.nic.stats.bad_messages, 0, "{:?}", host.nic.stats);
    }
}

#[test]
fn version_one_alone_is_refused() {
    let (mut host, mut c) = setup(8);
    let init = Message::Init(nvsp::Init {
        min_version: u32le(Version::V1.0),
        max_version: u32le(Version::V1.0),
    });
    let tid = c.send_raw(&init.encode(), true).unwrap();
    let reply = c.completion(tid, &mut host.pump());
    let Ok(Message::InitComplete(done)) = Message::parse(&reply.unwrap()) else {
        panic!("no INIT_COMPLETE")
    };
    assert_eq!(done.status.get(), Status::PROTOCOL_TOO_OLD.0);
}

/// Sends `n` frames through the loopback and checks every one comes back once,
/// in order, while the guest's receive sections are reused many times over.
fn round_trip(host: &mut Host, c: &mut Client, n: u32, len: usize) {
    let (mut sent, mut got) = (0u32, 0u32);
    let mut pump = || {
        host.serve();
    };
    while got < n {
        while sent < n && c.send_frame(&frame(sent, len)).unwrap() {
            sent += 1;
        }
        c.flush().unwrap();
        pump();
        c.poll().unwrap();
        while let Some(f) = c.receive_frame() {
            assert_eq!(f, frame(got, len), "frame {got}");
            got += 1;
        }
    }
    assert_eq!(c.tx_refused, 0);
}

#[test]
fn frames_loop_back_in_order_through_reused_sections() {
    let (mut host, mut c) = setup(4);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    // 4 pages hold 9 sections: 2000 frames reuse each one ~200 times.
    round_trip(&mut host, &mut c, 2000, 1514);
    round_trip(&mut host, &mut c, 100, 60);
    // The last completions are still in the guest's ring.
    host.serve();
    assert_eq!(host.nic.sections_out(), 0);
    assert_eq!(host.nic.stats.tx_frames, 2100);
    assert_eq!(host.nic.stats.rx_frames, 2100);
    assert_eq!(host.nic.stats.bogus_completions, 0);
}

#[test]
fn batched_sections_carry_every_frame() {
    let (mut host, mut c) = setup(16);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    // Odd lengths, so the padding between messages matters.
    let frames: Vec<Vec<u8>> = (0..8).map(|i| frame(i, 61 + 97 * i as usize)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    assert!(c.send_batch(&refs).unwrap());
    c.flush().unwrap();
    host.serve();
    c.poll().unwrap();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| c.receive_frame()).collect();
    assert_eq!(got, frames);
    assert_eq!(host.nic.stats.bad_messages, 0);
}

#[test]
fn a_packet_split_between_section_and_gpa_range_arrives_whole() {
    let (mut host, mut c) = setup(16);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    // Linux's cp_partial: three full-size frames fill most of the section, the
    // fourth's RNDIS header ends it and its frame comes as a GPA range.
    let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(i, 1514 - i as usize)).collect();
    let batched: Vec<&[u8]> = frames[..3].iter().map(|f| f.as_slice()).collect();
    assert!(c.send_partial(&batched, &frames[3]).unwrap());
    c.flush().unwrap();
    host.serve();
    // And with nothing batched before: only the header in the section. (After
    // the host ran: both use the client's one control page.)
    assert!(c.send_partial(&[], &frames[0]).unwrap());
    c.flush().unwrap();
    host.serve();
    c.poll().unwrap();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| c.receive_frame()).collect();
    assert_eq!(got.len(), 5);
    assert!(got[..4] == frames[..] && got[4] == frames[0]);
    assert_eq!(c.tx_refused, 0);
}

#[test]
fn a_vlan_tag_moved_into_per_packet_info_goes_back_into_the_frame() {
    let (mut host, mut c) = setup(16);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    let f = frame(1, 100);
    // Priority 5, vlan 42.
    let tci: u16 = 5 << 13 | 42;
    let mut ppi = Vec::new();
    rndis::push_vlan(tci, &mut ppi);
    let mut msg = Vec::new();
    rndis::data_packet(&f, &ppi, &mut msg);
    assert!(c.send_section_bytes(&msg).unwrap());
    c.flush().unwrap();
    host.serve();
    c.poll().unwrap();
    let tagged = c.receive_frame().unwrap();
    assert_eq!(tagged[..12], f[..12]);
    assert_eq!(tagged[12..16], [0x81, 0x00, (tci >> 8) as u8, tci as u8]);
    assert_eq!(tagged[16..], f[12..]);
}

#[test]
fn link_changes_are_indicated() {
    let (mut host, mut c) = setup(8);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    host.nic.set_link(false);
    host.nic.set_link(true);
    host.serve();
    c.poll().unwrap();
    assert_eq!(
        c.indications,
        vec![
            rndis::Status::MEDIA_DISCONNECT.0,
            rndis::Status::MEDIA_CONNECT.0
        ]
    );
}

fn rndis_packet(section: u32, size: u32) -> [u8; nvsp::MESSAGE_SIZE] {
    Message::SendRndisPacket(nvsp::SendRndisPacket {
        channel_type: u32le(nvsp::CHANNEL_TYPE_DATA),
        section_index: u32le(section),
        section_size: u32le(size),
    })
    .encode()
}

/// The type and status of a completion, wherever its type keeps the status.
fn status_of(reply: &[u8]) -> (MessageType, u32) {
    let m = Message::parse(reply).expect("completion parses");
    let status = match m {
        Message::InitComplete(c) => c.status.get(),
        Message::SendReceiveBufferComplete(c) => c.status.get(),
        Message::SendRndisPacketComplete(c) => c.status.get(),
        // The completion shares the request's type; its first word is the status.
        Message::Subchannel(c) => c.op.get(),
        other => panic!("unexpected completion {other:?}"),
    };
    (m.message_type(), status)
}

#[test]
fn hostile_nvsp_messages_get_failure_statuses() {
    let (mut host, mut c) = setup(8);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    let mut unknown = [0u8; 40];
    unknown[0] = 0x77;
    let recv_again = Message::SendReceiveBuffer(nvsp::SendBuffer {
        gpadl: u32le(testing::RECEIVE_GPADL),
        id: nvsp::RECEIVE_BUFFER_ID.into(),
    })
    .encode();
    let reinit = Message::Init(nvsp::Init {
        min_version: u32le(Version::V2.0),
        max_version: u32le(Version::V61.0),
    })
    .encode();
    let subchannels = |op, count| {
        Message::Subchannel(nvsp::SubchannelRequest {
            op: u32le(op),
            count: u32le(count),
        })
        .encode()
        .to_vec()
    };
    let cases: Vec<(&str, Vec<u8>, MessageType, u32)> = vec![
        (
            "unknown type",
            unknown.to_vec(),
            MessageType::SEND_RNDIS_PACKET_COMPLETE,
            Status::FAILURE.0,
        ),
        (
            "truncated",
            vec![107, 0, 0, 0, 1],
            MessageType::SEND_RNDIS_PACKET_COMPLETE,
            Status::FAILURE.0,
        ),
        (
            "section past the buffer",
            rndis_packet(1000, 64).to_vec(),
            MessageType::SEND_RNDIS_PACKET_COMPLETE,
            Status::INVALID_RNDIS_PACKET.0,
        ),
        (
            "section size past the section",
            rndis_packet(0, 6145).to_vec(),
            MessageType::SEND_RNDIS_PACKET_COMPLETE,
            Status::INVALID_RNDIS_PACKET.0,
        ),
        (
            "no section, no GPA ranges",
            rndis_packet(nvsp::NO_SECTION, 0).to_vec(),
            MessageType::SEND_RNDIS_PACKET_COMPLETE,
            Status::INVALID_RNDIS_PACKET.0,
        ),
        (
            "zeroed section",
            rndis_packet(0, 64).to_vec(),
            MessageType::SEND_RNDIS_PACKET_COMPLETE,
            Status::INVALID_RNDIS_PACKET.0,
        ),
        (
            "second receive buffer",
            recv_again.to_vec(),
            MessageType::SEND_RECEIVE_BUFFER_COMPLETE,
            Status::FAILURE.0,
        ),
        (
            "renegotiation under live buffers",
            reinit.to_vec(),
            MessageType::INIT_COMPLETE,
            Status::FAILURE.0,
        ),
        (
            "sub-channel operation other than ALLOCATE",
            subchannels(2, 3),
            MessageType::SUBCHANNEL,
            Status::FAILURE.0,
        ),
        (
            "no sub-channels",
            subchannels(nvsp::SUBCHANNEL_ALLOCATE, 0),
            MessageType::SUBCHANNEL,
            Status::FAILURE.0,
        ),
        (
            "sub-channels",
            subchannels(nvsp::SUBCHANNEL_ALLOCATE, 3),
            MessageType::SUBCHANNEL,
            Status::SUCCESS.0,
        ),
        (
            "sub-channels a second time",
            subchannels(nvsp::SUBCHANNEL_ALLOCATE, 3),
            MessageType::SUBCHANNEL,
            Status::FAILURE.0,
        ),
    ];
    for (name, raw, ty, status) in cases {
        let tid = c.send_raw(&raw, true).unwrap();
        let reply = c.completion(tid, &mut host.pump());
        let reply = reply.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(status_of(&reply), (ty, status), "{name}");
    }
    assert_eq!(host.nic.subchannels(), Some(3));
    // A completion for a section never handed out changes nothing.
    let bogus =
        nvsp::Message::SendRndisPacketComplete(nvsp::SendRndisPacketComplete { status: u32le(1) });
    c.send_raw(&bogus.encode(), false).unwrap();
    host.serve();
    // And the NIC still serves.
    round_trip(&mut host, &mut c, 50, 200);
    assert!(host.broken.is_none());
}

#[test]
fn hostile_rndis_requests_are_answered_invalid() {
    let (mut host, mut c) = setup(8);
    c.bring_up(Version::V61, &mut host.pump()).unwrap();
    // A QUERY whose info buffer lies past its end, a SET too short to carry a
    // packet filter, and a QUERY of an OID nobody supports.
    let mut bad_query = Vec::new();
    rndis::oid_request(
        rndis::MessageType::QUERY,
        77,
        netvsp_protocol::oid::Oid::GEN_LINK_SPEED,
        &[0; 4],
        &mut bad_query,
    );
    bad_query[8 + 12..8 + 16].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let mut short_set = Vec::new();
    rndis::oid_request(
        rndis::MessageType::SET,
        78,
        netvsp_protocol::oid::Oid::GEN_CURRENT_PACKET_FILTER,
        &[1, 2],
        &mut short_set,
    );
    let mut unknown = Vec::new();
    rndis::oid_request(
        rndis::MessageType::QUERY,
        79,
        netvsp_protocol::oid::Oid(0x00ab_cdef),
        &[],
        &mut unknown,
    );
    let cases = [
        (bad_query, 77, rndis::Status::INVALID_DATA),
        (short_set, 78, rndis::Status::INVALID_LENGTH),
        (unknown, 79, rndis::Status::NOT_SUPPORTED),
    ];
    for (msg, id, want) in cases {
        let answer = c.rndis_raw(&msg, &mut host.pump()).unwrap();
        let (m, _) = rndis::parse(&answer).unwrap();
        let (got_id, status) = match m {
            rndis::Message::QueryComplete(q, _) => (q.request_id.get(), q.status.get()),
            rndis::Message::SetComplete(s) => (s.request_id.get(), s.status.get()),
            other => panic!("{other:?}"),
        };
        assert_eq!((got_id, status), (id, want.0));
    }
    round_trip(&mut host, &mut c, 20, 100);
}

/// A guest ring that never has room.
struct FullRing;

impl netvsp::Outbox for FullRing {
    fn send(
        &mut self,
        _: &vmbus_ring::OutgoingPacket<'_>,
        _: &[&[u8]],
    ) -> Result<(), netvsp::OutboxFull> {
        Err(netvsp::OutboxFull)
    }
}

#[test]
fn completions_waiting_for_a_full_ring_are_bounded() {
    let mut nic: netvsp::Nic<netvsp::SliceBuffer> = netvsp::Nic::new(Config::new(MAC));
    let mut lb = Loopback::new(1);
    let init = Message::Init(nvsp::Init {
        min_version: u32le(Version::V2.0),
        max_version: u32le(Version::V61.0),
    })
    .encode();
    for tid in 0..3000 {
        let packet = netvsp::Incoming {
            transaction_id: tid,
            completion_requested: true,
            kind: netvsp::IncomingKind::InBand,
            payload: &init,
        };
        nic.handle(packet, &mut FullRing, &mut |_| None, &mut lb);
    }
    assert!(nic.is_stalled());
    assert_eq!(nic.stats.completions_dropped, 3000 - 1024);
}
