//! The PD adapter driven through `ipc::Handler` with a fake kernel and in-memory
//! regions: permissions, request decoding, the interrupt queue and its overflow.

use hvdef::message::{HvMessage, HvMessageType};
use hvdef::msr::*;
use hvdef::synic::enable_writes;
use hvdef::HvStatus;
use std::vec::Vec;

use ipc::testing::{call_handler, leaked_region, FakeInit, RecordingKernel, Route, RoutingKernel};
use ipc::{
    Channel, ChannelSet, Consumer, Handler, HandlerError, Init, InitError, MessageInfo,
    MessageRegisters, Perms, PpCall, PpReply, Region,
};

use crate::api::{self, IrqEntry, MsrStatus, Request};
use crate::pd::*;
use crate::{Instance, PostOutcome, SintTarget};

const RAM_GPA: u64 = 0x20_0000;
const VCPU: Channel = Channel::new(0);
const HVCALL: Channel = Channel::new(1);
const HOSTRELAY: Channel = Channel::new(2);
const STRANGER: Channel = Channel::new(3);

type Pd = SynicPd<2, 2>;

/// synic-pd's grants in these tests: two VPs, RAM, the interrupt queue and one
/// channel per role.
fn fake_init() -> FakeInit {
    let ram = leaked_region(4 * 4096);
    crate::testing::init(ram, crate::testing::irq_queue(), VCPU, HVCALL.bit())
        .variable(GUEST_RAM_GPA, RAM_GPA)
        .variable(DELIVER_HV_CHANNELS, HVCALL.bit() | HOSTRELAY.bit())
}

fn irq_consumer(init: &FakeInit) -> Consumer<'static, IrqEntry> {
    Consumer::new(Init::region(init, IRQ_QUEUE).unwrap(), IRQ_QUEUE_CAPACITY).unwrap()
}

fn ram(init: &FakeInit) -> Region<'static> {
    Init::region(init, GUEST_RAM).unwrap()
}

/// A route whose channel to synic-pd calls straight into the handler, so the
/// `api` client functions are tested against the real server side.
struct Loopback<'a> {
    pd: &'a mut Pd,
    caller: Channel,
    inner: RecordingKernel,
}

impl Route for Loopback<'_> {
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        call_handler(self.pd, &mut self.inner, call, self.caller)
    }
}

fn call(
    pd: &mut Pd,
    k: &mut RecordingKernel,
    ch: Channel,
    req: Request,
) -> Result<(MessageInfo, MessageRegisters), HandlerError> {
    let mut mrs = MessageRegisters::new();
    let msg = req.encode(&mut mrs);
    pd.protected(k, PpCall::new(ch, msg, &mut mrs))
        .map(|m| (m, mrs))
}

fn wrmsr(
    pd: &mut Pd,
    k: &mut RecordingKernel,
    instance: Instance,
    msr: u32,
    value: u64,
) -> MsrStatus {
    let (m, _) = call(
        pd,
        k,
        VCPU,
        Request::WriteMsr {
            vp: 0,
            instance,
            msr,
            value,
        },
    )
    .unwrap();
    MsrStatus::from_label(m.label()).unwrap()
}

fn enable(
    pd: &mut Pd,
    k: &mut RecordingKernel,
    instance: Instance,
    simp_page: u64,
    siefp_page: u64,
) {
    let page = |n: u64| RAM_GPA + n * 4096;
    for (msr, value) in enable_writes(page(simp_page), page(siefp_page), 2, 0x40) {
        assert_eq!(
            wrmsr(pd, k, instance, msr, value),
            MsrStatus::Ok,
            "{msr:#x}"
        );
    }
}

/// synic-pd started from `init` with VP 0's paravisor SynIC enabled (message page
/// 0, event page 1), and the kernel it ran on.
fn enabled(init: &FakeInit) -> (Pd, RecordingKernel) {
    let mut pd = Pd::init(init).unwrap();
    let mut k = RecordingKernel::default();
    enable(&mut pd, &mut k, Instance::PARAVISOR, 0, 1);
    (pd, k)
}

/// [`fake_init`] where HVCALL and HOSTRELAY both deliver into the paravisor SynIC.
fn two_paravisor_deliverers() -> FakeInit {
    fake_init().variable(DELIVER_PV_CHANNELS, HVCALL.bit() | HOSTRELAY.bit())
}

/// Sets event `flag` on VP 0's paravisor SINT 2.
fn signal_pv(flag: u32) -> Request {
    Request::SignalEvent {
        target: target(Instance::PARAVISOR),
        flag,
    }
}

/// A one-message post of "hi" to VP 0's paravisor SINT 2.
fn post_hi() -> Request {
    Request::PostMessage {
        target: target(Instance::PARAVISOR),
        message: HvMessage::new(HvMessageType(1), 0, b"hi").unwrap(),
    }
}

fn target(instance: Instance) -> SintTarget {
    SintTarget {
        vp: 0,
        instance,
        sint: 2,
    }
}

/// (what, how the grants are wrong, the error init must report)
type InitCase = (
    &'static str,
    fn(FakeInit) -> FakeInit,
    fn(&InitError) -> bool,
);

#[test]
fn init_reports_what_system_xml_got_wrong() {
    let cases: &[InitCase] = &[
        (
            "more VPs than built for",
            |i| i.variable(VP_COUNT, 3),
            |e| {
                *e == InitError::InvalidVariable {
                    name: VP_COUNT,
                    value: 3,
                }
            },
        ),
        (
            "no VPs",
            |i| i.variable(VP_COUNT, 0),
            |e| matches!(e, InitError::InvalidVariable { name: VP_COUNT, .. }),
        ),
        (
            "no VP count",
            |i| i.without_variable(VP_COUNT),
            |e| *e == InitError::MissingVariable(VP_COUNT),
        ),
        (
            "read-only RAM",
            |i| {
                let read_only = ram(&i).restrict(Perms::R);
                i.region(GUEST_RAM, read_only)
            },
            |e| {
                matches!(
                    e,
                    InitError::RegionPerms {
                        name: GUEST_RAM,
                        ..
                    }
                )
            },
        ),
        (
            "tiny queue",
            |i| i.region(IRQ_QUEUE, leaked_region(64)),
            |e| {
                matches!(
                    e,
                    InitError::RegionTooSmall {
                        name: IRQ_QUEUE,
                        ..
                    }
                )
            },
        ),
        (
            "channel id out of range",
            |i| i.variable(VCPU_CHANNEL, 62),
            |e| {
                matches!(
                    e,
                    InitError::InvalidVariable {
                        name: VCPU_CHANNEL,
                        ..
                    }
                )
            },
        ),
        (
            "channel mask out of range",
            |i| i.variable(MSR_CHANNELS, 1 << 62),
            |e| {
                matches!(
                    e,
                    InitError::InvalidVariable {
                        name: MSR_CHANNELS,
                        ..
                    }
                )
            },
        ),
        (
            "grant channel out of range",
            |i| i.variable(GRANT_CHANNEL, 64),
            |e| {
                matches!(
                    e,
                    InitError::InvalidVariable {
                        name: GRANT_CHANNEL,
                        ..
                    }
                )
            },
        ),
        (
            "shared alias without its GPA",
            |i| i.region(GUEST_SHARED, leaked_region(4096)),
            |e| *e == InitError::MissingVariable(GUEST_SHARED_GPA),
        ),
    ];
    for (what, break_it, expected) in cases {
        let err = Pd::init(&break_it(fake_init())).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
    }
    let init = fake_init()
        .region(GUEST_SHARED, leaked_region(4096))
        .variable(GUEST_SHARED_GPA, 1 << 40);
    assert!(Pd::init(&init).is_ok());
}

#[test]
fn each_channel_may_only_do_its_role() {
    let init = fake_init();
    let mut pd = Pd::init(&init).unwrap();
    let mut k = RecordingKernel::default();
    let msg = HvMessage::new(HvMessageType::VMBUS, 0, b"x").unwrap();
    let rd = Request::ReadMsr {
        vp: 0,
        instance: Instance::PARAVISOR,
        msr: HV_X64_MSR_SCONTROL,
    };
    let post = |instance| Request::PostMessage {
        target: target(instance),
        message: msg,
    };
    // The role matrix, in this order (posts land in the SINT's slot or queue).
    let (pv, hv) = (Instance::PARAVISOR, Instance::HYPERVISOR);
    let cases = [
        ("the vCPU reads MSRs", VCPU, rd.clone(), true),
        ("hvcall-pd reads no MSRs", HVCALL, rd.clone(), false),
        ("a stranger reads no MSRs", STRANGER, rd, false),
        ("hvcall-pd posts", HVCALL, post(pv), true),
        ("into either SynIC", HVCALL, post(hv), true),
        ("the relay posts", HOSTRELAY, post(hv), true),
        ("but not into ours", HOSTRELAY, post(pv), false),
        ("the vCPU posts nothing", VCPU, post(pv), false),
        ("the relay signals nothing", HOSTRELAY, signal_pv(1), false),
    ];
    for (what, ch, req, allowed) in cases {
        let got = call(&mut pd, &mut k, ch, req).map(|_| ());
        let want = if allowed {
            Ok(())
        } else {
            Err(HandlerError::UnexpectedCall(ch))
        };
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn malformed_requests_are_bad_requests() {
    use api::label::{POST_MESSAGE, READ_MSR};
    let mut pd = Pd::init(&fake_init()).unwrap();
    let mut k = RecordingKernel::default();
    let scontrol = HV_X64_MSR_SCONTROL as u64;
    // (what, caller, label, count, registers)
    let cases: &[(&str, Channel, u64, usize, [u64; 3])] = &[
        ("unknown label", VCPU, 0x9999, 4, [0; 3]),
        ("too few registers", VCPU, READ_MSR, 2, [0; 3]),
        ("instance 2 does not exist", VCPU, READ_MSR, 3, [0, 2, 0]),
        ("vp over 32 bits", VCPU, READ_MSR, 3, [1 << 32, 0, 0]),
        ("vp beyond vp_count", VCPU, READ_MSR, 3, [7, 0, scontrol]),
        ("message cut short", HVCALL, POST_MESSAGE, 20, [0; 3]),
    ];
    for &(what, channel, label, count, regs) in cases {
        let mut mrs = MessageRegisters::new();
        mrs.0[..3].copy_from_slice(&regs);
        let call = PpCall::new(channel, MessageInfo::new(label, count), &mut mrs);
        let err = pd.protected(&mut k, call).unwrap_err();
        assert_eq!(err, HandlerError::BadRequest { channel, label }, "{what}");
    }
}

#[test]
fn msr_replies_carry_gp_and_not_synic() {
    let init = fake_init();
    let mut pd = Pd::init(&init).unwrap();
    let mut k = RecordingKernel::default();
    assert_eq!(
        wrmsr(&mut pd, &mut k, Instance::PARAVISOR, HV_X64_MSR_SVERSION, 1),
        MsrStatus::Gp
    );
    assert_eq!(
        wrmsr(
            &mut pd,
            &mut k,
            Instance::PARAVISOR,
            HV_X64_MSR_HYPERCALL,
            1
        ),
        MsrStatus::NotSynic
    );
    let (m, mrs) = call(
        &mut pd,
        &mut k,
        VCPU,
        Request::ReadMsr {
            vp: 1,
            instance: Instance::HYPERVISOR,
            msr: HV_X64_MSR_SVERSION,
        },
    )
    .unwrap();
    assert_eq!(MsrStatus::from_label(m.label()), Some(MsrStatus::Ok));
    assert_eq!(mrs.get(0), 1);
}

#[test]
fn the_api_clients_round_trip_through_the_handler() {
    let init = fake_init();
    let (mut pd, _) = enabled(&init);
    let mut lb = RoutingKernel::new(Loopback {
        pd: &mut pd,
        caller: HVCALL,
        inner: RecordingKernel::default(),
    });
    let msg = HvMessage::new(HvMessageType::VMBUS, 5, b"abc").unwrap();
    let pv = target(Instance::PARAVISOR);
    let posts = [
        Ok(PostOutcome::Delivered),
        Ok(PostOutcome::Queued),
        Ok(PostOutcome::Queued),
        Err(HvStatus::INSUFFICIENT_BUFFERS),
    ];
    for want in posts {
        let got = api::post_message(&mut lb, Channel::new(9), pv, &msg);
        assert_eq!(got, Ok(want));
    }
    let signals = [
        (3, Ok(true)),
        (3, Ok(false)),
        (4096, Err(HvStatus::INVALID_PARAMETER)),
    ];
    for (flag, want) in signals {
        assert_eq!(
            api::signal_event(&mut lb, Channel::new(9), pv, flag),
            Ok(want)
        );
    }
    lb.route.caller = VCPU;
    assert_eq!(
        api::read_msr(
            &mut lb,
            Channel::new(9),
            0,
            Instance::PARAVISOR,
            HV_X64_MSR_SINT0 + 2
        ),
        Ok((MsrStatus::Ok, 0x40))
    );
    assert_eq!(
        api::write_msr(
            &mut lb,
            Channel::new(9),
            0,
            Instance::PARAVISOR,
            HV_X64_MSR_SVERSION,
            0
        ),
        Ok(MsrStatus::Gp)
    );
    // The message is in guest RAM where the SIMP points.
    let mut buf = [0u8; 3];
    ram(&init).read_bytes(2 * 256 + 16, &mut buf).unwrap();
    assert_eq!(&buf, b"abc");
}

#[test]
fn interrupts_reach_the_queue_and_the_vcpu_is_notified_only_when_it_asked() {
    let init = fake_init();
    let (mut pd, mut k) = enabled(&init);
    let mut irqs = irq_consumer(&init);
    call(&mut pd, &mut k, HVCALL, signal_pv(1)).unwrap();
    assert!(k.notified.is_empty(), "the vCPU PD was not asleep");
    let e = irqs.dequeue().unwrap().unwrap();
    assert_eq!(
        (e.vp, e.vector, e.instance, e.sint, e.auto_eoi()),
        (0, 0x40, 0, 2, false)
    );

    // The vCPU PD goes to sleep; the next interrupt must wake it.
    assert!(irqs.prepare_to_sleep().unwrap());
    call(&mut pd, &mut k, HVCALL, signal_pv(2)).unwrap();
    assert_eq!(k.notified, [VCPU]);
    assert!(irqs.dequeue().unwrap().is_some());
}

#[test]
fn a_full_interrupt_queue_coalesces_and_drains_when_the_vcpu_makes_room() {
    let init = fake_init();
    let (mut pd, mut k) = enabled(&init);
    let mut irqs = irq_consumer(&init);
    let extra = 40;
    for flag in 0..IRQ_QUEUE_CAPACITY + extra {
        call(&mut pd, &mut k, HVCALL, signal_pv(flag)).unwrap();
    }
    let mut got = 0;
    while irqs.dequeue().unwrap().is_some() {
        got += 1;
    }
    assert_eq!(
        got, IRQ_QUEUE_CAPACITY,
        "the overflow waits outside the queue"
    );
    assert!(
        irqs.take_signal_request(),
        "synic-pd asked to be told about room"
    );
    pd.notified(&mut k, ChannelSet::from_iter([VCPU])).unwrap();
    let e = irqs.dequeue().unwrap().unwrap();
    assert_eq!(
        (e.vp, e.vector, e.instance),
        (0, 0x40, IrqEntry::UNKNOWN),
        "{extra} requests, one vector: coalesced"
    );
    assert!(irqs.dequeue().unwrap().is_none());
    assert_eq!(
        pd.notified(&mut k, ChannelSet::from_iter([STRANGER]))
            .unwrap_err(),
        HandlerError::UnexpectedNotification(STRANGER)
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_register_contents_decode_without_panicking(
            label in prop_oneof![0x5300u64..0x5306, any::<u64>()],
            count in 0usize..70,
            regs in proptest::collection::vec(any::<u64>(), 64),
        ) {
            let mut mrs = MessageRegisters::new();
            for (i, r) in regs.iter().enumerate() {
                mrs.set(i, *r);
            }
            if let Ok(req) = Request::decode(MessageInfo::new(label, count), &mrs) {
                // Whatever decodes re-encodes to the same request.
                let mut again = MessageRegisters::new();
                let info = req.encode(&mut again);
                prop_assert_eq!(Request::decode(info, &again), Ok(req));
            }
        }
    }
}

#[test]
fn kind_masks_keep_a_signaller_out_of_the_message_slots() {
    // HVCALL may do both; HOSTRELAY (a VSP here) only sets event flags.
    let mut init = two_paravisor_deliverers()
        .variable(POST_CHANNELS, HVCALL.bit())
        .variable(SIGNAL_CHANNELS, HVCALL.bit() | HOSTRELAY.bit());
    let (mut pd, mut k) = enabled(&init);
    let signal = signal_pv(3);
    assert!(call(&mut pd, &mut k, HOSTRELAY, signal.clone()).is_ok());
    assert_eq!(
        call(&mut pd, &mut k, HOSTRELAY, post_hi()).unwrap_err(),
        HandlerError::UnexpectedCall(HOSTRELAY)
    );
    assert!(call(&mut pd, &mut k, HVCALL, post_hi()).is_ok());
    assert!(call(&mut pd, &mut k, HVCALL, signal).is_ok());
    // A bad mask stops the PD instead of granting more than meant.
    init = init.variable(SIGNAL_CHANNELS, 1 << 62);
    assert!(matches!(
        Pd::init(&init),
        Err(InitError::InvalidVariable {
            name: SIGNAL_CHANNELS,
            ..
        })
    ));
}

#[test]
fn a_refused_poster_is_woken_when_the_guest_writes_eom() {
    let init = two_paravisor_deliverers();
    let (mut pd, mut k) = enabled(&init);
    // One in the slot, DEPTH (2) queued, then refused.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (_, mrs) = call(&mut pd, &mut k, HOSTRELAY, post_hi()).unwrap();
        statuses.push(HvStatus(mrs.get(0) as u16));
    }
    assert_eq!(statuses[3], HvStatus::INSUFFICIENT_BUFFERS, "{statuses:?}");
    k.notified.clear();
    // Any other MSR write wakes it too; EOM is the one that frees room.
    let ram = ram(&init);
    ram.write(2 * 256, &0u32).unwrap();
    assert_eq!(
        wrmsr(&mut pd, &mut k, Instance::PARAVISOR, HV_X64_MSR_EOM, 0),
        MsrStatus::Ok
    );
    assert!(k.notified.contains(&HOSTRELAY), "{:?}", k.notified);
    // Woken once per refusal, not on every later write.
    k.notified.clear();
    assert_eq!(
        wrmsr(&mut pd, &mut k, Instance::PARAVISOR, HV_X64_MSR_EOM, 0),
        MsrStatus::Ok
    );
    assert!(!k.notified.contains(&HOSTRELAY));
    // A poster that was never refused is not woken.
    assert!(!k.notified.contains(&HVCALL));
}

#[test]
fn a_vsp_sets_only_the_flags_vmbus_server_granted_its_channels() {
    const VMBUS: Channel = Channel::new(4);
    const VSP_A: Channel = Channel::new(5);
    const VSP_B: Channel = Channel::new(6);
    let deliverers = HVCALL.bit() | VSP_A.bit() | VSP_B.bit();
    let init = fake_init()
        .variable(DELIVER_PV_CHANNELS, deliverers | VMBUS.bit())
        .variable(GRANT_CHANNEL, VMBUS.index() as u64)
        .variable(VSP_CHANNEL_VARS[0], VSP_A.index() as u64)
        .variable(VSP_CHANNEL_VARS[1], VSP_B.index() as u64);
    let (mut pd, mut k) = enabled(&init);
    let t = target(Instance::PARAVISOR);
    let mut as_caller = |pd: &mut Pd, ch, req: Request| {
        let (m, mrs) = call(pd, &mut k, ch, req).unwrap();
        (m, mrs)
    };
    let grant = |vsp, relid, flag| Request::GrantEvent {
        vsp,
        relid,
        target: t,
        flag,
    };
    let signal = |flag| Request::SignalEvent { target: t, flag };
    let status = |(m, mrs): (MessageInfo, MessageRegisters)| {
        api::DeliveryReply::decode(m, &mrs).unwrap().status
    };
    let granted =
        |(m, mrs): (MessageInfo, MessageRegisters)| api::GrantStatus::decode(m, &mrs).unwrap();

    // SIEF page 1, SINT 2's flags.
    let flags_at = 4096 + 2 * 256;
    // Before vmbus-server has called at all, A reaches for what will be B's flag
    // (a VSP that starts first): its slot is checked already, so nothing is set
    // that the grant would have to take back.
    assert_eq!(
        status(as_caller(&mut pd, VSP_A, signal(7))),
        HvStatus::ACCESS_DENIED
    );
    assert_eq!(ram(&init).read::<u8>(flags_at).unwrap(), 0);
    // Only vmbus-server grants.
    assert_eq!(
        granted(as_caller(&mut pd, VSP_A, grant(0, 1, 1))),
        api::GrantStatus::NotPermitted
    );
    assert_eq!(
        granted(as_caller(&mut pd, VMBUS, grant(1, 7, 7))),
        api::GrantStatus::Ok
    );
    assert_eq!(
        granted(as_caller(&mut pd, VMBUS, grant(2, 8, 8))),
        api::GrantStatus::Invalid,
        "no VSP in slot 2"
    );
    // A takes B's flag: refused, and the flag stays clear.
    assert_eq!(
        status(as_caller(&mut pd, VSP_A, signal(7))),
        HvStatus::ACCESS_DENIED
    );
    assert_eq!(ram(&init).read::<u8>(flags_at).unwrap(), 0);
    // B's own flag works; a flag it was not granted does not.
    assert_eq!(
        status(as_caller(&mut pd, VSP_B, signal(7))),
        HvStatus::SUCCESS
    );
    assert_eq!(ram(&init).read::<u8>(flags_at).unwrap(), 1 << 7);
    assert_eq!(
        status(as_caller(&mut pd, VSP_B, signal(8))),
        HvStatus::ACCESS_DENIED
    );
    // hvcall-pd is not a VSP: its event ports are its own business.
    assert_eq!(
        status(as_caller(&mut pd, HVCALL, signal(9))),
        HvStatus::SUCCESS
    );
    // Revoked with the channel: B is refused too.
    assert_eq!(
        granted(as_caller(
            &mut pd,
            VMBUS,
            Request::RevokeEvent { vsp: 1, relid: 7 }
        )),
        api::GrantStatus::Ok
    );
    assert_eq!(
        status(as_caller(&mut pd, VSP_B, signal(7))),
        HvStatus::ACCESS_DENIED
    );
}
