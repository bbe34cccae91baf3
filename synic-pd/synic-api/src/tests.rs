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

/// The request `requests()` has for `label` (REVOKE_EVENT's if none).
fn request(label: u64) -> Request {
    requests()
        .into_iter()
        .find(|r| r.label() == label)
        .unwrap_or(Request::RevokeEvent { vsp: 0, relid: 0 })
}

#[test]
fn malformed_requests_are_refused_with_the_reason() {
    // (label, register overwritten, value written over it, the field refused)
    let bad_fields: &[(u64, usize, u64, &str)] = &[
        (label::READ_MSR, 0, 1 << 32, "vp"),
        (label::READ_MSR, 1, 2, "instance"), // there is no instance 2
        (label::WRITE_MSR, 2, 1 << 40, "msr"),
        (label::SIGNAL_EVENT, 1, 9, "target"),   // its instance
        (label::SIGNAL_EVENT, 2, 256, "target"), // its sint, over 8 bits
        (label::SIGNAL_EVENT, 3, 1 << 32, "flag"),
        (label::GRANT_EVENT, 0, 256, "vsp"),
        (label::REVOKE_EVENT, 1, u64::MAX, "relid"),
    ];
    for &(label, reg, value, field) in bad_fields {
        let mut mrs = MessageRegisters::new();
        let msg = request(label).encode(&mut mrs);
        mrs.0[reg] = value;
        let want = Err(DecodeError::BadField(field));
        assert_eq!(Request::decode(msg, &mrs), want, "{label:#x} {field}");
    }
    // (label, registers sent, registers it needs): MSR read, post, signal, grant
    let short = [
        (label::READ_MSR, 2, 3),
        (label::POST_MESSAGE, 34, 35),
        (label::SIGNAL_EVENT, 3, 4),
        (label::GRANT_EVENT, 5, 6),
    ];
    for (label, got, needed) in short {
        let mut mrs = MessageRegisters::new();
        request(label).encode(&mut mrs);
        let want = Err(DecodeError::TooShort { needed, got });
        assert_eq!(Request::decode(MessageInfo::new(label, got), &mrs), want);
    }
    let unknown = MessageInfo::new(0x5399, 2);
    assert_eq!(
        Request::decode(unknown, &MessageRegisters::new()),
        Err(DecodeError::UnknownLabel(0x5399))
    );
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
