//! GPADL_HEADER / GPADL_BODY / GPADL_CREATED / GPADL_TEARDOWN / GPADL_TORNDOWN.

use super::*;
use vmbus_protocol::status::*;

fn header(relid: Relid, id: GpadlId, words: &[u64], range_count: u16) -> Vec<u8> {
    let h = GpadlHeader {
        child_relid: relid,
        gpadl: id,
        range_buf_len: (words.len() * 8) as u16,
        range_count,
    };
    OutgoingMessage::with_tail(&h, &words_to_bytes(words))
        .expect("fits")
        .as_bytes()
        .to_vec()
}

/// A GPADL_HEADER with the whole of a one-page, one-byte GPADL.
fn one_page_header(relid: Relid, id: GpadlId) -> Vec<u8> {
    header(relid, id, &[gpa::range_header(1, 0), 0x100], 1)
}

fn created(h: &mut Harness) -> GpadlCreated {
    h.expect()
}

/// Takes the GPADL_CREATED refusing `relid`'s GPADL `id` as malformed.
fn assert_refused(h: &mut Harness, relid: Relid, id: GpadlId) {
    let c = created(h);
    assert_eq!(
        (c.child_relid, c.gpadl, c.status),
        (relid, id, STATUS_INVALID_PARAMETER)
    );
}

#[test]
fn a_single_message_gpadl_is_created_and_mapped() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(
        h.gpadl(relid, GpadlId(1), &[0x100, 0x101, 0x200]),
        STATUS_SUCCESS
    );
    let (owner, pfns, _) = &h.env.mapped[&GpadlId(1)];
    assert_eq!(
        (*owner, pfns.as_slice()),
        (relid, &[0x100, 0x101, 0x200][..])
    );
}

#[test]
fn a_multi_message_gpadl_completes_only_with_its_last_body() {
    let (mut h, relid) = Harness::with_channel();
    // 26 in the header, 28 per body: 200 pages take 1 + 7 messages.
    let pfns: Vec<u64> = (0x400..0x400 + 200).collect();
    assert_eq!(linux_gpadl_messages(relid, GpadlId(5), &pfns).len(), 8);
    assert_eq!(h.gpadl(relid, GpadlId(5), &pfns), STATUS_SUCCESS);
    assert_eq!(h.env.mapped[&GpadlId(5)].1, pfns);
}

#[test]
fn full_size_trailing_bytes_are_ignored() {
    // Some clients always send a full 240-byte message; only the promised bytes count.
    let (mut h, relid) = Harness::with_channel();
    let mut words = std::vec![gpa::range_header(4096, 0), 0x300];
    words.resize(GpadlHeader::MAX_DATA / 8, 0xdead_beef);
    let mut m = header(relid, GpadlId(1), &words, 1);
    m[16..18].copy_from_slice(&16u16.to_le_bytes()); // range_buf_len: 2 words
    assert_eq!(h.raw(&m), Ok(()));
    assert_eq!(created(&mut h).status, STATUS_SUCCESS);
    assert_eq!(h.env.mapped[&GpadlId(1)].1, [0x300]);
}

#[test]
fn several_ranges_in_one_gpadl_are_accepted() {
    let (mut h, relid) = Harness::with_channel();
    let words = [
        gpa::range_header(100, 4000),
        0x500,
        0x501,
        gpa::range_header(4096, 0),
        0x600,
    ];
    assert_eq!(h.raw(&header(relid, GpadlId(2), &words, 2)), Ok(()));
    assert_eq!(created(&mut h).status, STATUS_SUCCESS);
    assert_eq!(h.env.mapped[&GpadlId(2)].1, [0x500, 0x501, 0x600]);
}

#[test]
fn pages_outside_guest_memory_are_refused() {
    let (mut h, relid) = Harness::with_channel();
    for (i, bad) in [0u64, RAM.start - 1, RAM.start + RAM.count, u64::MAX]
        .into_iter()
        .enumerate()
    {
        let id = GpadlId(100 + i as u32);
        assert_eq!(h.gpadl(relid, id, &[0x100, bad]), STATUS_INVALID_PARAMETER);
        assert!(h.env.mapped.is_empty());
    }
    assert_eq!(h.server.gpadl_count(), 0);
    // The last page of RAM is fine.
    assert_eq!(
        h.gpadl(relid, GpadlId(1), &[RAM.start + RAM.count - 1]),
        STATUS_SUCCESS
    );
}

#[test]
fn malformed_range_lists_are_refused() {
    let (mut h, relid) = Harness::with_channel();
    let cases: [(&[u64], u16); 5] = [
        // Claims two pages, carries one.
        (&[gpa::range_header(8192, 0), 0x100], 1),
        // Offset beyond the first page.
        (&[gpa::range_header(1, 4096), 0x100], 1),
        // Empty range.
        (&[gpa::range_header(0, 0), 0x100], 1),
        // A page more than the range needs.
        (&[gpa::range_header(1, 0), 0x100, 0x101], 1),
        // Two ranges promised, one given.
        (&[gpa::range_header(1, 0), 0x100], 2),
    ];
    for (i, (words, count)) in cases.into_iter().enumerate() {
        let id = GpadlId(i as u32);
        let r = h.raw(&header(relid, id, words, count));
        assert!(
            matches!(
                r,
                Err(MessageError::Gpadl {
                    error: GpadlError::Ranges(_),
                    ..
                })
            ),
            "{i}: {r:?}"
        );
        assert_refused(&mut h, relid, id);
    }
    assert_eq!(h.server.gpadl_count(), 0);
}

#[test]
fn bad_header_lengths_are_refused() {
    let (mut h, relid) = Harness::with_channel();
    let mut m = one_page_header(relid, GpadlId(1));
    m[16..18].copy_from_slice(&12u16.to_le_bytes());
    assert!(matches!(
        h.raw(&m),
        Err(MessageError::Gpadl {
            error: GpadlError::BadLength(12),
            ..
        })
    ));
    assert_refused(&mut h, relid, GpadlId(1));
    let m = header(relid, GpadlId(1), &[gpa::range_header(1, 0), 0x100], 0);
    assert!(h.raw(&m).is_err());
    assert_refused(&mut h, relid, GpadlId(1));
}

#[test]
fn a_gpadl_for_a_channel_the_guest_was_not_offered_is_answered_with_failure() {
    let (mut h, unheld) = Harness::with_unheld_relids();
    for relid in unheld {
        let r = h.raw(&one_page_header(relid, GpadlId(1)));
        assert!(matches!(r, Err(MessageError::UnknownChannel { .. })));
        assert_refused(&mut h, relid, GpadlId(1));
    }
    assert_eq!(h.server.gpadl_count(), 0);
}

#[test]
fn a_gpadl_for_a_revoked_channel_fails() {
    let (mut h, relid) = Harness::with_channel();
    h.revoke(relid);
    assert_eq!(
        h.gpadl(relid, GpadlId(1), &[0x100]),
        STATUS_DEVICE_NOT_CONNECTED
    );
}

#[test]
fn reusing_a_live_handle_fails_and_leaves_the_original_alone() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(h.gpadl(relid, GpadlId(1), &[0x100]), STATUS_SUCCESS);
    assert_eq!(
        h.gpadl(relid, GpadlId(1), &[0x200]),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(h.env.mapped[&GpadlId(1)].1, [0x100]);
    // Handles are per connection, not per channel.
    let other = h.offer(2);
    let _: OfferChannel = h.expect();
    assert_eq!(
        h.gpadl(other, GpadlId(1), &[0x300]),
        STATUS_INVALID_PARAMETER
    );
}

#[test]
fn reusing_a_handle_still_being_sent_is_dropped() {
    let (mut h, relid) = Harness::with_channel();
    let pfns: Vec<u64> = (0x100..0x100 + 40).collect();
    let msgs = linux_gpadl_messages(relid, GpadlId(1), &pfns);
    assert_eq!(h.raw(&msgs[0]), Ok(()));
    let r = h.raw(&one_page_header(relid, GpadlId(1)));
    assert!(matches!(
        r,
        Err(MessageError::Gpadl {
            error: GpadlError::Duplicate { complete: false },
            ..
        })
    ));
    h.assert_quiet();
    // The original completes normally.
    assert_eq!(h.raw(&msgs[1]), Ok(()));
    assert_eq!(created(&mut h).status, STATUS_SUCCESS);
    assert_eq!(h.env.mapped[&GpadlId(1)].1, pfns);
}

#[test]
fn stray_bodies_are_dropped() {
    let (mut h, relid) = Harness::with_channel();
    let body = GpadlBody {
        message_number: 0,
        gpadl: GpadlId(3),
    };
    let m = OutgoingMessage::with_tail(&body, &words_to_bytes(&[0x100])).unwrap();
    assert!(matches!(
        h.raw(m.as_bytes()),
        Err(MessageError::Gpadl {
            error: GpadlError::Unknown(_),
            ..
        })
    ));
    assert_eq!(h.gpadl(relid, GpadlId(3), &[0x100]), STATUS_SUCCESS);
    assert!(matches!(
        h.raw(m.as_bytes()),
        Err(MessageError::Gpadl {
            error: GpadlError::AlreadyComplete(_),
            ..
        })
    ));
    h.assert_quiet();
}

#[test]
fn teardown_unmaps_and_answers_torndown() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(h.gpadl(relid, GpadlId(4), &[0x100, 0x101]), STATUS_SUCCESS);
    assert_eq!(
        h.send(&GpadlTeardown {
            child_relid: relid,
            gpadl: GpadlId(4)
        }),
        Ok(())
    );
    let t: GpadlTorndown = h.expect();
    assert_eq!(t.gpadl, GpadlId(4));
    assert!(h.env.mapped.is_empty());
    // The handle can be used again.
    assert_eq!(h.gpadl(relid, GpadlId(4), &[0x100]), STATUS_SUCCESS);
}

#[test]
fn bad_teardowns_are_dropped() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(h.gpadl(relid, GpadlId(4), &[0x100]), STATUS_SUCCESS);
    let other = h.offer(2);
    let _: OfferChannel = h.expect();
    let cases = [(relid, GpadlId(5)), (other, GpadlId(4))];
    for (child_relid, gpadl) in cases {
        assert!(h.send(&GpadlTeardown { child_relid, gpadl }).is_err());
    }
    // In progress: nothing mapped yet to tear down.
    let pfns: Vec<u64> = (0x100..0x140).collect();
    let msgs = linux_gpadl_messages(relid, GpadlId(6), &pfns);
    h.raw(&msgs[0]).expect("header");
    assert!(h
        .send(&GpadlTeardown {
            child_relid: relid,
            gpadl: GpadlId(6)
        })
        .is_err());
    h.assert_quiet();
    assert_eq!(h.env.mapped.len(), 1);
}

#[test]
fn the_ring_of_an_open_channel_cannot_be_torn_down() {
    let (mut h, relid, gpadl) = Harness::with_open_channel();
    assert_eq!(
        h.send(&GpadlTeardown {
            child_relid: relid,
            gpadl
        }),
        Err(MessageError::Gpadl {
            gpadl,
            error: GpadlError::InUse(gpadl)
        })
    );
    h.assert_quiet();
    // After close it can.
    h.send(&CloseChannel { child_relid: relid }).expect("close");
    h.send(&GpadlTeardown {
        child_relid: relid,
        gpadl,
    })
    .expect("teardown");
    let _: GpadlTorndown = h.expect();
}

#[test]
fn a_mapping_failure_is_reported_to_the_guest() {
    let (mut h, relid) = Harness::with_channel();
    h.env.fail_map = Some(Status(STATUS_INSUFFICIENT_RESOURCES));
    assert_eq!(
        h.gpadl(relid, GpadlId(1), &[0x100]),
        STATUS_INSUFFICIENT_RESOURCES
    );
    assert_eq!(h.server.gpadl_count(), 0);
}

#[test]
fn gpadl_limits_answer_insufficient_resources() {
    let mut config = Harness::config();
    config.limits.max_gpadls = 2;
    config.limits.max_gpadl_pages = 64;
    let mut h = Harness::new(config);
    let relid = h.offer(1);
    h.connect(Version::V6_0);
    h.request_offers();
    assert_eq!(h.gpadl(relid, GpadlId(1), &[0x100]), STATUS_SUCCESS);
    // Refused at the header; the bodies that follow find no GPADL.
    let big: Vec<u64> = (0x100..0x100 + 70).collect();
    let msgs = linux_gpadl_messages(relid, GpadlId(2), &big);
    assert!(matches!(
        h.raw(&msgs[0]),
        Err(MessageError::Gpadl {
            error: GpadlError::Limit,
            ..
        })
    ));
    assert_eq!(created(&mut h).status, STATUS_INSUFFICIENT_RESOURCES);
    for m in &msgs[1..] {
        assert!(h.raw(m).is_err());
    }
    h.assert_quiet();
    assert_eq!(h.gpadl(relid, GpadlId(3), &[0x100]), STATUS_SUCCESS);
    assert_eq!(
        h.gpadl(relid, GpadlId(4), &[0x100]),
        STATUS_INSUFFICIENT_RESOURCES
    );
    h.send(&GpadlTeardown {
        child_relid: relid,
        gpadl: GpadlId(1),
    })
    .expect("teardown");
    let _: GpadlTorndown = h.expect();
    assert_eq!(h.gpadl(relid, GpadlId(4), &[0x100]), STATUS_SUCCESS);
}

#[test]
fn mapping_is_told_which_memory_stays_private() {
    let mut h = Harness::default();
    let plain = h.offer(1);
    let mut p = device(2);
    p.source = OfferSource::Paravisor {
        confidential_external_memory: true,
    };
    let external = h.server.offer(&mut h.env, p).expect("offer");
    let mut p = device(3);
    p.source = OfferSource::Relay;
    let relayed = h.server.offer(&mut h.env, p).expect("offer");
    h.connect(Version::V6_0);
    h.request_offers();
    for (i, relid) in [plain, external, relayed].into_iter().enumerate() {
        assert_eq!(h.gpadl(relid, GpadlId(i as u32), &[0x100]), STATUS_SUCCESS);
    }
    let conf = |id| h.env.mapped[&GpadlId(id)].2;
    assert_eq!(
        conf(0),
        Confidentiality {
            ring: true,
            external: false
        }
    );
    assert_eq!(
        conf(1),
        Confidentiality {
            ring: true,
            external: true
        }
    );
    assert_eq!(conf(2), Confidentiality::NONE);
}

#[test]
fn unload_and_release_free_every_gpadl_of_the_guest() {
    let (mut h, relid) = Harness::with_channel();
    assert_eq!(h.gpadl(relid, GpadlId(1), &[0x100]), STATUS_SUCCESS);
    let pfns: Vec<u64> = (0x100..0x140).collect();
    h.raw(&linux_gpadl_messages(relid, GpadlId(2), &pfns)[0])
        .expect("partial");
    h.send(&Unload {}).expect("unload");
    let _: UnloadResponse = h.expect();
    assert_eq!(h.server.gpadl_count(), 0);
    assert!(h.env.mapped.is_empty());
}
