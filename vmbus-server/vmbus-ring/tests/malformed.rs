//! A lying peer: each lie about indices, lengths, trailers, types or ranges must
//! break the ring with the matching `Corruption`, keep it broken, and never panic.

mod common;

use common::{in_band, send, take, Backing};
use vmbus_ring::protocol::control_offsets::{READ_INDEX, WRITE_INDEX};
use vmbus_ring::protocol::PacketType;
use vmbus_ring::{AttachError, Corruption, IncomingKind, IncomingRing, ReadError, WriteError};

/// Descriptor, then `body` cut or zero-padded to what `len8` claims (at most 2 KiB,
/// so lies about huge lengths do not wrap over the descriptor), then a trailer naming
/// offset 0.
fn raw(ty: u16, offset8: u16, len8: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(&offset8.to_le_bytes());
    v.extend_from_slice(&len8.to_le_bytes());
    v.extend_from_slice(&flags.to_le_bytes());
    v.extend_from_slice(&7u64.to_le_bytes());
    let mut body = body.to_vec();
    body.resize((usize::from(len8) * 8).saturating_sub(16).min(2048), 0);
    v.extend_from_slice(&body);
    v.extend_from_slice(&[0; 8]);
    v
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Publishes `bytes` as everything the writer wrote and returns what peek says.
fn peek_raw(bytes: &[u8], write_index: u32) -> Result<(), ReadError> {
    let b = Backing::new(1);
    b.poke(0, bytes);
    b.set_control(WRITE_INDEX, write_index);
    let mut r = b.reader();
    let first = r.peek().map(|_| ());
    if let Err(ReadError::Corrupt(c)) = first {
        // Sticky, even once the bytes are put right.
        b.poke(0, &raw(6, 2, 2, 0, &[]));
        assert_eq!(r.peek(), Err(ReadError::Corrupt(c)));
        assert_eq!(r.read(), Err(ReadError::Corrupt(c)));
        assert_eq!(r.commit(), Err(c));
        assert_eq!(r.unmask_interrupts(), Err(c));
        assert_eq!(r.corruption(), Some(c));
    }
    first
}

/// Name, bytes, write index, what peek must say.
type Case = (&'static str, Vec<u8>, u32, Result<(), ReadError>);

fn corrupt(c: Corruption) -> Result<(), ReadError> {
    Err(ReadError::Corrupt(c))
}

#[test]
fn lying_descriptors_and_headers_break_the_ring() {
    let ok = raw(6, 2, 3, 0, b"payload!");
    let mut bad_trailer = ok.clone();
    bad_trailer[24..32].copy_from_slice(&[0, 0, 0, 0, 8, 0, 0, 0]);

    let gpa = |count: u32, ranges: &[u32], offset8: u16| {
        let mut body = words(&[0xffff_ffff, count]);
        body.extend(words(ranges));
        raw(9, offset8, offset8, 1, &body)
    };
    let tp = |count: u32, offset8: u16| raw(7, offset8, offset8, 1, &words(&[1, count, 0, 0]));

    #[rustfmt::skip]
    let table: Vec<Case> = vec![
        ("valid in-band", ok.clone(), 32, Ok(())),
        ("fewer bytes than descriptor+trailer", ok.clone(), 16,
            corrupt(Corruption::TruncatedPacket { available: 16 })),
        ("offset8 zero", raw(6, 0, 3, 0, &[]), 32,
            corrupt(Corruption::BadDescriptorLengths { offset8: 0, len8: 3 })),
        ("offset8 inside the descriptor", raw(6, 1, 3, 0, &[]), 32,
            corrupt(Corruption::BadDescriptorLengths { offset8: 1, len8: 3 })),
        ("len8 below offset8", raw(6, 3, 2, 0, &[]), 24,
            corrupt(Corruption::BadDescriptorLengths { offset8: 3, len8: 2 })),
        ("len8 past the write index", raw(6, 2, 100, 0, &[]), 32,
            corrupt(Corruption::PacketPastWriteIndex { packet_len: 808, available: 32 })),
        ("len8 larger than the ring", raw(6, 2, 0xffff, 0, &[]), 32,
            corrupt(Corruption::PacketPastWriteIndex { packet_len: 0xffff * 8 + 8, available: 32 })),
        ("trailer names another offset", bad_trailer, 32,
            corrupt(Corruption::BadTrailer { expected: 0, found: 8 })),
        ("published bytes beyond the packet", raw(6, 2, 3, 0, &[]), 40,
            Ok(())),
        ("type 0", raw(0, 2, 2, 0, &[]), 24,
            corrupt(Corruption::UnknownPacketType(PacketType(0)))),
        ("type 8 (additional data)", raw(8, 2, 2, 0, &[]), 24,
            corrupt(Corruption::UnknownPacketType(PacketType(8)))),
        ("type 0xffff", raw(0xffff, 2, 2, 0, &[]), 24,
            corrupt(Corruption::UnknownPacketType(PacketType(0xffff)))),
        ("unknown flag", raw(6, 2, 2, 2, &[]), 24,
            corrupt(Corruption::UnknownFlags(2))),
        ("unknown flag with completion", raw(6, 2, 2, 0x8001, &[]), 24,
            corrupt(Corruption::UnknownFlags(0x8001))),
        ("gpa valid", gpa(1, &[100, 10, 5, 0], 5), 48, Ok(())),
        ("gpa header outside offset8", gpa(1, &[], 2), 24,
            corrupt(Corruption::HeaderTooShort { packet_type: PacketType::GPA_DIRECT, offset8: 2 })),
        ("gpa without ranges", gpa(0, &[], 3), 32,
            corrupt(Corruption::NoGpaRanges)),
        ("gpa range of zero bytes", gpa(1, &[0, 0, 5, 0], 5), 48,
            corrupt(Corruption::BadGpaRange { byte_count: 0, byte_offset: 0 })),
        ("gpa offset beyond a page", gpa(1, &[1, 4096, 5, 0], 5), 48,
            corrupt(Corruption::BadGpaRange { byte_count: 1, byte_offset: 4096 })),
        ("gpa byte count overflows", gpa(1, &[u32::MAX, 4095, 5, 0], 5), 48,
            corrupt(Corruption::BadGpaRange { byte_count: u32::MAX, byte_offset: 4095 })),
        ("gpa pages past the header", gpa(1, &[8192, 1, 5, 0], 5), 48,
            corrupt(Corruption::RangesPastHeader { range_count: 1 })),
        ("gpa range header past the header", gpa(2, &[8, 0, 5, 0], 5), 48,
            corrupt(Corruption::RangesPastHeader { range_count: 1 })),
        ("gpa huge range count", gpa(u32::MAX, &[8, 0, 5, 0], 5), 48,
            corrupt(Corruption::RangesPastHeader { range_count: u32::MAX - 1 })),
        ("transfer pages valid", tp(1, 4), 40, Ok(())),
        ("transfer header outside offset8", tp(1, 2), 24,
            corrupt(Corruption::HeaderTooShort { packet_type: PacketType::TRANSFER_PAGES, offset8: 2 })),
        ("transfer ranges past the header", tp(2, 4), 40,
            corrupt(Corruption::RangesPastHeader { range_count: 2 })),
        ("transfer huge range count", tp(u32::MAX, 4), 40,
            corrupt(Corruption::RangesPastHeader { range_count: u32::MAX })),
    ];
    for (name, bytes, write_index, expected) in table {
        assert_eq!(peek_raw(&bytes, write_index), expected, "{name}");
    }
}

#[test]
fn lying_write_index_breaks_the_reader() {
    let size = Backing::new(1).data_len();
    for (name, index, expected) in [
        (
            "past the end",
            size,
            Corruption::IndexOutOfRange { index: size },
        ),
        (
            "far past",
            u32::MAX,
            Corruption::IndexOutOfRange { index: u32::MAX },
        ),
        ("misaligned", 36, Corruption::IndexMisaligned { index: 36 }),
        (
            "moved backwards",
            32,
            Corruption::IndexImpossible { index: 32 },
        ),
    ] {
        let b = Backing::new(1);
        let mut w = b.writer();
        let mut r = b.reader();
        send(&mut w, 1, b"12345678");
        send(&mut w, 2, b"12345678");
        take(&mut r);
        take(&mut r);
        b.set_control(WRITE_INDEX, index);
        assert_eq!(r.peek(), Err(ReadError::Corrupt(expected)), "{name}");
        assert_eq!(r.commit(), Err(expected), "{name}");
        assert_eq!(r.is_empty(), Err(expected), "{name}");
    }
}

#[test]
fn lying_indices_at_attach_are_refused() {
    for (field, value, expected) in [
        (
            WRITE_INDEX,
            4096,
            Corruption::IndexOutOfRange { index: 4096 },
        ),
        (READ_INDEX, 4, Corruption::IndexMisaligned { index: 4 }),
    ] {
        let b = Backing::new(1);
        b.set_control(field, value);
        assert_eq!(
            IncomingRing::new(b.mem()).err(),
            Some(AttachError::Corrupt(expected))
        );
        assert_eq!(
            vmbus_ring::OutgoingRing::new(b.mem()).err(),
            Some(AttachError::Corrupt(expected))
        );
    }
}

#[test]
fn lying_read_index_breaks_the_writer() {
    let size = Backing::new(1).data_len();
    for (name, index, expected) in [
        (
            "past the end",
            size + 8,
            Corruption::IndexOutOfRange { index: size + 8 },
        ),
        ("misaligned", 12, Corruption::IndexMisaligned { index: 12 }),
        (
            "past the write index",
            64,
            Corruption::IndexImpossible { index: 64 },
        ),
        (
            "backwards",
            size - 8,
            Corruption::IndexImpossible { index: size - 8 },
        ),
    ] {
        let b = Backing::new(1);
        let mut w = b.writer();
        // 32 bytes: the read index may move to 0..=32. The next packet needs exactly
        // the free space, so the writer has to look at the read index.
        send(&mut w, 1, b"12345678");
        b.set_control(READ_INDEX, index);
        assert_eq!(
            w.write_packet(&in_band(2), &[&[0; 4040]]),
            Err(WriteError::Corrupt(expected)),
            "{name}"
        );
        // Sticky.
        assert_eq!(
            w.write_packet(&in_band(3), &[b"small"]),
            Err(WriteError::Corrupt(expected))
        );
        assert_eq!(w.commit(), Err(expected));
        assert_eq!(w.corruption(), Some(expected));
    }

    // The commit-time check (writer samples read_index to decide on a signal).
    let b = Backing::new(1);
    let mut w = b.writer();
    send(&mut w, 1, b"12345678");
    b.set_control(READ_INDEX, 4000);
    w.write_packet(&in_band(2), &[b"x"]).unwrap();
    assert_eq!(w.commit(), Err(Corruption::IndexImpossible { index: 4000 }));
}

#[test]
fn gpa_ranges_rewritten_after_peek_break_the_ring_when_walked() {
    let b = Backing::new(1);
    let mut body = words(&[0, 2]);
    body.extend(words(&[16, 0, 5, 0, 16, 0, 6, 0]));
    b.poke(0, &raw(9, 7, 7, 1, &body));
    b.set_control(WRITE_INDEX, 64);
    let mut r = b.reader();
    let packet = r.read().unwrap();
    let IncomingKind::GpaDirect(gpa) = packet.kind else {
        panic!("{packet:?}");
    };
    // The peer now claims the second range spans three pages.
    b.poke(40, &words(&[8192, 100]));
    let mut ranges = r.gpa_ranges(&gpa);
    assert!(ranges.next().unwrap().is_ok());
    let expected = Corruption::RangesPastHeader { range_count: 1 };
    assert_eq!(ranges.next(), Some(Err(expected)));
    assert_eq!(ranges.next(), None);
    drop(ranges);
    assert_eq!(r.corruption(), Some(expected));
    // A fresh walk reports the broken ring once, then ends.
    assert_eq!(r.gpa_ranges(&gpa).collect::<Vec<_>>(), [Err(expected)]);
    assert_eq!(r.commit(), Err(expected));
}

#[test]
fn ranges_from_another_ring_read_nothing() {
    let big = Backing::new(4);
    big.start_at(3 * 4096);
    let mut w = big.writer();
    let mut r2 = big.reader();
    send(&mut w, 1, &[1; 100]);
    let foreign = r2.read().unwrap().payload;

    let small = Backing::new(1);
    let small_reader = small.reader();
    let mut buf = [0u8; 100];
    assert_eq!(small_reader.copy_from(&foreign, 0, &mut buf), Ok(0));
    assert_eq!(r2.copy_from(&foreign, 1000, &mut buf), Ok(0));
    assert_eq!(r2.copy_from(&foreign, 96, &mut buf), Ok(8));
}
