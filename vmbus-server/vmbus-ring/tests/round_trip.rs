//! Every packet kind through a ring and back, at positions that make packets wrap,
//! plus the exact Linux byte layout.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::{in_band, padded, take, Backing};
use ipc::{Perms, Region};
use vmbus_ring::protocol::{control_offsets, PAGE_SIZE};
use vmbus_ring::{
    GpaRangeRef, GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket,
    OutgoingRing, ReadError, RingMem, TransferPageRange,
};

#[test]
fn in_band_bytes_match_the_linux_layout() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let packet = OutgoingPacket {
        transaction_id: 0x1122_3344_5566_7788,
        completion_requested: true,
        kind: OutgoingKind::InBand,
    };
    w.write_packet(&packet, &[b"hello"]).unwrap();
    // Nothing is published before commit.
    assert_eq!(b.write_index(), 0);
    assert!(w.commit().unwrap());
    assert_eq!(b.write_index(), 16 + 8 + 8);

    let mut expected = vec![
        6, 0, // type: in-band
        2, 0, // offset8: 16-byte descriptor
        3, 0, // len8: descriptor + 8 payload bytes
        1, 0, // flags: completion requested
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
    ];
    expected.extend_from_slice(b"hello\0\0\0");
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // trailer: start 0 << 32
    assert_eq!(b.peek_bytes(0, expected.len()), expected);

    // The second packet's trailer names where it starts.
    w.write_packet(&in_band(1), &[&[0xaa; 8]]).unwrap();
    let _ = w.commit().unwrap();
    assert_eq!(b.peek_bytes(32 + 24, 8), [0, 0, 0, 0, 32, 0, 0, 0]);
}

#[test]
fn every_kind_round_trips_with_its_fields() {
    let b = Backing::new(2);
    let mut w = b.writer();
    let mut r = b.reader();

    let pfns_a = [0x1000u64, 0x2000];
    let pfns_b = [0xdead_beefu64];
    let gpa = [
        GpaRangeRef {
            byte_count: 4096,
            byte_offset: 100,
            pfns: &pfns_a,
        },
        GpaRangeRef {
            byte_count: 12,
            byte_offset: 4000,
            pfns: &pfns_b,
        },
    ];
    let tp = [
        TransferPageRange {
            byte_count: 1500,
            byte_offset: 0,
        },
        TransferPageRange {
            byte_count: 60,
            byte_offset: 4096,
        },
        TransferPageRange {
            byte_count: 9000,
            byte_offset: 8192,
        },
    ];
    let packets = [
        (in_band(1), &b"in-band, no completion"[..]),
        (
            OutgoingPacket {
                transaction_id: 2,
                completion_requested: true,
                kind: OutgoingKind::InBand,
            },
            &b"in-band, completion requested!"[..],
        ),
        (
            OutgoingPacket {
                transaction_id: 3,
                completion_requested: false,
                kind: OutgoingKind::Completion,
            },
            &b"status 0"[..],
        ),
        (
            OutgoingPacket {
                transaction_id: 4,
                completion_requested: true,
                kind: OutgoingKind::GpaDirect(&gpa),
            },
            &b"scsi request block"[..],
        ),
        (
            OutgoingPacket {
                transaction_id: 5,
                completion_requested: true,
                kind: OutgoingKind::TransferPages {
                    transfer_page_set_id: 0xcafe,
                    ranges: &tp,
                },
            },
            &b"rndis"[..],
        ),
        (in_band(6), &b""[..]),
    ];
    for (p, payload) in &packets {
        w.write_packet(p, &[payload]).unwrap();
    }
    assert!(w.commit().unwrap());

    for (sent, payload) in &packets {
        let got = r.read().unwrap();
        assert_eq!(got.transaction_id, sent.transaction_id);
        assert_eq!(got.completion_requested, sent.completion_requested);
        let mut buf = vec![0; got.payload.len()];
        r.copy_from(&got.payload, 0, &mut buf).unwrap();
        assert_eq!(buf, padded(payload));
        match (got.kind, sent.kind) {
            (IncomingKind::InBand, OutgoingKind::InBand) => {}
            (IncomingKind::Completion, OutgoingKind::Completion) => {}
            (IncomingKind::GpaDirect(g), OutgoingKind::GpaDirect(sent_ranges)) => {
                assert_eq!(g.range_count as usize, sent_ranges.len());
                let ranges: Vec<_> = r.gpa_ranges(&g).map(Result::unwrap).collect();
                assert_eq!(ranges.len(), sent_ranges.len());
                for (got, sent) in ranges.iter().zip(sent_ranges) {
                    assert_eq!(got.byte_count, sent.byte_count);
                    assert_eq!(got.byte_offset, sent.byte_offset);
                    let mut pfns = vec![0; got.pfn_count()];
                    assert_eq!(r.read_pfns(got, 0, &mut pfns).unwrap(), sent.pfns.len());
                    assert_eq!(pfns, sent.pfns);
                }
                // Partial reads of the page list.
                let mut one = [0u64; 4];
                assert_eq!(r.read_pfns(&ranges[0], 1, &mut one).unwrap(), 1);
                assert_eq!(one[0], 0x2000);
            }
            (
                IncomingKind::TransferPages(t),
                OutgoingKind::TransferPages {
                    transfer_page_set_id,
                    ranges,
                },
            ) => {
                assert_eq!(t.transfer_page_set_id, transfer_page_set_id);
                assert_eq!(t.range_count as usize, ranges.len());
                let got: Vec<_> = r.transfer_ranges(&t).map(Result::unwrap).collect();
                assert_eq!(got, ranges);
            }
            (got, sent) => panic!("sent {sent:?}, got {got:?}"),
        }
    }
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert!(!r.commit().unwrap());
    assert_eq!(b.read_index(), b.write_index());
}

/// Starts the ring at every 8-byte position of the last 64 bytes, so descriptors,
/// headers, payloads and trailers each get split at the end of the data area.
#[test]
fn packets_split_at_the_end_of_the_data_area_round_trip() {
    let pfns = [7u64, 8, 9];
    let gpa = [GpaRangeRef {
        byte_count: 8192,
        byte_offset: 8,
        pfns: &pfns,
    }];
    let tp = [TransferPageRange {
        byte_count: 1,
        byte_offset: 2,
    }];
    for back in (8..=64).step_by(8) {
        let b = Backing::new(1);
        b.start_at(b.data_len() - back);
        let mut w = b.writer();
        let mut r = b.reader();
        let payload: Vec<u8> = (0..45u8).collect();
        for kind in [
            OutgoingKind::InBand,
            OutgoingKind::GpaDirect(&gpa),
            OutgoingKind::TransferPages {
                transfer_page_set_id: 3,
                ranges: &tp,
            },
            OutgoingKind::Completion,
        ] {
            let p = OutgoingPacket {
                transaction_id: u64::from(back),
                completion_requested: false,
                kind,
            };
            w.write_packet(&p, &[&payload[..20], &payload[20..]])
                .unwrap();
            let _ = w.commit().unwrap();
            let got = r.read().unwrap();
            let mut buf = vec![0; got.payload.len()];
            r.copy_from(&got.payload, 0, &mut buf).unwrap();
            assert_eq!(buf, padded(&payload), "back={back} kind={kind:?}");
            if let IncomingKind::GpaDirect(g) = got.kind {
                let range = r.gpa_ranges(&g).next().unwrap().unwrap();
                let mut out = [0; 3];
                r.read_pfns(&range, 0, &mut out).unwrap();
                assert_eq!(out, pfns);
            }
            if let IncomingKind::TransferPages(t) = got.kind {
                let got: Vec<_> = r.transfer_ranges(&t).map(Result::unwrap).collect();
                assert_eq!(got, tp);
            }
            let _ = r.commit().unwrap();
        }
    }
}

#[test]
fn peek_does_not_consume_and_revert_rereads() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();
    common::send(&mut w, 1, b"one");
    common::send(&mut w, 2, b"two");

    assert_eq!(r.peek().unwrap().transaction_id, 1);
    assert_eq!(r.peek().unwrap().transaction_id, 1);
    r.consume().unwrap();
    assert_eq!(r.peek().unwrap().transaction_id, 2);
    r.revert();
    assert_eq!(take(&mut r).0, 1);
    assert_eq!(take(&mut r).0, 2);
    // Consumed but uncommitted packets still hold their space.
    assert_eq!(b.read_index(), 0);
    let _ = r.commit().unwrap();
    assert_eq!(b.read_index(), b.write_index());
}

#[test]
fn uncommitted_packets_are_invisible_and_revertable() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();
    w.write_packet(&in_band(1), &[b"dropped"]).unwrap();
    assert_eq!(r.peek(), Err(ReadError::Empty));
    w.revert();
    assert!(!w.commit().unwrap());
    assert_eq!(b.write_index(), 0);

    // An abandoned reservation leaves nothing behind either.
    let mut writer = w.reserve(&in_band(2), 100).unwrap();
    writer.write(0, b"never finished").unwrap();
    assert!(!w.commit().unwrap());
    assert!(common::send(&mut w, 3, b"kept"));
    assert_eq!(take(&mut r).0, 3);
}

#[test]
fn reserve_write_finish_builds_payload_out_of_order() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();
    let mut pw = w.reserve(&in_band(9), 11).unwrap();
    assert_eq!(pw.payload_len(), 11);
    pw.write(6, b"world").unwrap();
    pw.write(0, b"hello ").unwrap();
    assert!(pw.write(7, b"toolong").is_err());
    assert!(pw.write(usize::MAX, b"x").is_err());
    pw.finish().unwrap();
    let _ = w.commit().unwrap();
    assert_eq!(take(&mut r).1, padded(b"hello world"));
}

#[test]
fn packets_of_every_size_up_to_the_maximum_fit_an_empty_ring() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();
    let max = w.max_packet_ring_size();
    let max_payload = max - 16 - 8;
    let payload = vec![0x5a; max_payload];
    for len in [0, 1, 7, 8, 9, 1000, max_payload] {
        w.write_packet(&in_band(len as u64), &[&payload[..len]])
            .unwrap();
        let _ = w.commit().unwrap();
        assert_eq!(take(&mut r).1, padded(&payload[..len]));
        let _ = r.commit().unwrap();
    }
    assert!(matches!(
        w.write_packet(&in_band(0), &[&vec![0; max_payload + 1]]),
        Err(vmbus_ring::WriteError::Invalid(_))
    ));
}

/// A ring described by a GPADL: scattered guest pages, both endpoints mapping it
/// through their own page list view of guest RAM.
#[test]
fn gpadl_page_list_rings_round_trip_across_scattered_pages() {
    let ram_words: Vec<AtomicU64> = (0..8 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect();
    let ram = Region::from_atomics(&ram_words, Perms::RW);
    let pages = [5u64, 2, 7, 0];
    let client = GpadlRingMem::new(ram, pages).unwrap();
    client.control().initialize();
    let server = GpadlRingMem::new(ram, &pages[..]).unwrap();
    assert_eq!(server.data_len(), 3 * PAGE_SIZE);

    // Start near the end of data page 0 so packets cross pages 2 -> 7 and wrap.
    let start = (PAGE_SIZE - 40) as u32;
    for index in [control_offsets::WRITE_INDEX, control_offsets::READ_INDEX] {
        ram.atomic_u32(5 * PAGE_SIZE + index)
            .unwrap()
            .store(start, Ordering::SeqCst);
    }
    let mut w = OutgoingRing::new(client).unwrap();
    let mut r = IncomingRing::new(server).unwrap();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    for round in 0..10u64 {
        w.write_packet(&in_band(round), &[&payload]).unwrap();
        let _ = w.commit().unwrap();
        if round == 0 {
            // The first descriptor lands at the end of guest page 2, the first data page.
            let desc: [u8; 2] = ram.read(2 * PAGE_SIZE + start as usize).unwrap();
            assert_eq!(desc, [6, 0]);
        }
        let (txid, got) = take(&mut r);
        assert_eq!(txid, round);
        assert_eq!(got, padded(&payload));
        let _ = r.commit().unwrap();
    }
}

#[test]
fn gpadl_pages_outside_guest_memory_are_refused() {
    let ram_words: Vec<AtomicU64> = (0..4 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect();
    let ram = Region::from_atomics(&ram_words, Perms::RW);
    assert!(GpadlRingMem::new(ram, [0u64, 4]).is_err());
    assert!(GpadlRingMem::new(ram, [u64::MAX, 1]).is_err());
    assert!(GpadlRingMem::new(ram, [1u64 << 52, 1]).is_err());
    assert!(GpadlRingMem::new(ram, [0u64]).is_err());
    assert!(GpadlRingMem::new(ram.restrict(Perms::R), [0u64, 1]).is_err());
    assert!(GpadlRingMem::new(ram, [3u64, 3]).is_ok());
}

#[test]
fn ring_sizes_must_be_whole_pages() {
    let words: Vec<AtomicU64> = (0..(PAGE_SIZE + 8) / 8)
        .map(|_| AtomicU64::new(0))
        .collect();
    let region = Region::from_atomics(&words, Perms::RW);
    assert!(vmbus_ring::RegionRingMem::new(region).is_err());
    let control = region.subregion(0, PAGE_SIZE).unwrap();
    let data = region.subregion(PAGE_SIZE, 8).unwrap();
    let mem = vmbus_ring::RegionRingMem::from_parts(control, data).unwrap();
    assert!(matches!(
        IncomingRing::new(mem),
        Err(vmbus_ring::AttachError::BadDataSize { len: 8 })
    ));
    // Three data pages is fine: Linux does not require powers of two.
    let b = Backing::new(3);
    assert_eq!(b.reader().data_len(), 3 * PAGE_SIZE as u32);
}

/// Descriptors and trailers move as whole words where the data area is 8-aligned;
/// a data area mapped at an odd address must still carry the same bytes.
#[test]
fn a_data_area_at_an_unaligned_address_round_trips() {
    let words: Vec<AtomicU64> = (0..(2 * PAGE_SIZE + 8) / 8)
        .map(|_| AtomicU64::new(0))
        .collect();
    let region = Region::from_atomics(&words, Perms::RW);
    let control = region.subregion(0, PAGE_SIZE).unwrap();
    let data = region.subregion(PAGE_SIZE + 4, PAGE_SIZE).unwrap();
    let mem = vmbus_ring::RegionRingMem::from_parts(control, data).unwrap();
    mem.control().initialize();
    let mut w = OutgoingRing::new(mem).unwrap();
    let mut r = IncomingRing::new(mem).unwrap();
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
    // Five laps of a 1 KiB packet around a 4 KiB ring: every packet lands at a new
    // offset and some wrap.
    for round in 0..20u64 {
        w.write_packet(&in_band(round), &[&payload]).unwrap();
        let _ = w.commit().unwrap();
        let got = r.read().unwrap();
        assert_eq!(got.transaction_id, round);
        let mut buf = vec![0; got.payload.len()];
        r.copy_from(&got.payload, 0, &mut buf).unwrap();
        assert_eq!(buf, padded(&payload), "round {round}");
        let _ = r.commit().unwrap();
    }
}

#[test]
fn write_prefetch_hints_at_the_wrap_or_past_the_ring_change_nothing() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();
    let size = b.data_len();
    // Walk the write index around the ring, hinting at every position.
    for id in 0..200u64 {
        let before = b.peek_bytes(0, size as usize);
        for len in [0, 8, 100, size - 8, size, u32::MAX] {
            w.prefetch_next(len);
        }
        assert_eq!(b.peek_bytes(0, size as usize), before, "packet {id}");
        w.write_packet(&in_band(id), &[&[id as u8; 40]]).unwrap();
        let _ = w.commit().unwrap();
        assert_eq!(take(&mut r), (id, vec![id as u8; 40]));
        let _ = r.commit().unwrap();
    }
}
