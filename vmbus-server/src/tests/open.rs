//! OPENCHANNEL / CLOSECHANNEL / MODIFYCHANNEL, UNLOAD and the rest of the connection.

use super::*;
use vmbus_protocol::status::*;

#[test]
fn open_hands_the_vsp_everything_it_needs() {
    let (h, relid, gpadl) = Harness::with_open_channel();
    let r = &h.env.open[&relid];
    assert_eq!(r.open_id, 0x77);
    assert_eq!(r.ring_gpadl, gpadl);
    assert_eq!(r.ring_pfns, (0x1000..0x1008).collect::<Vec<u64>>());
    assert_eq!(r.downstream_page_offset, 4);
    assert_eq!(r.target_vp, 1);
    assert_eq!(r.target_sint, MESSAGE_SINT);
    assert!(r.paravisor_synic);
    assert_eq!(r.user_data, [0x5a; 120]);
    assert_eq!(
        r.signal_connection_id,
        DEFAULT_SIGNAL_CONNECTION_BASE + relid.0
    );
    assert_eq!(r.event_flag, relid.0);
    assert_eq!(r.version, Version::V6_0);
    assert_eq!(
        r.confidentiality,
        Confidentiality {
            ring: true,
            external: false
        }
    );
    assert_eq!(h.server.channel_state(relid), opened(gpadl, 1));
}

#[test]
fn a_5_3_open_keeps_the_ring_in_shared_memory() {
    let (h, relid, _) = Harness::with_open_channel_at(Version::WIN10_V5_3);
    assert_eq!(h.env.open[&relid].confidentiality, Confidentiality::NONE);
    assert!(!h.env.open[&relid].paravisor_synic);
}

#[test]
fn open_before_contact_is_dropped_unanswered() {
    let mut h = Harness::default();
    h.offer(1);
    h.assert_needs_contact(&open_msg(Relid(1), GpadlId(1), 2));
}

#[test]
fn open_of_a_channel_the_guest_does_not_hold_fails() {
    let (mut h, unheld) = Harness::with_unheld_relids();
    for relid in unheld {
        assert_eq!(h.open(relid, GpadlId(1), 2), STATUS_INVALID_PARAMETER);
    }
}

#[test]
fn open_needs_a_complete_ring_gpadl_of_its_own_channel() {
    let (mut h, relid) = Harness::with_channel();
    let other = h.offer(2);
    let _: OfferChannel = h.expect();
    // No such GPADL.
    assert_eq!(h.open(relid, GpadlId(1), 2), STATUS_INVALID_PARAMETER);
    // Another channel's GPADL.
    h.ring_gpadl(other, GpadlId(2), 0x100, 4);
    assert_eq!(h.open(relid, GpadlId(2), 2), STATUS_INVALID_PARAMETER);
    // A GPADL still being sent.
    let pfns: Vec<u64> = (0x200..0x240).collect();
    h.raw(&linux_gpadl_messages(relid, GpadlId(3), &pfns)[0])
        .expect("partial");
    assert_eq!(h.open(relid, GpadlId(3), 2), STATUS_INVALID_PARAMETER);
    assert!(h.env.open.is_empty());
}

#[test]
fn the_downstream_offset_must_leave_two_pages_per_ring() {
    let (mut h, relid) = Harness::with_channel();
    h.ring_gpadl(relid, GpadlId(1), 0x100, 8);
    for bad in [0, 1, 7, 8, 9, u32::MAX] {
        assert_eq!(
            h.open(relid, GpadlId(1), bad),
            STATUS_INVALID_PARAMETER,
            "offset {bad}"
        );
    }
    assert_eq!(h.open(relid, GpadlId(1), 6), STATUS_SUCCESS);
    h.send(&CloseChannel { child_relid: relid }).expect("close");
    assert_eq!(h.open(relid, GpadlId(1), 2), STATUS_SUCCESS);
}

#[test]
fn a_ring_must_be_one_page_aligned_range() {
    let (mut h, relid) = Harness::with_channel();
    let h_msg = |id: u32, words: &[u64], count: u16| {
        let hdr = GpadlHeader {
            child_relid: relid,
            gpadl: GpadlId(id),
            range_buf_len: (words.len() * 8) as u16,
            range_count: count,
        };
        OutgoingMessage::with_tail(&hdr, &words_to_bytes(words))
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    let shapes: [(&[u64], u16); 3] = [
        (
            &[
                gpa::range_header(4 * 4096, 8),
                0x100,
                0x101,
                0x102,
                0x103,
                0x104,
            ],
            1,
        ),
        (
            &[
                gpa::range_header(4 * 4096 - 8, 0),
                0x100,
                0x101,
                0x102,
                0x103,
            ],
            1,
        ),
        (
            &[
                gpa::range_header(2 * 4096, 0),
                0x100,
                0x101,
                gpa::range_header(2 * 4096, 0),
                0x102,
                0x103,
            ],
            2,
        ),
    ];
    for (i, (words, count)) in shapes.into_iter().enumerate() {
        h.raw(&h_msg(i as u32, words, count)).expect("gpadl");
        let c: GpadlCreated = h.expect();
        assert_eq!(c.status, STATUS_SUCCESS);
        let _ = h.send(&open_msg(relid, GpadlId(i as u32), 2));
        let r: OpenResult = h.expect();
        assert_eq!(r.status, STATUS_INVALID_PARAMETER, "shape {i}");
    }
}

#[test]
fn the_target_vp_must_exist() {
    let (mut h, relid) = Harness::with_channel();
    h.ring_gpadl(relid, GpadlId(1), 0x100, 4);
    let mut m = open_msg(relid, GpadlId(1), 2);
    m.target_vp = 4;
    assert_eq!(h.send(&m), Err(MessageError::BadTargetVp { relid, vp: 4 }));
    assert_eq!(h.expect::<OpenResult>().status, STATUS_INVALID_PARAMETER);
    m.target_vp = VP_INDEX_DISABLE_INTERRUPT;
    assert_eq!(h.send(&m), Ok(()));
    assert_eq!(h.expect::<OpenResult>().status, STATUS_SUCCESS);
}

#[test]
fn a_second_open_fails_and_the_channel_stays_open() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    assert_eq!(h.open(relid, gpadl, 4), STATUS_UNSUCCESSFUL);
    assert!(h.env.open.contains_key(&relid));
}

#[test]
fn a_vsp_refusal_is_passed_to_the_guest() {
    let (mut h, relid) = Harness::with_channel();
    h.ring_gpadl(relid, GpadlId(1), 0x100, 4);
    h.env.fail_open = Some(Status(STATUS_INSUFFICIENT_RESOURCES));
    assert_eq!(h.open(relid, GpadlId(1), 2), STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Offered));
    h.env.fail_open = None;
    assert_eq!(h.open(relid, GpadlId(1), 2), STATUS_SUCCESS);
}

#[test]
fn open_of_a_revoked_channel_fails() {
    let (mut h, relid) = Harness::with_channel();
    h.ring_gpadl(relid, GpadlId(1), 0x100, 4);
    h.revoke(relid);
    assert_eq!(h.open(relid, GpadlId(1), 2), STATUS_DEVICE_NOT_CONNECTED);
}

#[test]
fn close_then_reopen() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    h.env.events.clear();
    assert_eq!(h.send(&CloseChannel { child_relid: relid }), Ok(()));
    h.assert_quiet();
    assert_eq!(h.env.events, [Event::Close(relid)]);
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Offered));
    assert_eq!(h.open(relid, gpadl, 4), STATUS_SUCCESS);
}

#[test]
fn closing_what_is_not_open_is_dropped() {
    let (mut h, relid) = Harness::with_channel();
    assert!(matches!(
        h.send(&CloseChannel { child_relid: relid }),
        Err(MessageError::ChannelState { .. })
    ));
    assert!(matches!(
        h.send(&CloseChannel {
            child_relid: Relid(3)
        }),
        Err(MessageError::UnknownChannel { .. })
    ));
    h.assert_quiet();
}

#[test]
fn modify_channel_is_answered_from_5_3() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    assert_eq!(
        h.send(&ModifyChannel {
            child_relid: relid,
            target_vp: 3
        }),
        Ok(())
    );
    let r: ModifyChannelResponse = h.expect();
    assert_eq!((r.child_relid, r.status), (relid, STATUS_SUCCESS));
    assert_eq!(h.env.open[&relid].target_vp, 3);
    assert_eq!(h.server.channel_state(relid), opened(gpadl, 3));
}

#[test]
fn modify_channel_before_5_3_is_silent_and_before_4_1_illegal() {
    let (mut h, relid, _) = Harness::with_open_channel_at(Version::WIN10_V4_1);
    assert_eq!(
        h.send(&ModifyChannel {
            child_relid: relid,
            target_vp: 2
        }),
        Ok(())
    );
    h.assert_quiet();
    assert_eq!(h.env.open[&relid].target_vp, 2);

    h.connect(Version::WIN10);
    assert!(matches!(
        h.send(&ModifyChannel {
            child_relid: relid,
            target_vp: 2
        }),
        Err(MessageError::Parse(ParseError::NeedsVersion { .. }))
    ));
}

#[test]
fn bad_modifies_are_answered_with_failure() {
    let (mut h, relid, _) = Harness::with_open_channel();
    let other = h.offer(2);
    let _: OfferChannel = h.expect();
    let cases = [
        (other, 1, STATUS_INVALID_PARAMETER),     // closed
        (Relid(99), 1, STATUS_INVALID_PARAMETER), // unknown
        (relid, 9, STATUS_INVALID_PARAMETER),     // no such VP
    ];
    for (child_relid, target_vp, status) in cases {
        assert!(h
            .send(&ModifyChannel {
                child_relid,
                target_vp
            })
            .is_err());
        assert_eq!(h.expect::<ModifyChannelResponse>().status, status);
    }
    h.env.fail_modify = Some(Status(STATUS_UNSUCCESSFUL));
    assert!(h
        .send(&ModifyChannel {
            child_relid: relid,
            target_vp: 2
        })
        .is_err());
    assert_eq!(
        h.expect::<ModifyChannelResponse>().status,
        STATUS_UNSUCCESSFUL
    );
    assert_eq!(h.env.open[&relid].target_vp, 1);
}

#[test]
fn unload_tears_everything_down_and_answers() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    let revoked = h.offer(2);
    let _: OfferChannel = h.expect();
    h.revoke(revoked);
    h.env.events.clear();
    assert_eq!(h.send(&Unload {}), Ok(()));
    let _: UnloadResponse = h.expect();
    assert_eq!(
        h.env.events,
        [
            Event::Close(relid),
            Event::Unmap(relid, gpadl),
            Event::Disconnected
        ]
    );
    assert!(h.server.connection().is_none());
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Unsent));
    assert_eq!(
        h.server.channel_state(revoked),
        None,
        "revoked offers are forgotten"
    );
    assert_eq!(h.server.gpadl_count(), 0);
}

#[test]
fn reconnect_after_unload_enumerates_and_opens_again() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    h.send(&Unload {}).expect("unload");
    let _: UnloadResponse = h.expect();
    h.connect(Version::WIN10_V5_3);
    let offers = h.request_offers();
    assert_eq!(offers[0].child_relid, relid, "relids survive reconnection");
    h.ring_gpadl(relid, gpadl, 0x2000, 4);
    assert_eq!(h.open(relid, gpadl, 2), STATUS_SUCCESS);
}

#[test]
fn unload_while_disconnected_is_answered() {
    let mut h = Harness::default();
    assert_eq!(h.send(&Unload {}), Ok(()));
    let (target, _) = h.next();
    assert_eq!(target, MessageTarget::DEFAULT);
}

#[test]
fn ws2008_has_no_unload_response() {
    let mut h = Harness::default();
    h.connect(Version::WS2008);
    assert_eq!(h.send(&Unload {}), Ok(()));
    h.assert_quiet();
    assert!(h.server.connection().is_none());
}

#[test]
fn hv_sock_connects_are_refused() {
    let (mut h, _) = Harness::with_channel();
    let req = TlConnectRequest {
        guest_endpoint_id: Guid::from_fields(1, 2, 3, [4; 8]),
        host_service_id: Guid::from_fields(5, 6, 7, [8; 8]),
    };
    assert_eq!(
        h.send(&req),
        Err(MessageError::NotSupported(MessageType::TL_CONNECT_REQUEST))
    );
    let r: TlConnectResult = h.expect();
    assert_eq!(r.status, STATUS_CONNECTION_REFUSED);
    assert_eq!(r.host_service_id, req.host_service_id);
}

#[test]
fn server_to_guest_messages_from_the_guest_are_dropped() {
    let (mut h, relid) = Harness::with_channel();
    let msgs: Vec<Vec<u8>> = std::vec![
        bytes(&OfferChannel::new_zeroed_for_test()),
        bytes(&RescindChannelOffer { child_relid: relid }),
        bytes(&AllOffersDelivered {}),
        bytes(&OpenResult {
            child_relid: relid,
            open_id: 0,
            status: 0
        }),
        bytes(&GpadlCreated {
            child_relid: relid,
            gpadl: GpadlId(1),
            status: 0
        }),
        bytes(&GpadlTorndown { gpadl: GpadlId(1) }),
        bytes(&VersionResponse {
            version_supported: 1,
            connection_state: ConnectionState::SUCCESSFUL,
            padding: 0,
            msg_conn_id: 4
        }),
        bytes(&UnloadResponse {}),
        bytes(&ModifyChannelResponse {
            child_relid: relid,
            status: 0
        }),
    ];
    for m in msgs {
        assert!(matches!(h.raw(&m), Err(MessageError::ClientMessage(_))));
    }
    h.assert_quiet();
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Offered));
}

trait ZeroedForTest {
    fn new_zeroed_for_test() -> Self;
}

impl<T: zerocopy::FromZeros> ZeroedForTest for T {
    fn new_zeroed_for_test() -> Self {
        T::new_zeroed()
    }
}

#[test]
fn a_full_synic_slot_queues_in_order_and_refuses_new_work_when_full() {
    let mut config = Harness::config();
    config.limits.max_pending_messages = 3;
    let mut h = Harness::new(config);
    for i in 0..4 {
        h.offer(i);
    }
    h.connect(Version::V6_0);
    h.env.busy = true;
    h.send(&RequestOffers {}).expect("offers");
    assert_eq!(h.server.pending_messages(), 5);
    assert_eq!(h.send(&Unload {}), Err(MessageError::Busy));
    assert!(h.server.connection().is_some(), "refused work is not done");
    let signals = h.env.signals;
    h.env.busy = false;
    h.server.flush(&mut h.env);
    assert_eq!(h.env.signals, signals + 1, "one signal for the batch");
    let order: Vec<MessageType> = core::iter::from_fn(|| h.env.sent.pop_front())
        .map(|(_, b)| parse(&b, ANY).expect("valid").message_type())
        .collect();
    assert_eq!(
        order,
        [
            MessageType::OFFERCHANNEL,
            MessageType::OFFERCHANNEL,
            MessageType::OFFERCHANNEL,
            MessageType::OFFERCHANNEL,
            MessageType::ALLOFFERS_DELIVERED
        ]
    );
    assert_eq!(h.send(&Unload {}), Ok(()));
}

#[test]
fn reset_forgets_the_guest_and_its_undelivered_messages() {
    let (mut h, relid, _) = Harness::with_open_channel();
    h.env.busy = true;
    h.offer(2);
    assert_eq!(h.server.pending_messages(), 1);
    h.server.reset(&mut h.env);
    h.check();
    assert_eq!(h.server.pending_messages(), 0);
    assert!(h.server.connection().is_none());
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Unsent));
}

#[test]
fn bad_configurations_are_refused() {
    let base = Harness::config();
    let mut c = base.clone();
    c.vp_count = 0;
    assert_eq!(Server::new(c).err(), Some(ConfigError::NoVps));
    let mut c = base.clone();
    c.max_version = Version(0x0005_0009);
    assert!(matches!(
        Server::new(c),
        Err(ConfigError::UnknownMaxVersion(_))
    ));
    let mut c = base.clone();
    c.first_dynamic_relid = 0;
    assert!(Server::new(c).is_err());
    let mut c = base.clone();
    c.signal_connection_base = 4;
    assert!(Server::new(c).is_err());
    let mut c = base;
    c.guest_memory = std::vec![PfnRange {
        start: u64::MAX,
        count: 2
    }];
    assert_eq!(Server::new(c).err(), Some(ConfigError::MemoryRangeOverflow));
}
