use vmbus_protocol::ids::interface;

use super::*;

fn offer() -> VspOffer {
    VspOffer {
        interface_id: interface::STORAGE,
        instance_id: Guid::from_fields(1, 2, 3, [4; 8]),
        subchannel_index: 2,
        flags: OfferFlags::NAMED_PIPE_MODE,
        mmio_megabytes: 7,
        mmio_megabytes_optional: 9,
        confidential_external_memory: true,
        user_defined: core::array::from_fn(|i| i as u8),
    }
}

fn open() -> VspOpen {
    VspOpen {
        relid: Relid(3),
        subchannel_index: 2,
        open_id: 4,
        ring_gpadl: GpadlId(5),
        downstream_page_offset: 6,
        target_vp: 7,
        target_sint: 2,
        paravisor_synic: true,
        confidentiality: Confidentiality {
            ring: true,
            external: false,
        },
        signal_connection_id: 0x2003,
        event_flag: 3,
        version: Version::V6_0,
        user_data: [9; 120],
    }
}

fn requests() -> [VspRequest; 6] {
    [
        VspRequest::GetOffer { slot: 7 },
        VspRequest::MapGpadl(MapGpadl {
            relid: Relid(1),
            gpadl: GpadlId(2),
            range_count: 1,
            words: 9,
            confidentiality: Confidentiality::NONE,
        }),
        VspRequest::UnmapGpadl {
            relid: Relid(1),
            gpadl: GpadlId(2),
        },
        VspRequest::Open(open()),
        VspRequest::Close { relid: Relid(1) },
        VspRequest::Modify {
            relid: Relid(1),
            target_vp: 1,
        },
    ]
}

#[test]
fn offers_round_trip_and_empty_slots_are_none() {
    let mut mrs = MessageRegisters::new();
    let reply = offer().encode(&mut mrs);
    assert_eq!(VspOffer::decode(reply, &mrs), Ok(Some(offer())));
    assert_eq!(
        VspOffer::decode(MessageInfo::new(REPLY_NONE, 0), &mrs),
        Ok(None)
    );
    assert_eq!(
        VspOffer::decode(MessageInfo::new(REPLY_OK, 3), &mrs),
        Err(DecodeError::TooShort { needed: 24, got: 3 })
    );
    assert_eq!(
        VspOffer::decode(MessageInfo::new(7, 24), &mrs),
        Err(DecodeError::UnknownLabel(7))
    );
    // The external-memory flag is a bool.
    mrs.0[8] = 2;
    assert_eq!(
        VspOffer::decode(reply, &mrs),
        Err(DecodeError::BadField("offer"))
    );
}

#[test]
fn every_request_round_trips() {
    for req in requests() {
        let mut mrs = MessageRegisters::new();
        let msg = req.encode(&mut mrs);
        assert_eq!(VspRequest::decode(msg, &mrs), Ok(req));
    }
}

#[test]
fn malformed_requests_are_refused_with_the_reason() {
    // (request index, register, value written over it, the field refused)
    let bad_fields: &[(usize, usize, u64, &str)] = &[
        (0, 0, MAX_OFFERS_PER_VSP as u64, "slot"), // past the offers
        (1, 0, 1 << 32, "relid"),
        (1, 2, 1 << 16, "range_count"),
        (1, 4, 8, "confidentiality"), // not a bool
        (3, 5, 1 << 30, "target_sint"),
        (3, 6, 2, "paravisor_synic"), // not a bool
        (5, 1, u64::MAX, "target_vp"),
    ];
    for &(i, reg, value, field) in bad_fields {
        let mut mrs = MessageRegisters::new();
        let msg = requests()[i].encode(&mut mrs);
        mrs.0[reg] = value;
        let want = Err(DecodeError::BadField(field));
        assert_eq!(VspRequest::decode(msg, &mrs), want, "{field}");
    }
    // (request index, registers sent, registers it needs): get-offer, unmap, open
    let short = [(0, 0, 1), (2, 1, 2), (3, 27, 28)];
    for (i, got, needed) in short {
        let mut mrs = MessageRegisters::new();
        let msg = requests()[i].encode(&mut mrs);
        let msg = MessageInfo::new(msg.label(), got);
        let want = Err(DecodeError::TooShort { needed, got });
        assert_eq!(VspRequest::decode(msg, &mrs), want, "{i}");
    }
    assert_eq!(
        VspRequest::decode(MessageInfo::new(0x9999, 9), &MessageRegisters::new()),
        Err(DecodeError::UnknownLabel(0x9999))
    );
}
