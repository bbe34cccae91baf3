use hvdef::message::{HvMessage, HvMessageHeader, HvMessageType, HV_MESSAGE_SIZE};

use zerocopy::FromZeros;

use super::*;

fn target() -> SintTarget {
    SintTarget {
        vp: 1,
        instance: Instance::HYPERVISOR,
        sint: 2,
    }
}

fn requests() -> [Request; 6] {
    let mut message = HvMessage::new_zeroed();
    message.header = HvMessageHeader {
        message_type: HvMessageType(0x8000_0001),
        payload_size: 16,
        ..HvMessageHeader::new_zeroed()
    };
    message.payload[..4].copy_from_slice(&[1, 2, 3, 4]);
    [
        Request::ReadMsr {
            vp: 1,
            instance: Instance::PARAVISOR,
            msr: 0x4000_0080,
        },
        Request::WriteMsr {
            vp: 0,
            instance: Instance::HYPERVISOR,
            msr: 0x4000_0090,
            value: u64::MAX,
        },
        Request::PostMessage {
            target: target(),
            message,
        },
        Request::SignalEvent {
            target: target(),
            flag: 7,
        },
        Request::GrantEvent {
            vsp: 1,
            relid: 3,
            target: target(),
            flag: 3,
        },
        Request::RevokeEvent { vsp: 1, relid: 3 },
    ]
}

#[test]
fn every_request_round_trips_in_the_layout_peers_expect() {
    for req in requests() {
        let mut mrs = MessageRegisters::new();
        let msg = req.encode(&mut mrs);
        assert_eq!(Request::decode(msg, &mrs), Ok(req.clone()));
    }
    let mut mrs = MessageRegisters::new();
    let msg = requests()[2].encode(&mut mrs);
    // vp, instance, sint, then the 256-byte message.
    assert_eq!(msg.count(), 3 + HV_MESSAGE_SIZE / 8);
    assert_eq!(&mrs.0[..4], &[1, 1, 2, 0x10_8000_0001]);
}

/// (what, label, count, register to corrupt, value, expected error)
type Case = (&'static str, u64, Option<usize>, usize, u64, DecodeError);

#[test]
fn malformed_requests_are_refused_with_the_reason() {
    let cases: &[Case] = &[
        (
            "unknown label",
            0x5399,
            None,
            0,
            0,
            DecodeError::UnknownLabel(0x5399),
        ),
        (
            "short MSR read",
            label::READ_MSR,
            Some(2),
            0,
            1,
            DecodeError::TooShort { needed: 3, got: 2 },
        ),
        (
            "short post",
            label::POST_MESSAGE,
            Some(34),
            0,
            1,
            DecodeError::TooShort {
                needed: 35,
                got: 34,
            },
        ),
        (
            "short signal",
            label::SIGNAL_EVENT,
            Some(3),
            0,
            1,
            DecodeError::TooShort { needed: 4, got: 3 },
        ),
        (
            "short grant",
            label::GRANT_EVENT,
            Some(5),
            0,
            1,
            DecodeError::TooShort { needed: 6, got: 5 },
        ),
        (
            "vp over 32 bits",
            label::READ_MSR,
            None,
            0,
            1 << 32,
            DecodeError::BadField("vp"),
        ),
        (
            "instance 2",
            label::READ_MSR,
            None,
            1,
            2,
            DecodeError::BadField("instance"),
        ),
        (
            "msr over 32 bits",
            label::WRITE_MSR,
            None,
            2,
            1 << 40,
            DecodeError::BadField("msr"),
        ),
        (
            "target instance",
            label::SIGNAL_EVENT,
            None,
            1,
            9,
            DecodeError::BadField("target"),
        ),
        (
            "sint over 8 bits",
            label::SIGNAL_EVENT,
            None,
            2,
            256,
            DecodeError::BadField("target"),
        ),
        (
            "flag over 32 bits",
            label::SIGNAL_EVENT,
            None,
            3,
            1 << 32,
            DecodeError::BadField("flag"),
        ),
        (
            "grant vsp over 8 bits",
            label::GRANT_EVENT,
            None,
            0,
            256,
            DecodeError::BadField("vsp"),
        ),
        (
            "revoke relid",
            label::REVOKE_EVENT,
            None,
            1,
            u64::MAX,
            DecodeError::BadField("relid"),
        ),
    ];
    for &(what, label, count, reg, value, want) in cases {
        let req = requests()
            .into_iter()
            .find(|r| r.label() == label)
            .unwrap_or(Request::RevokeEvent { vsp: 0, relid: 0 });
        let mut mrs = MessageRegisters::new();
        let msg = req.encode(&mut mrs);
        mrs.0[reg] = value;
        let msg = MessageInfo::new(label, count.unwrap_or(msg.count()));
        assert_eq!(Request::decode(msg, &mrs), Err(want), "{what}");
    }
}

#[test]
fn replies_decode_and_refuse_nonsense() {
    let mut mrs = MessageRegisters::new();
    let msg = MsrReply::Ok { value: 5 }.encode(&mut mrs);
    assert_eq!(
        MsrReply::decode(msg, &mrs).map(|r| (r.status(), r.value())),
        Ok((MsrStatus::Ok, 5))
    );
    assert_eq!(MsrStatus::from_label(2), Some(MsrStatus::NotSynic));
    assert_eq!(MsrStatus::from_label(3), None);

    let msg = DeliveryReply::from_result(Err(HvStatus::ACCESS_DENIED)).encode(&mut mrs);
    assert_eq!(
        DeliveryReply::decode(msg, &mrs).map(|r| r.result()),
        Ok(Err(HvStatus::ACCESS_DENIED))
    );
    mrs.0[0] = 1 << 16;
    assert_eq!(
        DeliveryReply::decode(msg, &mrs),
        Err(DecodeError::BadField("status"))
    );
    mrs.0[0] = 0;
    mrs.0[1] = 2;
    assert_eq!(
        DeliveryReply::decode(msg, &mrs),
        Err(DecodeError::BadField("flag"))
    );
    assert_eq!(
        GrantStatus::decode(MessageInfo::new(4, 0), &mrs),
        Err(DecodeError::UnknownLabel(4))
    );
}

#[test]
fn enable_requests_write_linuxs_sequence_for_the_named_vp_and_instance() {
    let reqs = enable_requests(1, Instance::HYPERVISOR, (0x8000, 0x9000), 2, 0x30);
    let writes = hvdef::synic::enable_writes(0x8000, 0x9000, 2, 0x30);
    for (req, (msr, value)) in reqs.into_iter().zip(writes) {
        assert_eq!(
            req,
            Request::WriteMsr {
                vp: 1,
                instance: Instance::HYPERVISOR,
                msr,
                value
            }
        );
    }
}
