use synic_api::Instance;

use super::*;

const TARGET: SintTarget = SintTarget {
    vp: 1,
    instance: Instance::PARAVISOR,
    sint: 2,
};

fn encoded<M: wire::Message>(m: &M) -> (MessageInfo, MessageRegisters) {
    let mut mrs = MessageRegisters::new();
    (m.encode(&mut mrs), mrs)
}

fn round_trips<M: wire::Message + PartialEq + core::fmt::Debug>(m: M) {
    let (msg, mrs) = encoded(&m);
    assert_eq!(M::decode(msg, &mrs), Ok(m));
}

#[test]
fn every_message_round_trips() {
    round_trips(HypercallRequest {
        vp: 1,
        vtl: Vtl::VTL1,
        control: Control(0x1_0005c),
        rdx: u64::MAX,
        r8: 7,
    });
    round_trips(HypercallRequest::vp0(Control(0x5c), 1, 2));
    round_trips(HypercallReply::SwitchVtl { vtl: Vtl::VTL2 });
    round_trips(CpuidReply::Leaf {
        eax: 1,
        ebx: 2,
        ecx: 3,
        edx: u32::MAX,
    });
    round_trips(CpuidReply::NotHandled);
    round_trips(WriteMsrRequest {
        vp: 0,
        vtl: Vtl::VTL0,
        msr: 0x4000_0001,
        value: 9,
    });
    for kind in [
        RouteKind::Service,
        RouteKind::Host,
        RouteKind::SynicMessage {
            target: TARGET,
            port_id: 4,
        },
        RouteKind::SynicEvent {
            target: TARGET,
            flag_base: 3,
            flag_count: 9,
        },
    ] {
        round_trips(Registration {
            connection_id: 0x2001,
            vtl: Vtl::VTL0,
            kind,
        });
    }
    round_trips(ConnectionGrant {
        vsp: 1,
        relid: 2,
        connection_id: 0x2002,
        vtl: Vtl::VTL0,
    });
    round_trips(ConnectionRevoke { vsp: 1, relid: 2 });
    round_trips(HostCall {
        vp: 3,
        control: Control(0x5c),
        input: 0x1000,
        output: 0x2000,
    });
    let context = InitialVpContextX64 {
        rip: 0xfff0,
        rsp: 0x8000,
        ..Default::default()
    };
    let mut mrs = MessageRegisters::new();
    let msg = encode_context(&context, &mut mrs);
    assert_eq!(msg.count(), size_of::<InitialVpContextX64>() / 8);
    assert_eq!(decode_context(msg, &mrs), Some(context));
}

/// A request's encoding, to corrupt.
type Encoded = fn() -> (MessageInfo, MessageRegisters);

/// Decodes `msg` as the request its label names, for the refusal alone.
fn decode_request(msg: MessageInfo, mrs: &MessageRegisters) -> Result<(), DecodeError> {
    match msg.label() {
        label::HYPERCALL => HypercallRequest::decode(msg, mrs).map(drop),
        label::REGISTER_CONNECTION => Registration::decode(msg, mrs).map(drop),
        _ => ConnectionGrant::decode(msg, mrs).map(drop),
    }
}

fn registration() -> (MessageInfo, MessageRegisters) {
    encoded(&Registration {
        connection_id: 5,
        vtl: Vtl::VTL0,
        kind: RouteKind::SynicEvent {
            target: TARGET,
            flag_base: 0,
            flag_count: 1,
        },
    })
}

fn hypercall() -> (MessageInfo, MessageRegisters) {
    encoded(&HypercallRequest {
        vp: 0,
        vtl: Vtl::VTL0,
        control: Control(0),
        rdx: 0,
        r8: 0,
    })
}

fn grant() -> (MessageInfo, MessageRegisters) {
    encoded(&ConnectionGrant {
        vsp: 0,
        relid: 1,
        connection_id: 0x2001,
        vtl: Vtl::VTL0,
    })
}

#[test]
fn malformed_requests_are_refused_with_the_reason() {
    // (request, register overwritten, value written over it, the field refused)
    let bad_fields: &[(Encoded, usize, u64, &str)] = &[
        (hypercall, 0, 1 << 32, "vp"),
        (hypercall, 1, 3, "vtl"),           // there is no VTL 3
        (registration, 2, 4, "kind"),       // the route tag
        (registration, 4, 2, "kind"),       // the target's instance
        (registration, 5, 16, "kind"),      // sint 16
        (registration, 6, 1 << 16, "kind"), // flag base over 16 bits
        (registration, 0, 1 << 32, "connection_id"),
        (grant, 0, 300, "vsp"),
        (grant, 3, 9, "vtl"),
    ];
    for &(make, reg, value, field) in bad_fields {
        let (msg, mut mrs) = make();
        mrs.0[reg] = value;
        let want = Err(DecodeError::BadField(field));
        assert_eq!(decode_request(msg, &mrs), want, "register {reg}: {field}");
    }
    // (request, registers sent, registers it needs)
    let short: [(Encoded, usize, usize); 2] = [(hypercall, 4, 5), (registration, 7, 8)];
    for (make, got, needed) in short {
        let (msg, mrs) = make();
        let msg = MessageInfo::new(msg.label(), got);
        let want = Err(DecodeError::TooShort { needed, got });
        assert_eq!(decode_request(msg, &mrs), want);
    }
    let (_, mrs) = hypercall();
    assert_eq!(
        HypercallRequest::decode(MessageInfo::new(label::CPUID, 5), &mrs),
        Err(DecodeError::UnknownLabel(label::CPUID))
    );
    assert_eq!(
        decode_forward(MessageInfo::new(label::HYPERCALL, 4), &mrs),
        Err(DecodeError::UnknownLabel(label::HYPERCALL))
    );
}

#[test]
fn replies_with_nonsense_decode_to_nothing() {
    let mrs = MessageRegisters::new();
    assert_eq!(
        RegisterStatus::from_label(3),
        Some(RegisterStatus::NotPermitted)
    );
    assert_eq!(RegisterStatus::from_label(6), None);
    assert_eq!(MsrReply::from_label(2), Some(MsrReply::NotMine));
    assert_eq!(MsrReply::from_label(9), None);
    assert_eq!(decode_outcome(MessageInfo::new(7, 1), &mrs), None);
    assert_eq!(
        decode_context(MessageInfo::new(REPLY_COMPLETE, 27), &mrs),
        None
    );
    let mut mrs = MessageRegisters::new();
    mrs.0[0] = 5;
    assert_eq!(
        decode_outcome(MessageInfo::new(REPLY_SWITCH_VTL, 1), &mrs),
        None
    );
}
