//! REQUESTOFFERS, hot add, confidential offer flags, relids, rescind and release.

use super::*;

#[test]
fn request_offers_sends_each_offer_then_all_offers_delivered() {
    let mut h = Harness::default();
    let mut params = device(7);
    params.mmio_megabytes = 16;
    params.user_defined[0] = 0xab;
    params.flags = OfferFlags::NAMED_PIPE_MODE;
    let relid = h.server.offer(&mut h.env, params.clone()).expect("offer");
    h.connect(Version::WIN10_V5_3);
    let offers = h.request_offers();
    assert_eq!(offers.len(), 1);
    let o = offers[0];
    assert_eq!(o.interface_id, ids::interface::STORAGE);
    assert_eq!(o.instance_id, params.instance_id);
    assert_eq!(o.child_relid, relid);
    assert_eq!(o.flags, OfferFlags::NAMED_PIPE_MODE);
    assert_eq!(o.mmio_megabytes, 16);
    assert_eq!(o.user_defined[0], 0xab);
    assert_eq!(o.is_dedicated_interrupt, 1);
    assert_eq!(o.monitor_allocated, 0);
    assert_eq!(o.connection_id, DEFAULT_SIGNAL_CONNECTION_BASE + relid.0);
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Offered));
}

#[test]
fn offers_go_out_in_relid_order() {
    let mut h = Harness::default();
    let relids: Vec<Relid> = (0..5).map(|i| h.offer(i)).collect();
    h.connect(Version::WIN10_V5_3);
    let sent: Vec<Relid> = h.request_offers().iter().map(|o| o.child_relid).collect();
    assert_eq!(sent, relids);
    assert_eq!(relids, (1..=5).map(Relid).collect::<Vec<_>>());
}

#[test]
fn request_offers_twice_is_dropped() {
    let (mut h, _) = Harness::with_channel();
    assert_eq!(
        h.send(&RequestOffers {}),
        Err(MessageError::OffersAlreadySent)
    );
    h.assert_quiet();
}

#[test]
fn request_offers_before_contact_is_dropped() {
    let mut h = Harness::default();
    h.offer(1);
    h.assert_needs_contact(&RequestOffers {});
}

#[test]
fn an_offer_after_enumeration_is_sent_at_once() {
    let (mut h, first) = Harness::with_channel();
    let second = h.offer(2);
    assert_ne!(first, second);
    let o: OfferChannel = h.expect();
    assert_eq!(o.child_relid, second);
    assert_eq!(h.server.channel_state(second), Some(ChannelState::Offered));
}

#[test]
fn an_offer_before_enumeration_waits_for_request_offers() {
    let mut h = Harness::default();
    h.connect(Version::WIN10_V5_3);
    let relid = h.offer(1);
    h.assert_quiet();
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Unsent));
    assert_eq!(h.request_offers().len(), 1);
}

#[test]
fn offer_keys_are_unique_among_live_offers() {
    let mut h = Harness::default();
    h.offer(1);
    assert_eq!(
        h.server.offer(&mut h.env, device(1)),
        Err(OfferError::Duplicate)
    );
    let mut sub = device(1);
    sub.subchannel_index = 1;
    assert!(h.server.offer(&mut h.env, sub).is_ok());
}

#[test]
fn a_relay_keeps_host_relids_and_paravisor_offers_avoid_them() {
    let mut config = Harness::config();
    config.first_dynamic_relid = 100;
    let mut h = Harness::new(config);
    let mut relayed = device(1);
    relayed.relid = RelidRequest::Fixed(Relid(5));
    relayed.source = OfferSource::Relay;
    assert_eq!(h.server.offer(&mut h.env, relayed), Ok(Relid(5)));
    assert_eq!(h.server.offer(&mut h.env, device(2)), Ok(Relid(100)));
    let mut clash = device(3);
    clash.relid = RelidRequest::Fixed(Relid(100));
    assert_eq!(
        h.server.offer(&mut h.env, clash),
        Err(OfferError::Relid(RelidError::InUse(Relid(100))))
    );
    let mut bad = device(4);
    bad.relid = RelidRequest::Fixed(Relid(0));
    assert_eq!(
        h.server.offer(&mut h.env, bad),
        Err(OfferError::Relid(RelidError::OutOfRange(0)))
    );
    h.check();
}

fn offer_flags_for(
    confidential_server: bool,
    version: Version,
    features: FeatureFlags,
) -> Vec<(OfferSource, OfferFlags)> {
    let mut config = Harness::config();
    config.confidential = confidential_server;
    let mut h = Harness::new(config);
    let sources = [
        OfferSource::Paravisor {
            confidential_external_memory: false,
        },
        OfferSource::Paravisor {
            confidential_external_memory: true,
        },
        OfferSource::Relay,
    ];
    for (i, source) in sources.iter().enumerate() {
        let mut p = device(i as u32);
        p.source = *source;
        // A VSP cannot force the bits: the server decides them per connection.
        p.flags = OfferFlags::CONFIDENTIAL | OfferFlags::ENUMERATE_DEVICE_INTERFACE;
        h.server.offer(&mut h.env, p).expect("offer");
    }
    h.connect_with(version, features);
    let offers = h.request_offers();
    sources
        .iter()
        .zip(offers.iter())
        .map(|(s, o)| (*s, o.flags.without(OfferFlags::ENUMERATE_DEVICE_INTERFACE)))
        .collect()
}

#[test]
fn six_zero_confidential_offers_carry_the_confidential_flags() {
    let flags = offer_flags_for(true, Version::V6_0, FeatureFlags::CONFIDENTIAL_CHANNELS);
    assert_eq!(flags[0].1, OfferFlags::CONFIDENTIAL_RING_BUFFER);
    assert_eq!(flags[1].1, OfferFlags::CONFIDENTIAL);
    assert_eq!(
        flags[2].1,
        OfferFlags::EMPTY,
        "relayed host offers never are"
    );
}

#[test]
fn without_the_feature_devices_are_offered_the_pre_6_0_way() {
    for (server, version, features) in [
        (
            true,
            Version::WIN10_V5_3,
            FeatureFlags::CONFIDENTIAL_CHANNELS,
        ),
        (true, Version::V6_0, FeatureFlags::EMPTY),
        (false, Version::V6_0, FeatureFlags::CONFIDENTIAL_CHANNELS),
    ] {
        for (source, flags) in offer_flags_for(server, version, features) {
            assert_eq!(flags, OfferFlags::EMPTY, "{server} {version} {source:?}");
        }
    }
}

#[test]
fn revoking_an_unsent_offer_forgets_it_silently() {
    let mut h = Harness::default();
    let relid = h.offer(1);
    assert_eq!(h.server.revoke(&mut h.env, relid), Ok(()));
    assert_eq!(h.server.channel_state(relid), None);
    assert_eq!(
        h.server.revoke(&mut h.env, relid),
        Err(RevokeError::Unknown(relid))
    );
    // The relid is free again.
    assert_eq!(h.offer(2), relid);
    h.connect(Version::V6_0);
    assert_eq!(h.request_offers().len(), 1);
}

#[test]
fn revoking_an_offered_channel_rescinds_until_the_guest_releases_it() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(h.server.revoke(&mut h.env, relid), Ok(()));
    h.check();
    let r: RescindChannelOffer = h.expect();
    assert_eq!(r.child_relid, relid);
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Revoked));
    assert_eq!(
        h.server.revoke(&mut h.env, relid),
        Err(RevokeError::AlreadyRevoked(relid))
    );
    // The VSP may offer the device again while the guest still holds the old relid.
    let again = h.offer(1);
    assert_ne!(again, relid);
    let _: OfferChannel = h.expect();
    assert_eq!(h.send(&RelidReleased { child_relid: relid }), Ok(()));
    assert_eq!(h.server.channel_state(relid), None);
    assert_eq!(h.server.channel_count(), 1);
}

#[test]
fn revoking_an_open_channel_closes_it_and_linux_cleanup_succeeds() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    h.env.events.clear();
    h.server.revoke(&mut h.env, relid).expect("revoke");
    h.check();
    assert_eq!(h.env.events, [Event::Close(relid)]);
    let _: RescindChannelOffer = h.expect();
    // Linux: vmbus_close (CLOSECHANNEL, GPADL_TEARDOWN), then RELID_RELEASED.
    assert_eq!(h.send(&CloseChannel { child_relid: relid }), Ok(()));
    h.assert_quiet();
    assert_eq!(
        h.send(&GpadlTeardown {
            child_relid: relid,
            gpadl
        }),
        Ok(())
    );
    let t: GpadlTorndown = h.expect();
    assert_eq!(t.gpadl, gpadl);
    assert_eq!(h.send(&RelidReleased { child_relid: relid }), Ok(()));
    assert_eq!(h.server.channel_count(), 0);
    assert_eq!(h.server.gpadl_count(), 0);
}

#[test]
fn releasing_a_revoked_channel_frees_gpadls_the_guest_left() {
    let (mut h, relid) = Harness::with_channel();
    h.ring_gpadl(relid, GpadlId(9), 0x200, 4);
    h.revoke(relid);
    h.env.events.clear();
    assert_eq!(h.send(&RelidReleased { child_relid: relid }), Ok(()));
    assert_eq!(h.env.events, [Event::Unmap(relid, GpadlId(9))]);
}

#[test]
fn releasing_a_closed_channel_hides_it_until_the_next_connection() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(h.send(&RelidReleased { child_relid: relid }), Ok(()));
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Unsent));
    // Unknown to the guest now.
    assert!(matches!(
        h.send(&CloseChannel { child_relid: relid }),
        Err(MessageError::UnknownChannel { .. })
    ));
    h.send(&Unload {}).expect("unload");
    let _: UnloadResponse = h.expect();
    h.connect(Version::V6_0);
    let offers = h.request_offers();
    assert_eq!(
        offers.iter().map(|o| o.child_relid).collect::<Vec<_>>(),
        [relid]
    );
}

#[test]
fn relid_released_for_unknown_or_open_channels_is_dropped() {
    let (mut h, relid, _) = Harness::with_open_channel();
    assert!(matches!(
        h.send(&RelidReleased {
            child_relid: Relid(999)
        }),
        Err(MessageError::UnknownChannel { .. })
    ));
    assert!(matches!(
        h.send(&RelidReleased { child_relid: relid }),
        Err(MessageError::ChannelState { .. })
    ));
    h.assert_quiet();
    assert!(matches!(
        h.server.channel_state(relid),
        Some(ChannelState::Open { .. })
    ));
}
