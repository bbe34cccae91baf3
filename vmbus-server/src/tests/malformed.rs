//! Malformed and hostile input: a table of truncated messages, random bytes, and random
//! sequences of plausible messages and VSP actions. The server must never panic, and
//! after every step its invariants and the environment's view must agree.

use super::*;
use proptest::prelude::*;
use std::vec;

/// Every message type the server accepts, at its exact size.
fn guest_messages(relid: Relid) -> Vec<Vec<u8>> {
    std::vec![
        bytes(&RequestOffers {}),
        bytes(&open_msg(relid, GpadlId(1), 2)),
        bytes(&CloseChannel { child_relid: relid }),
        OutgoingMessage::with_tail(
            &GpadlHeader {
                child_relid: relid,
                gpadl: GpadlId(9),
                range_buf_len: 16,
                range_count: 1
            },
            &words_to_bytes(&[gpa::range_header(1, 0), 0x100]),
        )
        .unwrap()
        .as_bytes()
        .to_vec(),
        bytes(&GpadlBody {
            message_number: 0,
            gpadl: GpadlId(9)
        }),
        bytes(&GpadlTeardown {
            child_relid: relid,
            gpadl: GpadlId(1)
        }),
        bytes(&RelidReleased { child_relid: relid }),
        bytes(&linux_contact(
            Version::V6_0,
            FeatureFlags::CONFIDENTIAL_CHANNELS
        )),
        bytes(&ModifyChannel {
            child_relid: relid,
            target_vp: 0
        }),
        bytes(&TlConnectRequest {
            guest_endpoint_id: Guid::ZERO,
            host_service_id: Guid::ZERO
        }),
    ]
}

#[test]
fn every_message_one_byte_short_is_dropped_without_effect() {
    let (mut h, relid, _) = Harness::with_open_channel();
    h.env.events.clear();
    for m in guest_messages(relid) {
        let (header, _) = MessageHeader::read_from_prefix(&m).expect("header");
        // GPADL messages carry a variable tail: cut into the fixed part.
        let min = match header.message_type {
            MessageType::GPADL_HEADER => GpadlHeader::MESSAGE_SIZE,
            MessageType::GPADL_BODY => GpadlBody::MESSAGE_SIZE,
            _ => m.len(),
        };
        let r = h.raw(&m[..min - 1]);
        assert!(
            matches!(
                r,
                Err(MessageError::Parse(
                    ParseError::TooShort { .. } | ParseError::NoHeader { .. }
                ))
            ),
            "{:?}: {r:?}",
            header.message_type
        );
    }
    h.assert_quiet();
    assert!(h.env.events.is_empty());
}

#[test]
fn oversized_unknown_and_headerless_messages_are_dropped() {
    let (mut h, _, _) = Harness::with_open_channel();
    h.env.events.clear();
    let mut long = bytes(&RequestOffers {});
    long.resize(241, 0);
    let mut unknown = std::vec![0u8; 64];
    unknown[0] = 18; // OPEN_RESERVED_CHANNEL: Windows-internal
    for (m, expect) in [
        (long, "TooLong"),
        (unknown, "UnknownType"),
        (std::vec![5, 0, 0], "NoHeader"),
        (std::vec![], "NoHeader"),
    ] {
        let r = h.raw(&m);
        assert!(std::format!("{r:?}").contains(expect), "{r:?}");
    }
    h.assert_quiet();
    assert!(h.env.events.is_empty());
    assert!(h.env.logs.iter().any(|(l, _)| *l == Level::Warn));
}

#[derive(Clone, Debug)]
enum Step {
    Raw(Vec<u8>),
    Typed(u32, Vec<u8>),
    Contact {
        version: usize,
        raw: u32,
        sint: u8,
        vtl: u8,
        features: u32,
        vp: u32,
        monitors: u8,
    },
    RequestOffers,
    Gpadl {
        relid: u32,
        id: u32,
        pages: u64,
        outside: bool,
        split: bool,
    },
    Body {
        id: u32,
        pfn: u64,
    },
    Teardown {
        relid: u32,
        id: u32,
    },
    Open {
        relid: u32,
        id: u32,
        offset: u32,
        vp: u32,
    },
    /// A ring GPADL then an open on it, as a guest driver does.
    RingOpen {
        relid: u32,
        id: u32,
        pages: u64,
        offset: u32,
    },
    Close(u32),
    Release(u32),
    Modify {
        relid: u32,
        vp: u32,
    },
    Unload,
    Offer {
        instance: u32,
        relay: bool,
        fixed: Option<u32>,
    },
    Revoke(u32),
    Busy(bool),
    Flush,
    ConnId(u32),
    Reset,
}

fn step() -> impl Strategy<Value = Step> {
    let relid = 0u32..4;
    let id = 0u32..4;
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..250).prop_map(Step::Raw),
        1 => (0u32..32, proptest::collection::vec(any::<u8>(), 0..240)).prop_map(|(t, b)| Step::Typed(t, b)),
        1 => (
            0usize..12,
            any::<u32>(),
            prop_oneof![3 => Just(2u8), 1 => 0u8..18],
            prop_oneof![3 => Just(0u8), 1 => 0u8..3],
            any::<u32>(),
            prop_oneof![3 => Just(0u32), 1 => 0u32..6],
            prop_oneof![3 => Just(3u8), 1 => 0u8..4],
        )
            .prop_map(
            |(version, raw, sint, vtl, features, vp, monitors)| Step::Contact {
                version, raw, sint, vtl, features, vp, monitors
            }
        ),
        2 => Just(Step::RequestOffers),
        6 => (relid.clone(), id.clone(), 1u64..80, any::<bool>(), any::<bool>()).prop_map(
            |(relid, id, pages, outside, split)| Step::Gpadl { relid, id, pages, outside, split }
        ),
        2 => (id.clone(), any::<u64>()).prop_map(|(id, pfn)| Step::Body { id, pfn }),
        4 => (relid.clone(), id.clone()).prop_map(|(relid, id)| Step::Teardown { relid, id }),
        8 => (relid.clone(), id.clone(), prop_oneof![3 => Just(2u32), 1 => 0u32..12], 0u32..6).prop_map(|(relid, id, offset, vp)| Step::Open {
            relid, id, offset, vp
        }),
        8 => (1u32..4, id.clone(), 4u64..12, 2u32..5).prop_map(|(relid, id, pages, offset)| Step::RingOpen {
            relid, id, pages, offset
        }),
        4 => relid.clone().prop_map(Step::Close),
        2 => relid.clone().prop_map(Step::Release),
        2 => (relid.clone(), 0u32..6).prop_map(|(relid, vp)| Step::Modify { relid, vp }),
        1 => Just(Step::Unload),
        2 => (0u32..4, any::<bool>(), proptest::option::of(0u32..8)).prop_map(|(instance, relay, fixed)| {
            Step::Offer { instance, relay, fixed }
        }),
        2 => relid.prop_map(Step::Revoke),
        1 => any::<bool>().prop_map(Step::Busy),
        2 => Just(Step::Flush),
        1 => prop_oneof![Just(1u32), Just(4u32), 0u32..8].prop_map(Step::ConnId),
        1 => Just(Step::Reset),
    ]
}

fn run(h: &mut Harness, s: &Step) {
    let versions = Version::ALL;
    match s.clone() {
        Step::Raw(b) => {
            let _ = h.raw(&b);
        }
        Step::Typed(t, mut b) => {
            b.splice(0..b.len().min(4), t.to_le_bytes());
            let _ = h.raw(&b);
        }
        Step::Contact {
            version,
            raw,
            sint,
            vtl,
            features,
            vp,
            monitors,
        } => {
            let v = versions.get(version).copied().unwrap_or(Version(raw));
            let mut c = contact(v, InitiateContact::target_info(sint, vtl, features));
            c.target_vcpu = vp;
            let _ = h.send(&only_monitor_pages(c, monitors));
        }
        Step::RequestOffers => {
            let _ = h.send(&RequestOffers {});
        }
        Step::Gpadl {
            relid,
            id,
            pages,
            outside,
            split,
        } => {
            let base = if outside {
                RAM.start + RAM.count - 2
            } else {
                RAM.start
            };
            let pfns: Vec<u64> = (base..base + pages).collect();
            let msgs = linux_gpadl_messages(Relid(relid), GpadlId(id), &pfns);
            let n = if split {
                msgs.len().div_ceil(2)
            } else {
                msgs.len()
            };
            for m in &msgs[..n] {
                let _ = h.raw(m);
            }
        }
        Step::Body { id, pfn } => {
            let body = GpadlBody {
                message_number: 0,
                gpadl: GpadlId(id),
            };
            let m = OutgoingMessage::with_tail(&body, &words_to_bytes(&[pfn; 20])).unwrap();
            let _ = h.raw(m.as_bytes());
        }
        Step::Teardown { relid, id } => {
            let _ = h.send(&GpadlTeardown {
                child_relid: Relid(relid),
                gpadl: GpadlId(id),
            });
        }
        Step::Open {
            relid,
            id,
            offset,
            vp,
        } => {
            let mut m = open_msg(Relid(relid), GpadlId(id), offset);
            m.target_vp = vp;
            let _ = h.send(&m);
        }
        Step::RingOpen {
            relid,
            id,
            pages,
            offset,
        } => {
            let pfns: Vec<u64> = (RAM.start..RAM.start + pages).collect();
            for m in linux_gpadl_messages(Relid(relid), GpadlId(id), &pfns) {
                let _ = h.raw(&m);
            }
            h.check();
            let _ = h.send(&open_msg(Relid(relid), GpadlId(id), offset));
        }
        Step::Close(relid) => {
            let _ = h.send(&CloseChannel {
                child_relid: Relid(relid),
            });
        }
        Step::Release(relid) => {
            let _ = h.send(&RelidReleased {
                child_relid: Relid(relid),
            });
        }
        Step::Modify { relid, vp } => {
            let _ = h.send(&ModifyChannel {
                child_relid: Relid(relid),
                target_vp: vp,
            });
        }
        Step::Unload => {
            let _ = h.send(&Unload {});
        }
        Step::Offer {
            instance,
            relay,
            fixed,
        } => {
            let mut p = device(instance);
            if relay {
                p.source = OfferSource::Relay;
            }
            if let Some(r) = fixed {
                p.relid = RelidRequest::Fixed(Relid(r));
            }
            let _ = h.server.offer(&mut h.env, p);
        }
        Step::Revoke(relid) => {
            let _ = h.server.revoke(&mut h.env, Relid(relid));
        }
        Step::Busy(b) => h.env.busy = b,
        Step::Flush => h.server.flush(&mut h.env),
        Step::ConnId(c) => h.conn_id = c,
        Step::Reset => h.server.reset(&mut h.env),
    }
    h.check();
    // Everything the server sends must be a well-formed server-to-guest message.
    for (target, b) in h.env.sent.drain(..) {
        assert!(target.sint < 16);
        assert!(target.vp < 4);
        let m = parse(&b, ANY).expect("server sent garbage");
        // Everything but the 6.0 ModifyConnection/Pause answers, which it never grants.
        assert!(m.from_host(), "{m:?}");
        assert!(!matches!(
            m,
            Message::ModifyConnectionResponse(_) | Message::PauseResponse
        ));
    }
    assert!(h.server.pending_messages() <= 256 + 16);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_connected_or_not(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..260), 1..20), connect in any::<bool>()) {
        let mut h = Harness::default();
        h.offer(1);
        if connect {
            h.connect(Version::V6_0);
            h.request_offers();
        }
        for m in &msgs {
            let _ = h.raw(m);
        }
    }

    #[test]
    fn random_typed_messages_never_panic(t in 0u32..32, body in proptest::collection::vec(any::<u8>(), 0..232)) {
        let (mut h, _, _) = Harness::with_open_channel();
        let mut m = t.to_le_bytes().to_vec();
        m.extend([0; 4]);
        m.extend(body);
        let _ = h.raw(&m);
    }

    #[test]
    fn random_sessions_keep_the_server_consistent(enumerated in any::<bool>(), steps in proptest::collection::vec(step(), 1..60)) {
        let mut h = Harness::default();
        if enumerated {
            // Start from a connected guest holding two offers, where most bugs would be.
            h.offer(0);
            h.offer(1);
            h.connect(Version::V6_0);
            h.request_offers();
        }
        for s in &steps {
            run(&mut h, s);
        }
        // Whatever happened, an unload returns the server to a clean state.
        h.env.busy = false;
        h.server.flush(&mut h.env);
        h.conn_id = h.server.connection().map(|c| c.message_connection_id).unwrap_or(4);
        let _ = h.send(&Unload {});
        prop_assert_eq!(h.server.gpadl_count(), 0);
        prop_assert!(h.env.open.is_empty());
        prop_assert!(h.env.mapped.is_empty());
    }
}
