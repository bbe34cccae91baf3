use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;
use zerocopy::IntoBytes;

use crate::nvsp::{self, u32le, MessageType, ParseError, Version};
use crate::rndis::{self, ErrorKind, Message};

#[test]
fn nvsp_round_trips_every_table_entry() {
    let messages = [
        nvsp::Message::Init(nvsp::Init {
            min_version: u32le(Version::V2.0),
            max_version: u32le(Version::V61.0),
        }),
        nvsp::Message::SendReceiveBuffer(nvsp::SendBuffer {
            gpadl: u32le(7),
            id: nvsp::RECEIVE_BUFFER_ID.into(),
        }),
        nvsp::Message::SendReceiveBufferComplete(nvsp::SendReceiveBufferComplete {
            status: u32le(nvsp::Status::SUCCESS.0),
            section_count: u32le(1),
            section: nvsp::ReceiveBufferSection {
                offset: u32le(0),
                sub_allocation_size: u32le(1728),
                sub_allocation_count: u32le(10),
                end_offset: u32le(17280),
            },
        }),
        nvsp::Message::SendRndisPacket(nvsp::SendRndisPacket {
            channel_type: u32le(nvsp::CHANNEL_TYPE_CONTROL),
            section_index: u32le(nvsp::NO_SECTION),
            section_size: u32le(0),
        }),
        nvsp::Message::SendNdisConfig(nvsp::SendNdisConfig {
            mtu: u32le(1514),
            reserved: u32le(0),
            capabilities: 0x8u64.into(),
        }),
    ];
    for m in messages {
        let bytes = m.encode();
        assert_eq!(nvsp::Message::parse(&bytes), Ok(m));
    }
}

#[test]
fn nvsp_malformed_table() {
    let mut short_init = MessageType::INIT.0.to_le_bytes().to_vec();
    short_init.extend_from_slice(&[0; 7]);
    let cases: &[(&[u8], Result<nvsp::Message, ParseError>)] = &[
        (&[], Err(ParseError::NoHeader)),
        (&[1, 0, 0], Err(ParseError::NoHeader)),
        (&short_init, Err(ParseError::Truncated(MessageType::INIT))),
        (
            &[101, 0, 0, 0, 1, 2, 3, 4, 5],
            Err(ParseError::Truncated(MessageType::SEND_RECEIVE_BUFFER)),
        ),
        (
            &[0xff, 0xff, 0xff, 0xff],
            Ok(nvsp::Message::Unknown(MessageType(u32::MAX))),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(&nvsp::Message::parse(bytes), want, "{bytes:?}");
    }
}

#[test]
fn version_negotiation_picks_newest_in_range() {
    let table = [
        (Version::V61, Version::V61, Some(Version::V61)),
        (Version::V1, Version::V1, None),
        (Version::V1, Version::V5, Some(Version::V5)),
        (Version(0x50001), Version(0x5ffff), None),
        (Version::V2, Version::V4, Some(Version::V4)),
        (Version(0x70000), Version(u32::MAX), None),
        (Version::V61, Version::V2, None),
    ];
    for (min, max, want) in table {
        assert_eq!(Version::negotiate(min, max), want, "{min:?}..{max:?}");
    }
}

fn header(ty: u32, len: u32) -> Vec<u8> {
    [ty.to_le_bytes(), len.to_le_bytes()].concat()
}

/// A QUERY whose info buffer fields are given raw.
fn query(len_field: u32, info_len: u32, info_off: u32, extra: usize) -> Vec<u8> {
    let mut m = header(4, len_field);
    for w in [9, crate::oid::Oid::GEN_LINK_SPEED.0, info_len, info_off, 0] {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.extend(core::iter::repeat_n(0xaa, extra));
    m
}

fn packet(
    len_field: u32,
    data_off: u32,
    data_len: u32,
    ppi_off: u32,
    ppi_len: u32,
    tail: &[u8],
) -> Vec<u8> {
    let mut m = header(1, len_field);
    for w in [data_off, data_len, 0, 0, 0, ppi_off, ppi_len, 0, 0] {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.extend_from_slice(tail);
    m
}

#[test]
fn rndis_malformed_table() {
    let cases: Vec<(&str, Vec<u8>, ErrorKind, Option<u32>)> = vec![
        ("empty", vec![], ErrorKind::NoHeader, None),
        (
            "length below header",
            header(2, 4),
            ErrorKind::BadLength,
            None,
        ),
        (
            "length beyond bytes",
            header(2, 64),
            ErrorKind::BadLength,
            None,
        ),
        (
            "length u32::MAX",
            header(5, u32::MAX),
            ErrorKind::BadLength,
            None,
        ),
        (
            "init cut short",
            [header(2, 12), vec![1, 0, 0, 0]].concat(),
            ErrorKind::Truncated,
            Some(1),
        ),
        (
            "query info past end",
            query(28 + 8, 16, 20, 8),
            ErrorKind::BadRange,
            Some(9),
        ),
        (
            "query info offset wraps",
            query(28 + 4, 4, u32::MAX - 1, 4),
            ErrorKind::BadRange,
            Some(9),
        ),
        (
            "query info length huge",
            query(28 + 4, u32::MAX, 20, 4),
            ErrorKind::BadRange,
            Some(9),
        ),
        (
            "packet cut short",
            [header(1, 20), vec![0; 12]].concat(),
            ErrorKind::Truncated,
            None,
        ),
        (
            "frame past end",
            packet(44 + 10, 36, 11, 0, 0, &[0; 10]),
            ErrorKind::BadRange,
            None,
        ),
        (
            "frame offset huge",
            packet(44 + 10, u32::MAX, 10, 0, 0, &[0; 10]),
            ErrorKind::BadRange,
            None,
        ),
        (
            "empty frame",
            packet(44 + 10, 36, 0, 0, 0, &[0; 10]),
            ErrorKind::EmptyFrame,
            None,
        ),
        (
            "ppi past end",
            packet(44 + 10, 36, 10, 40, 12, &[0; 10]),
            ErrorKind::BadRange,
            None,
        ),
    ];
    for (name, bytes, kind, request_id) in cases {
        let e = rndis::parse(&bytes).expect_err(name);
        assert_eq!((e.kind, e.request_id), (kind, request_id), "{name}");
    }
}

#[test]
fn bad_per_packet_info_stops_the_walk() {
    // Sizes below the header, beyond the area, and an offset past the element.
    for (size, offset) in [(0u32, 12u32), (4, 12), (200, 12), (16, 17), (16, 4)] {
        let mut ppi = Vec::new();
        for w in [size, rndis::PpiType::IEEE_8021Q.0, offset, 0x123] {
            ppi.extend_from_slice(&w.to_le_bytes());
        }
        let mut m = Vec::new();
        rndis::data_packet(&[1, 2, 3], &ppi, &mut m);
        let (Message::Packet(p), _) = rndis::parse(&m).unwrap() else {
            panic!("not a packet")
        };
        let items: Vec<_> = p.per_packet_info().collect();
        assert_eq!(
            items,
            vec![Err(ErrorKind::BadPerPacketInfo)],
            "size {size} offset {offset}"
        );
        assert_eq!(p.vlan_tci(), Err(ErrorKind::BadPerPacketInfo));
    }
}

#[test]
fn data_packet_round_trip_with_vlan() {
    let frame: Vec<u8> = (0..60).collect();
    let mut ppi = Vec::new();
    rndis::push_ppi(
        rndis::PpiType::HASH_VALUE,
        false,
        &7u32.to_le_bytes(),
        &mut ppi,
    );
    // vlan 42, priority 5, in the word as Linux's `ndis_pkt_8021q_info` has it.
    let vlan_at = ppi.len();
    rndis::push_vlan(5 << 13 | 42, &mut ppi);
    assert_eq!(ppi[vlan_at + 12..], (5u32 | 42 << 4).to_le_bytes());
    let mut m = Vec::new();
    rndis::data_packet(&frame, &ppi, &mut m);
    // A second message right after: the walker returns each length.
    let first_len = m.len();
    rndis::data_packet(&[9; 14], &[], &mut m);
    let (Message::Packet(p), len) = rndis::parse(&m).unwrap() else {
        panic!()
    };
    assert_eq!(len, first_len);
    assert_eq!(p.frame, &frame[..]);
    assert_eq!(p.vlan_tci(), Ok(Some(5 << 13 | 42)));
    let (Message::Packet(q), _) = rndis::parse(&m[len..]).unwrap() else {
        panic!()
    };
    assert_eq!(q.frame, &[9; 14]);
    assert_eq!(q.vlan_tci(), Ok(None));
}

#[test]
fn vlan_tag_round_trip() {
    // Every field at its extremes, CFI alone, and a typical tag.
    for tci in [0u16, 0xffff, 1 << 12, 7 << 13, 0xfff, 5 << 13 | 42] {
        let mut ppi = Vec::new();
        rndis::push_vlan(tci, &mut ppi);
        let mut m = Vec::new();
        rndis::data_packet(&[1; 14], &ppi, &mut m);
        let (Message::Packet(p), _) = rndis::parse(&m).unwrap() else {
            panic!("not a packet")
        };
        assert_eq!(p.vlan_tci(), Ok(Some(tci)), "tci {tci:#x}");
    }
}

#[test]
fn query_complete_round_trip() {
    let mut m = Vec::new();
    rndis::query_complete(3, rndis::Status::SUCCESS, &[1, 2, 3, 4, 5, 6], &mut m);
    let (Message::QueryComplete(c, info), _) = rndis::parse(&m).unwrap() else {
        panic!()
    };
    assert_eq!(c.request_id.get(), 3);
    assert_eq!(info, &[1, 2, 3, 4, 5, 6]);
    let offload = crate::oid::Offload {
        header: Default::default(),
        checksum: Default::default(),
        lso_v1: Default::default(),
        ipsec_v1: Default::default(),
        lso_v2: Default::default(),
        flags: Default::default(),
        ipsec_v2: [0; 32],
        rsc: [0; 4],
        encapsulation_gre: Default::default(),
    };
    assert_eq!(offload.as_bytes().len(), 156);
}

proptest! {
    #[test]
    fn nvsp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(m) = nvsp::Message::parse(&bytes) {
            // Whatever parsed re-encodes to something that parses the same.
            if !matches!(m, nvsp::Message::Unknown(_)) {
                prop_assert_eq!(nvsp::Message::parse(&m.encode()), Ok(m));
            }
        }
    }

    #[test]
    fn rndis_parse_stays_inside(bytes in proptest::collection::vec(any::<u8>(), 0..256), ty in 0u32..10, len in 0u32..300) {
        let mut m = header(ty, len);
        m.extend_from_slice(&bytes);
        if let Ok((msg, used)) = rndis::parse(&m) {
            prop_assert!(used <= m.len());
            if let Message::Packet(p) = msg {
                prop_assert!(!p.frame.is_empty());
                for info in p.per_packet_info().take(64) {
                    let _ = info;
                }
            }
        }
    }
}
