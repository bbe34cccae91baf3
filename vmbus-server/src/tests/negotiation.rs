//! INITIATE_CONTACT / VERSION_RESPONSE for every version, the 5.x/6.0 fields, and
//! reconnection.

use super::*;

fn response(h: &mut Harness) -> (MessageTarget, VersionResponse, Option<FeatureFlags>) {
    let (target, b) = h.next();
    match parse(&b, None) {
        Ok(Message::VersionResponse(r, f)) => (target, r, f),
        other => panic!("expected a version response, got {other:?}"),
    }
}

#[test]
fn every_version_linux_tries_is_accepted_with_its_connection_rules() {
    // version, message connection id in the response, length of the response
    let table = [
        (Version::V6_0, 4, 20),
        (Version::WIN10_V5_3, 4, 16),
        (Version::WIN10_V5_2, 4, 16),
        (Version::WIN10_V5_1, 4, 16),
        (Version::WIN10_V5, 4, 16),
        (Version::WIN10_V4_1, Version::WIN10_V4_1.0, 16),
        (Version::WIN10, Version::WIN10.0, 16),
        (Version::WIN8_1, Version::WIN8_1.0, 16),
        (Version::WIN8, Version::WIN8.0, 16),
        (Version::WIN7, Version::WIN7.0, 16),
        (Version::WS2008, Version::WS2008.0, 16),
    ];
    assert_eq!(table.len(), Version::ALL.len());
    for (version, msg_conn_id, len) in table {
        let mut h = Harness::default();
        h.conn_id = version.message_connection_id();
        h.send(&linux_contact(version, FeatureFlags::EMPTY))
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        let (target, b) = h.next();
        assert_eq!(b.len(), len, "{version}");
        let Ok(Message::VersionResponse(r, _)) = parse(&b, None) else {
            panic!("{version}: no version response");
        };
        assert_eq!(r.version_supported, 1, "{version}");
        assert_eq!(r.connection_state, ConnectionState::SUCCESSFUL);
        assert_eq!(r.msg_conn_id, msg_conn_id, "{version}");
        assert_eq!(target, MessageTarget::DEFAULT, "{version}");
        let info = h.server.connection().expect("connected");
        assert_eq!(info.version, version);
        assert_eq!(info.message_connection_id, version.message_connection_id());
        assert_eq!(info.monitor_pages, Some((0x1000, 0x2000)));
        let expect_int_page = (version < Version::WIN8).then_some(0x3000);
        assert_eq!(info.interrupt_page, expect_int_page, "{version}");
    }
}

#[test]
fn a_capped_server_refuses_newer_versions_so_linux_steps_down() {
    for cap in Version::ALL {
        let mut config = Harness::config();
        config.max_version = cap;
        let mut h = Harness::new(config);
        // Linux's loop: newest first until one is accepted.
        let mut accepted = None;
        for version in Version::ALL {
            h.conn_id = version.message_connection_id();
            let result = h.send(&linux_contact(version, FeatureFlags::EMPTY));
            let (_, r, _) = response(&mut h);
            if version > cap {
                assert_eq!(
                    result,
                    Err(MessageError::Contact(ContactError::UnsupportedVersion(
                        version
                    )))
                );
                assert_eq!(r.version_supported, 0);
                assert_eq!(r.msg_conn_id, 0);
                assert!(h.server.connection().is_none());
            } else {
                assert_eq!(r.version_supported, 1);
                accepted = Some(version);
                break;
            }
        }
        assert_eq!(accepted, Some(cap));
    }
}

#[test]
fn versions_the_protocol_does_not_define_are_refused() {
    for raw in [0, 1, 0x0005_0004, 0x0006_0001, 0x0007_0000, u32::MAX] {
        let mut h = Harness::default();
        let r = h.send(&contact(Version(raw), 0));
        assert_eq!(
            r,
            Err(MessageError::Contact(ContactError::UnsupportedVersion(
                Version(raw)
            )))
        );
        let (_, resp, features) = response(&mut h);
        assert_eq!(resp.version_supported, 0);
        assert_eq!(features, None, "refusals use the short form");
        assert!(h.server.connection().is_none());
        // The guest is still disconnected: channel messages are refused.
        assert!(matches!(
            h.send(&RequestOffers {}),
            Err(MessageError::Parse(ParseError::NotConnected(_)))
        ));
        h.assert_quiet();
    }
}

/// (case, server is confidential, the guest's contact, the features the response
/// carries, the features the connection then has)
type FeatureCase = (
    &'static str,
    bool,
    InitiateContact,
    Option<FeatureFlags>,
    FeatureFlags,
);

#[test]
fn feature_negotiation() {
    const CONFIDENTIAL: FeatureFlags = FeatureFlags::CONFIDENTIAL_CHANNELS;
    let unknown_and_unoffered = FeatureFlags(0xf000_0000)
        | CONFIDENTIAL
        | FeatureFlags::PAUSE_RESUME
        | FeatureFlags::GUEST_SPECIFIED_SIGNAL_PARAMETERS;
    let cases: [FeatureCase; 4] = [
        (
            "6.0 grants confidential channels on a confidential server",
            true,
            linux_contact(Version::V6_0, CONFIDENTIAL),
            Some(CONFIDENTIAL),
            CONFIDENTIAL,
        ),
        (
            "a non-confidential server does not grant them",
            false,
            linux_contact(Version::V6_0, CONFIDENTIAL),
            Some(FeatureFlags::EMPTY),
            FeatureFlags::EMPTY,
        ),
        (
            "unknown and unoffered bits are masked",
            true,
            linux_contact(Version::V6_0, unknown_and_unoffered),
            Some(CONFIDENTIAL),
            CONFIDENTIAL,
        ),
        (
            "feature bits before 6.0 are ignored",
            true,
            contact(
                Version::WIN10_V5_3,
                InitiateContact::default_target_info(CONFIDENTIAL.bits()),
            ),
            None,
            FeatureFlags::EMPTY,
        ),
    ];
    for (case, confidential, contact, answered, granted) in cases {
        let mut config = Harness::config();
        config.confidential = confidential;
        let mut h = Harness::new(config);
        h.send(&contact).expect(case);
        let (_, r, features) = response(&mut h);
        assert_eq!(r.version_supported, 1, "{case}");
        assert_eq!(r.msg_conn_id, MESSAGE_CONNECTION_ID_4, "{case}");
        assert_eq!(features, answered, "{case}");
        assert_eq!(
            h.server.connection().map(|c| c.features),
            Some(granted),
            "{case}"
        );
        // At 6.0, messages of features not granted do not parse.
        if answered.is_some() {
            assert!(
                matches!(
                    h.send(&Pause {}),
                    Err(MessageError::Parse(ParseError::NeedsFeature { .. }))
                ),
                "{case}"
            );
        }
    }
}

#[test]
fn the_message_sint_is_honoured_from_5_0_only() {
    let mut h = Harness::default();
    let mut c = contact(Version::WIN10_V5, InitiateContact::target_info(5, 0, 0));
    c.target_vcpu = 3;
    h.send(&c).expect("contact");
    let (target, ..) = response(&mut h);
    assert_eq!(
        target,
        MessageTarget {
            vp: 3,
            sint: 5,
            paravisor_synic: false
        }
    );
    // Later messages go there too.
    h.send(&RequestOffers {}).expect("offers");
    assert_eq!(
        h.next().0,
        MessageTarget {
            vp: 3,
            sint: 5,
            paravisor_synic: false
        }
    );

    let mut h = Harness::default();
    h.conn_id = MESSAGE_CONNECTION_ID;
    let mut c = contact(Version::WIN10_V4_1, InitiateContact::target_info(5, 0, 0));
    c.target_vcpu = 3;
    h.send(&c).expect("contact");
    assert_eq!(
        response(&mut h).0,
        MessageTarget {
            vp: 3,
            sint: MESSAGE_SINT,
            paravisor_synic: false
        }
    );
}

#[test]
fn the_target_vcpu_is_honoured_from_win8_1_only() {
    for (version, expected_vp) in [
        (Version::WIN8_1, 2),
        (Version::WIN8, 0),
        (Version::WS2008, 0),
    ] {
        let mut h = Harness::default();
        h.conn_id = MESSAGE_CONNECTION_ID;
        let mut c = linux_contact(version, FeatureFlags::EMPTY);
        c.target_vcpu = 2;
        h.send(&c).expect("contact");
        assert_eq!(response(&mut h).0.vp, expected_vp, "{version}");
    }
}

#[test]
fn contacts_naming_what_does_not_exist_are_refused() {
    let mut bad_vp = linux_contact(Version::WIN10_V5_3, FeatureFlags::EMPTY);
    bad_vp.target_vcpu = 4; // vp_count is 4
    let cases = [
        (
            "a SINT that does not exist",
            contact(Version::WIN10_V5_3, InitiateContact::target_info(16, 0, 0)),
            ContactError::BadSint(16),
        ),
        ("a VP that does not exist", bad_vp, ContactError::BadVp(4)),
        (
            "another VTL's contact, from 5.1",
            contact(Version::WIN10_V5_1, InitiateContact::target_info(2, 2, 0)),
            ContactError::OtherVtl(2),
        ),
    ];
    for (case, c, error) in cases {
        let mut h = Harness::default();
        assert_eq!(h.send(&c), Err(MessageError::Contact(error)), "{case}");
        let (target, resp, _) = response(&mut h);
        assert_eq!(resp.version_supported, 0, "{case}");
        // The refusal goes where the guest can get it.
        assert_eq!(target, MessageTarget::DEFAULT, "{case}");
    }
}

#[test]
fn the_vtl_byte_is_ignored_before_5_1() {
    let mut h = Harness::default();
    let r = h.send(&contact(
        Version::WIN10_V5,
        InitiateContact::target_info(2, 2, 0),
    ));
    assert_eq!(r, Ok(()));
    assert_eq!(response(&mut h).1.version_supported, 1);
}

#[test]
fn a_single_monitor_page_fails_the_connection() {
    let mut h = Harness::default();
    let c = linux_contact(Version::WIN10_V5_3, FeatureFlags::EMPTY);
    assert_eq!(
        h.send(&only_monitor_pages(c, 0b01)),
        Err(MessageError::Contact(ContactError::MonitorPages))
    );
    let (_, r, _) = response(&mut h);
    assert_eq!(r.version_supported, 1);
    assert_eq!(r.connection_state, ConnectionState::FAILED_UNKNOWN_FAILURE);
    assert!(h.server.connection().is_none());

    // Before Win8 there is no failure state to report: the version is refused.
    h.conn_id = MESSAGE_CONNECTION_ID;
    let c = linux_contact(Version::WIN7, FeatureFlags::EMPTY);
    assert!(h.send(&only_monitor_pages(c, 0b10)).is_err());
    assert_eq!(response(&mut h).1.version_supported, 0);
}

#[test]
fn no_monitor_pages_at_all_is_fine() {
    let mut h = Harness::default();
    let c = linux_contact(Version::WIN10_V5_3, FeatureFlags::EMPTY);
    assert_eq!(h.send(&only_monitor_pages(c, 0)), Ok(()));
    assert_eq!(h.server.connection().map(|c| c.monitor_pages), Some(None));
}

#[test]
fn initiate_contact_on_a_foreign_connection_id_is_dropped() {
    let mut h = Harness::default();
    h.conn_id = 7;
    assert_eq!(
        h.send(&linux_contact(Version::V6_0, FeatureFlags::EMPTY)),
        Err(MessageError::WrongConnectionId {
            expected: MESSAGE_CONNECTION_ID_4,
            got: 7
        })
    );
    h.assert_quiet();
    // Both protocol connections are accepted for contact.
    h.conn_id = MESSAGE_CONNECTION_ID;
    assert_eq!(
        h.send(&linux_contact(Version::WIN10, FeatureFlags::EMPTY)),
        Ok(())
    );
}

#[test]
fn after_contact_messages_must_use_the_negotiated_connection() {
    let mut h = Harness::default();
    h.connect(Version::WIN10_V5_3);
    h.conn_id = MESSAGE_CONNECTION_ID;
    assert_eq!(
        h.send(&RequestOffers {}),
        Err(MessageError::WrongConnectionId {
            expected: MESSAGE_CONNECTION_ID_4,
            got: MESSAGE_CONNECTION_ID
        })
    );
    h.assert_quiet();

    let mut h = Harness::default();
    h.connect(Version::WIN10_V4_1);
    assert_eq!(h.conn_id, MESSAGE_CONNECTION_ID);
    h.conn_id = MESSAGE_CONNECTION_ID_4;
    assert!(matches!(
        h.send(&RequestOffers {}),
        Err(MessageError::WrongConnectionId {
            expected: 1,
            got: 4
        })
    ));
}

#[test]
fn contact_while_connected_starts_over() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    h.env.events.clear();
    h.connect(Version::WIN10_V5_3);
    assert_eq!(
        h.env.events,
        [
            Event::Close(relid),
            Event::Unmap(relid, gpadl),
            Event::Disconnected,
            Event::Connected(Version::WIN10_V5_3),
        ]
    );
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Unsent));
    // The same device is offered again under the same relid.
    let offers = h.request_offers();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].child_relid, relid);
}

#[test]
fn a_refused_contact_while_connected_still_disconnects() {
    let (mut h, relid, _) = Harness::with_open_channel();
    assert!(h.send(&contact(Version(0x0009_0000), 0)).is_err());
    assert_eq!(response(&mut h).1.version_supported, 0);
    assert!(h.server.connection().is_none());
    assert_eq!(h.server.channel_state(relid), Some(ChannelState::Unsent));
    assert!(h.env.open.is_empty() && h.env.mapped.is_empty());
}

#[test]
fn the_connection_is_reported_to_the_environment() {
    let mut h = Harness::default();
    h.connect(Version::V6_0);
    let info = h.env.connection.expect("reported");
    assert_eq!(info.version, Version::V6_0);
    assert_eq!(
        info.target,
        MessageTarget {
            paravisor_synic: true,
            ..MessageTarget::DEFAULT
        }
    );
    assert_eq!(info.message_connection_id, 4);
    assert_eq!(
        h.env.signals, 1,
        "one signal per handled message that posted"
    );
}

#[test]
fn a_confidential_connection_lives_on_the_paravisor_synic() {
    let mut h = Harness::default();
    h.send(&linux_contact(
        Version::V6_0,
        FeatureFlags::CONFIDENTIAL_CHANNELS,
    ))
    .expect("contact");
    assert!(response(&mut h).0.paravisor_synic);
    h.send(&RequestOffers {}).expect("offers");
    assert!(h.next().0.paravisor_synic, "later messages too");

    // Refused, but still answered where the guest is listening.
    let mut h = Harness::default();
    let mut c = linux_contact(Version::V6_0, FeatureFlags::CONFIDENTIAL_CHANNELS);
    c.target_vcpu = 99;
    assert!(h.send(&c).is_err());
    assert!(response(&mut h).0.paravisor_synic);

    // Without the feature, or from a server that cannot grant it: the hypervisor's.
    let mut h = Harness::default();
    h.send(&linux_contact(Version::V6_0, FeatureFlags::EMPTY))
        .expect("contact");
    assert!(!response(&mut h).0.paravisor_synic);
    let mut config = Harness::config();
    config.confidential = false;
    let mut h = Harness::new(config);
    h.send(&linux_contact(
        Version::V6_0,
        FeatureFlags::CONFIDENTIAL_CHANNELS,
    ))
    .expect("contact");
    assert!(!response(&mut h).0.paravisor_synic);
}
