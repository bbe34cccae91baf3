//! hvcall-pd and synic-pd wired together in one process through their `ipc::Handler`
//! adapters: a fake kernel carries hvcall-pd's protected calls to the real synic-pd
//! handler, so a hypercall goes decode -> route -> synic-pd -> guest page exactly as
//! it does between processes, minus the transport.

// Test harness code: a panic here is the failure report.
#![allow(clippy::unwrap_used)]

use hvcall_pd::api::{self, MsrReply, RegisterStatus, Registration, RouteKind};
use hvcall_pd::pd::{self as hv, HvcallPd};
use hvcall_pd::{HostCall, HypercallRequest, Outcome, ServiceMessage};
use hvdef::hypercall::{
    EnablePartitionVtlInput, EnableVpVtlInput, PostMessageInput, SignalEventInput,
};
use hvdef::msr::*;
use hvdef::{Control, HvStatus, HypercallCode, HypercallResult, Vtl, HV_PARTITION_ID_SELF};
use ipc::testing::{call_handler, leaked_region, FakeInit, RecordingKernel, Route, RoutingKernel};
use ipc::{
    Channel, ChannelSet, Consumer, Handler, HandlerError, InitError, IpcError, MessageInfo,
    MessageRegisters, PpCall, PpReply, Region,
};
use synic_pd::api::IrqEntry;
use synic_pd::pd::{self as sy, SynicPd};
use synic_pd::{Instance, SintTarget};
use zerocopy::{FromZeros, IntoBytes};

// hvcall-pd's channel ids
const H_VCPU: Channel = hvcall_pd::testing::VCPU;
const H_SYNIC: Channel = hvcall_pd::testing::SYNIC;
const H_HOST: Channel = Channel::new(2);
const H_VMBUS: Channel = hvcall_pd::testing::SERVICE; // a service PD that also owns SynIC ports
const H_RELAY: Channel = Channel::new(4); // may route to the host
const H_VSP: Channel = Channel::new(5); // a signal-only service (a VSP)
const H_VSP_B: Channel = Channel::new(6); // another VSP
const H_PORT: Channel = Channel::new(8); // a service that is no VSP
                                         // synic-pd's channel ids
const S_VCPU: Channel = Channel::new(0);
const S_HVCALL: Channel = Channel::new(1);

const RAM_PAGES: usize = 16;
const SHARED_GPA: u64 = 1 << 20;
const IN: u64 = 0x3000;
const SIMP: u64 = 0x8000;
const SIEFP: u64 = 0x9000;

struct Memory {
    ram: Region<'static>,
    shared: Region<'static>,
    irq: Region<'static>,
    service: Region<'static>,
}

impl Memory {
    fn new() -> Self {
        Self {
            ram: leaked_region(RAM_PAGES * 4096),
            shared: leaked_region(4 * 4096),
            irq: synic_pd::testing::irq_queue(),
            service: hvcall_pd::testing::service_queue(),
        }
    }

    fn hvcall_init(&self) -> FakeInit {
        hvcall_pd::testing::init(self.ram, self.service, SHARED_GPA)
            .region(hv::GUEST_SHARED, self.shared)
            .variable(hv::GUEST_SHARED_GPA, SHARED_GPA)
            .variable(hv::HOST_CHANNEL, H_HOST.index() as u64)
            .variable(hv::SYNIC_PORT_CHANNELS, H_VMBUS.bit())
            .variable(hv::HOST_ROUTE_CHANNELS, H_RELAY.bit())
            .variable(hv::SERVICE_CHANNEL_VARS[1], H_VSP.index() as u64)
            .variable(
                hv::SERVICE_CONNECTION_VARS[1],
                hv::connection_range(0x2001, 0x27FF),
            )
    }

    fn synic_init(&self) -> FakeInit {
        synic_pd::testing::init(self.ram, self.irq, S_VCPU, S_HVCALL.bit())
    }
}

/// hvcall-pd's peers: its synic channel calls into synic-pd, its host channel into
/// a recording fake host.
struct Peers {
    synic: Box<SynicPd<2, 4>>,
    synic_kernel: RecordingKernel,
    host_calls: Vec<HostCall>,
    host_result: HypercallResult,
}

impl Route for Peers {
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        let ch = call.ch;
        if ch == H_SYNIC {
            call_handler(&mut *self.synic, &mut self.synic_kernel, call, S_HVCALL)
        } else if ch == H_HOST {
            let PpCall { msg, mrs, .. } = call;
            self.host_calls
                .push(api::decode_forward(msg, mrs).map_err(|_| IpcError::CallFailed(ch))?);
            mrs.set(0, self.host_result.0);
            Ok(MessageInfo::new(0, 1))
        } else {
            Err(IpcError::NotGranted(ch))
        }
    }
}

struct Rig {
    mem: Memory,
    hvcall: Box<HvcallPd<2, 16>>,
    world: RoutingKernel<Peers>,
}

impl Rig {
    fn new() -> Self {
        Self::with(|init| init)
    }

    /// A rig whose hvcall-pd grants are `hvcall_init` changed by `adjust`.
    fn with(adjust: impl FnOnce(FakeInit) -> FakeInit) -> Self {
        let mem = Memory::new();
        let hvcall = Box::new(HvcallPd::init(&adjust(mem.hvcall_init())).unwrap());
        let synic = Box::new(SynicPd::init(&mem.synic_init()).unwrap());
        let mut rig = Rig {
            mem,
            hvcall,
            world: RoutingKernel::new(Peers {
                synic,
                synic_kernel: RecordingKernel::default(),
                host_calls: Vec::new(),
                host_result: HypercallResult::SUCCESS,
            }),
        };
        // The guest's VP 0 enables the paravisor SynIC the way Linux does.
        let enable = synic_pd::api::enable_requests(0, Instance::PARAVISOR, (SIMP, SIEFP), 2, 0x30);
        for req in enable {
            let mut mrs = MessageRegisters::new();
            let info = req.encode(&mut mrs);
            let synic = &mut rig.world.route.synic;
            let call = PpCall::new(S_VCPU, info, &mut mrs);
            synic
                .protected(&mut RecordingKernel::default(), call)
                .unwrap();
        }
        rig
    }

    fn call(
        &mut self,
        ch: Channel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        self.hvcall
            .protected(&mut self.world, PpCall::new(ch, msg, mrs))
    }

    fn register(&mut self, ch: Channel, reg: Registration) -> RegisterStatus {
        let mut mrs = MessageRegisters::new();
        let msg = reg.encode(&mut mrs);
        let reply = self.call(ch, msg, &mut mrs).unwrap();
        RegisterStatus::from_label(reply.label()).unwrap()
    }

    fn hypercall(&mut self, control: Control, rdx: u64, r8: u64) -> Outcome {
        let mut mrs = MessageRegisters::new();
        let req = HypercallRequest::vp0(control, rdx, r8);
        let msg = api::encode_hypercall(&req, &mut mrs);
        let reply = self.call(H_VCPU, msg, &mut mrs).unwrap();
        api::decode_outcome(reply, &mrs).unwrap()
    }

    fn status(&mut self, control: Control, rdx: u64, r8: u64) -> HvStatus {
        match self.hypercall(control, rdx, r8) {
            Outcome::Complete(r) => r.status(),
            o => panic!("{o:?}"),
        }
    }

    fn write(&self, gpa: u64, bytes: &[u8]) {
        if gpa >= SHARED_GPA {
            self.mem
                .shared
                .write_bytes((gpa - SHARED_GPA) as usize, bytes)
                .unwrap();
        } else {
            self.mem.ram.write_bytes(gpa as usize, bytes).unwrap();
        }
    }

    /// Slow hypercall `code` on VP 0 with the input the guest wrote at `IN`.
    fn with_input(&mut self, code: HypercallCode, input: &[u8]) -> HvStatus {
        self.write(IN, input);
        self.status(Control::new(code), IN, 0)
    }

    fn post(&mut self, gpa: u64, conn: u32, payload: &[u8]) -> HvStatus {
        let p = PostMessageInput::new(conn, 1, payload).unwrap();
        self.write(gpa, p.as_bytes());
        self.status(Control::new(HypercallCode::POST_MESSAGE), gpa, 0)
    }

    fn signal(&mut self, conn: u32, flag: u16) -> HvStatus {
        let v = SignalEventInput::new(conn, flag).to_u64();
        self.status(SignalEventInput::FAST_CONTROL, v, 0)
    }

    /// Asserts that `ch` may claim none of the connections `ids` as a service.
    fn assert_claims_refused(&mut self, ch: Channel, ids: &[u32]) {
        for &id in ids {
            assert_eq!(
                self.register(ch, service(id)),
                RegisterStatus::NotPermitted,
                "channel {} claiming {id:#x}",
                ch.index()
            );
        }
    }
}

/// A VTL0 service route to the caller.
fn service(connection_id: u32) -> Registration {
    Registration {
        connection_id,
        vtl: Vtl::VTL0,
        kind: RouteKind::Service,
    }
}

const PV_SINT2: SintTarget = SintTarget {
    vp: 0,
    instance: Instance::PARAVISOR,
    sint: 2,
};

#[test]
fn a_posted_message_and_a_signal_reach_the_guest_pages_through_synic_pd() {
    let mut r = Rig::new();
    assert_eq!(
        r.register(
            H_VMBUS,
            Registration {
                connection_id: 4,
                vtl: Vtl::VTL0,
                kind: RouteKind::SynicMessage {
                    target: PV_SINT2,
                    port_id: 4
                }
            }
        ),
        RegisterStatus::Ok
    );
    assert_eq!(
        r.register(
            H_VMBUS,
            Registration {
                connection_id: 5,
                vtl: Vtl::VTL0,
                kind: RouteKind::SynicEvent {
                    target: PV_SINT2,
                    flag_base: 0,
                    flag_count: 2048
                }
            }
        ),
        RegisterStatus::Ok
    );
    assert_eq!(r.post(IN, 4, b"hello guest"), HvStatus::SUCCESS);
    let mut slot = [0u8; 256];
    r.mem
        .ram
        .read_bytes(SIMP as usize + 2 * 256, &mut slot)
        .unwrap();
    assert_eq!(
        u32::from_le_bytes(slot[0..4].try_into().unwrap()),
        1,
        "message type"
    );
    assert_eq!(slot[4], 11, "payload size");
    assert_eq!(&slot[16..27], b"hello guest");
    assert_eq!(r.signal(5, 9), HvStatus::SUCCESS);
    assert_eq!(
        r.mem.ram.read::<u8>(SIEFP as usize + 2 * 256 + 1).unwrap(),
        2,
        "flag 9"
    );
    let mut irqs: Consumer<'static, IrqEntry> =
        Consumer::new(r.mem.irq, sy::IRQ_QUEUE_CAPACITY).unwrap();
    let vectors: Vec<u8> = std::iter::from_fn(|| irqs.dequeue().unwrap())
        .map(|e| e.vector)
        .collect();
    assert_eq!(vectors, [0x30, 0x30], "one interrupt per delivery");
    // The slot is busy now: the next posts queue in synic-pd, then fill its queue.
    for _ in 0..4 {
        assert_eq!(r.post(IN, 4, b"more"), HvStatus::SUCCESS);
    }
    assert_eq!(r.post(IN, 4, b"more"), HvStatus::INSUFFICIENT_BUFFERS);
}

#[test]
fn service_routes_queue_messages_and_turn_signals_into_notifications() {
    let mut r = Rig::new();
    assert_eq!(r.register(H_VMBUS, service(1)), RegisterStatus::Ok);
    let mut queue: Consumer<'static, ServiceMessage> =
        Consumer::new(r.mem.service, hv::SERVICE_QUEUE_CAPACITY).unwrap();
    assert!(
        queue.prepare_to_sleep().unwrap(),
        "the service waits for work"
    );
    assert_eq!(r.post(IN, 1, b"initiate contact"), HvStatus::SUCCESS);
    assert_eq!(r.world.record.notified, [H_VMBUS], "woken because it asked");
    let m = queue.dequeue().unwrap().unwrap();
    assert_eq!((m.connection_id, m.message_type, m.vtl), (1, 1, 0));
    assert_eq!(m.payload(), b"initiate contact");
    assert_eq!(r.signal(1, 0), HvStatus::SUCCESS);
    assert_eq!(r.world.record.notified, [H_VMBUS, H_VMBUS]);
    for _ in 0..hv::SERVICE_QUEUE_CAPACITY {
        assert_eq!(r.post(IN, 1, b"x"), HvStatus::SUCCESS);
    }
    assert_eq!(r.post(IN, 1, b"x"), HvStatus::INSUFFICIENT_BUFFERS);
}

#[test]
fn a_signal_only_service_claims_only_its_range_and_takes_no_messages() {
    let mut r = Rig::new();
    // A VSP may not claim the VMBus message connection (it would see every
    // channel message), nor anything outside the signal connections.
    r.assert_claims_refused(H_VSP, &[1, 0x2000, 0x2800]);
    assert_eq!(r.register(H_VSP, service(0x2003)), RegisterStatus::Ok);
    // Signals become notifications; a posted message has no port to land in.
    assert_eq!(r.signal(0x2003, 0), HvStatus::SUCCESS);
    assert_eq!(r.world.record.notified, [H_VSP]);
    assert_eq!(r.post(IN, 0x2003, b"not a port"), HvStatus::INVALID_PORT_ID);
    assert_eq!(r.world.record.notified, [H_VSP]);
    // Without a range variable (service 0 here) any id may be claimed.
    assert_eq!(r.register(H_VMBUS, service(0x2004)), RegisterStatus::Ok);
}

/// vmbus-server (H_VMBUS) grants VSP slot 0 (H_VSP) and slot 1 (H_VSP_B).
fn granting_rig() -> Rig {
    Rig::with(granting_rig_init)
}

fn granting_rig_init(init: FakeInit) -> FakeInit {
    init.variable(hv::SERVICE_CHANNEL_VARS[2], H_VSP_B.index() as u64)
        .variable(hv::GRANT_CHANNEL, H_VMBUS.index() as u64)
        .variable(hv::VSP_CHANNEL_VARS[0], H_VSP.index() as u64)
        .variable(hv::VSP_CHANNEL_VARS[1], H_VSP_B.index() as u64)
}

impl Rig {
    fn grant(&mut self, ch: Channel, vsp: u8, relid: u32, connection_id: u32) -> RegisterStatus {
        let g = api::ConnectionGrant {
            vsp,
            relid,
            connection_id,
            vtl: Vtl::VTL0,
        };
        let mut mrs = MessageRegisters::new();
        let msg = g.encode(&mut mrs);
        let reply = self.call(ch, msg, &mut mrs).unwrap();
        RegisterStatus::from_label(reply.label()).unwrap()
    }

    fn revoke(&mut self, vsp: u8, relid: u32) -> RegisterStatus {
        let mut mrs = MessageRegisters::new();
        let msg = api::ConnectionRevoke { vsp, relid }.encode(&mut mrs);
        let reply = self.call(H_VMBUS, msg, &mut mrs).unwrap();
        RegisterStatus::from_label(reply.label()).unwrap()
    }
}

#[test]
fn a_vsp_claims_only_the_connections_vmbus_server_granted_its_channels() {
    let mut r = granting_rig();
    // Only vmbus-server grants; a grant names a VSP slot that exists.
    assert_eq!(r.grant(H_VSP, 0, 1, 0x2001), RegisterStatus::NotPermitted);
    assert_eq!(r.grant(H_VMBUS, 1, 1, 0x2001), RegisterStatus::Ok);
    assert_eq!(r.grant(H_VMBUS, 3, 9, 0x2009), RegisterStatus::Invalid);
    // One owner per connection.
    assert_eq!(r.grant(H_VMBUS, 0, 2, 0x2001), RegisterStatus::Duplicate);
    // VSP A cannot claim B's connection, nor one nobody was granted; B can.
    r.assert_claims_refused(H_VSP, &[0x2001, 0x2005]);
    assert_eq!(r.register(H_VSP_B, service(0x2001)), RegisterStatus::Ok);
    // B's doorbell reaches B only.
    assert_eq!(r.signal(0x2001, 0), HvStatus::SUCCESS);
    assert_eq!(r.world.record.notified, [H_VSP_B]);
    // B never unregisters (its ring broke, say); the revoke at close drops its route
    // too, so the guest's doorbell reaches nobody and the id is B's no more.
    assert_eq!(r.revoke(1, 1), RegisterStatus::Ok);
    assert_eq!(r.signal(0x2001, 0), HvStatus::INVALID_CONNECTION_ID);
    r.assert_claims_refused(H_VSP_B, &[0x2001]);
    assert_eq!(r.revoke(1, 1), RegisterStatus::NotFound);
    // Freed, it can be granted to A's channel.
    assert_eq!(r.grant(H_VMBUS, 0, 3, 0x2001), RegisterStatus::Ok);
    assert_eq!(r.register(H_VSP, service(0x2001)), RegisterStatus::Ok);
}

/// A peer that starts before vmbus-server claims VSP B's connection before
/// vmbus-server has made any call here: VSP A is refused outright (its slot is
/// checked from the start), and a service that is no VSP but whose range covers the
/// connection loses its route when vmbus-server grants it to B. Either way the
/// doorbells go to B alone.
#[test]
fn nothing_claimed_before_vmbus_server_first_calls_survives_its_grant() {
    for (squatter, pre_claim) in [
        (H_VSP, RegisterStatus::NotPermitted),
        (H_PORT, RegisterStatus::Ok),
    ] {
        let mut r = Rig::with(|init| {
            granting_rig_init(init)
                .variable(hv::SERVICE_CHANNEL_VARS[4], H_PORT.index() as u64)
                .variable(
                    hv::SERVICE_CONNECTION_VARS[4],
                    hv::connection_range(0x2001, 0x27FF),
                )
        });
        let why = format!("squatter {squatter:?}");
        assert_eq!(r.register(squatter, service(0x2001)), pre_claim, "{why}");
        assert_eq!(r.grant(H_VMBUS, 1, 1, 0x2001), RegisterStatus::Ok, "{why}");
        assert_eq!(
            r.register(squatter, service(0x2001)),
            RegisterStatus::NotPermitted,
            "{why}: granted to B"
        );
        assert_eq!(
            r.signal(0x2001, 0),
            HvStatus::INVALID_CONNECTION_ID,
            "{why}: granted, not yet claimed, reaches nobody"
        );
        assert_eq!(
            r.register(H_VSP_B, service(0x2001)),
            RegisterStatus::Ok,
            "{why}"
        );
        assert_eq!(r.signal(0x2001, 0), HvStatus::SUCCESS, "{why}");
        assert_eq!(r.world.record.notified, [H_VSP_B], "{why}");
    }
}

#[test]
fn an_inverted_connection_range_stops_the_pd() {
    let mem = Memory::new();
    let init = mem
        .hvcall_init()
        .variable(hv::SERVICE_CONNECTION_VARS[1], hv::connection_range(5, 4));
    assert_eq!(
        HvcallPd::<2, 16>::init(&init).unwrap_err(),
        InitError::InvalidVariable {
            name: hv::SERVICE_CONNECTION_VARS[1],
            value: hv::connection_range(5, 4)
        }
    );
}

#[test]
fn host_routes_forward_only_shared_buffers() {
    let mut r = Rig::new();
    assert_eq!(
        r.register(
            H_RELAY,
            Registration {
                connection_id: 7,
                vtl: Vtl::VTL0,
                kind: RouteKind::Host
            }
        ),
        RegisterStatus::Ok
    );
    r.world.route.host_result = HypercallResult::new(HvStatus::INSUFFICIENT_BUFFERS, 0);
    assert_eq!(
        r.post(SHARED_GPA, 7, b"to host"),
        HvStatus::INSUFFICIENT_BUFFERS,
        "the host's own answer"
    );
    assert_eq!(r.world.route.host_calls.len(), 1);
    assert_eq!(r.world.route.host_calls[0].input, SHARED_GPA);
    assert_eq!(r.post(IN, 7, b"private"), HvStatus::ACCESS_DENIED);
    assert_eq!(
        r.world.route.host_calls.len(),
        1,
        "nothing reached the host channel"
    );
}

#[test]
fn registration_is_limited_to_each_channels_role() {
    let mut r = Rig::new();
    let svc = service(1);
    let port = Registration {
        connection_id: 2,
        vtl: Vtl::VTL0,
        kind: RouteKind::SynicMessage {
            target: PV_SINT2,
            port_id: 2,
        },
    };
    let host = Registration {
        connection_id: 3,
        vtl: Vtl::VTL0,
        kind: RouteKind::Host,
    };
    assert_eq!(
        r.register(H_RELAY, svc),
        RegisterStatus::NotPermitted,
        "no service queue for the relay"
    );
    assert_eq!(r.register(H_RELAY, port), RegisterStatus::NotPermitted);
    assert_eq!(r.register(H_VMBUS, host), RegisterStatus::NotPermitted);
    assert_eq!(r.register(H_VCPU, svc), RegisterStatus::NotPermitted);
    assert_eq!(r.register(H_VMBUS, svc), RegisterStatus::Ok);
    assert_eq!(r.register(H_VMBUS, svc), RegisterStatus::Duplicate);
    let far = Registration {
        connection_id: 9,
        vtl: Vtl::VTL0,
        kind: RouteKind::SynicMessage {
            target: SintTarget { vp: 2, ..PV_SINT2 },
            port_id: 0,
        },
    };
    assert_eq!(
        r.register(H_VMBUS, far),
        RegisterStatus::NotPermitted,
        "VP beyond the partition"
    );
    for (base, count) in [(0, 0), (2000, 100), (u16::MAX, 1)] {
        let ev = Registration {
            connection_id: 10,
            vtl: Vtl::VTL0,
            kind: RouteKind::SynicEvent {
                target: PV_SINT2,
                flag_base: base,
                flag_count: count,
            },
        };
        assert_eq!(
            r.register(H_VMBUS, ev),
            RegisterStatus::Invalid,
            "{base} {count}"
        );
    }
    // Malformed registers, then connection 1's removal: only its owner may.
    let (register, unregister) = (
        api::label::REGISTER_CONNECTION,
        api::label::UNREGISTER_CONNECTION,
    );
    let cases = [
        (H_VMBUS, register, 7, [0, 0, 9], RegisterStatus::Invalid),
        (H_RELAY, unregister, 2, [1, 0, 0], RegisterStatus::NotFound),
        (H_VMBUS, unregister, 2, [1, 0, 0], RegisterStatus::Ok),
    ];
    for (ch, label, count, regs, status) in cases {
        let mut mrs = MessageRegisters::new();
        mrs.0[..3].copy_from_slice(&regs);
        let reply = r
            .call(ch, MessageInfo::new(label, count), &mut mrs)
            .unwrap();
        let got = RegisterStatus::from_label(reply.label());
        assert_eq!(got, Some(status), "{label:#x} from {ch}");
    }
    assert_eq!(r.post(IN, 1, b"gone"), HvStatus::INVALID_CONNECTION_ID);
}

#[test]
fn exits_are_accepted_only_from_the_vcpu_channel() {
    let mut r = Rig::new();
    for label in [
        api::label::HYPERCALL,
        api::label::CPUID,
        api::label::READ_MSR,
        api::label::WRITE_MSR,
        api::label::INITIAL_CONTEXT,
    ] {
        let mut mrs = MessageRegisters::new();
        assert_eq!(
            r.call(H_VMBUS, MessageInfo::new(label, 5), &mut mrs)
                .unwrap_err(),
            HandlerError::UnexpectedCall(H_VMBUS)
        );
    }
    let mut mrs = MessageRegisters::new();
    assert!(matches!(
        r.call(H_VCPU, MessageInfo::new(0x1234, 5), &mut mrs),
        Err(HandlerError::BadRequest { .. })
    ));
    mrs.set(0, 5); // VP 5 does not exist
    assert!(matches!(
        r.call(H_VCPU, MessageInfo::new(api::label::HYPERCALL, 5), &mut mrs),
        Err(HandlerError::BadRequest { .. })
    ));
    assert_eq!(
        r.hvcall
            .notified(
                &mut RecordingKernel::default(),
                ChannelSet::from_iter([H_RELAY])
            )
            .unwrap_err(),
        HandlerError::UnexpectedNotification(H_RELAY)
    );
}

#[test]
fn cpuid_msrs_and_vtl_contexts_over_the_api() {
    let mut r = Rig::new();
    struct Direct<'a>(&'a mut Rig);
    impl Route for Direct<'_> {
        fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
            self.0
                .call(H_VCPU, call.msg, call.mrs)
                .map_err(|_| IpcError::CallFailed(H_VCPU))
        }
    }
    let mut k = RoutingKernel::new(Direct(&mut r));
    let ch = Channel::new(9);
    let [_, b, c, d] = api::cpuid(&mut k, ch, 0, 0x4000_0000, 0).unwrap().unwrap();
    assert_eq!(
        [b, c, d]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect::<Vec<_>>(),
        b"Microsoft Hv"
    );
    assert_eq!(api::cpuid(&mut k, ch, 0, 0x8000_0001, 0).unwrap(), None);
    assert_eq!(
        api::cpuid(&mut k, ch, 0, 0x4000_0082, 0).unwrap().unwrap()[0] & 8,
        8
    );
    assert_eq!(
        api::read_msr(&mut k, ch, 1, Vtl::VTL0, HV_X64_MSR_VP_INDEX).unwrap(),
        (Some(MsrReply::Ok), 1)
    );
    assert_eq!(
        api::write_msr(&mut k, ch, 1, Vtl::VTL0, HV_X64_MSR_VP_INDEX, 3).unwrap(),
        Some(MsrReply::Gp)
    );
    assert_eq!(
        api::read_msr(&mut k, ch, 0, Vtl::VTL0, HV_X64_MSR_SCONTROL)
            .unwrap()
            .0,
        Some(MsrReply::NotMine)
    );
    assert_eq!(
        api::write_msr(&mut k, ch, 0, Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID, 0x8100).unwrap(),
        Some(MsrReply::Ok)
    );
    assert_eq!(
        api::write_msr(&mut k, ch, 0, Vtl::VTL0, HV_X64_MSR_HYPERCALL, 0x2001).unwrap(),
        Some(MsrReply::Ok)
    );
    assert_eq!(
        k.route.0.mem.ram.read::<[u8; 4]>(0x2000).unwrap(),
        [0x0F, 0x01, 0xD9, 0xC3]
    );
    // VSM: enable VTL1 and read back its start context.
    let ep = EnablePartitionVtlInput {
        partition_id: HV_PARTITION_ID_SELF,
        target_vtl: 1,
        flags: 0,
        reserved_z0: 0,
        reserved_z1: 0,
    };
    let enabled = k
        .route
        .0
        .with_input(HypercallCode::ENABLE_PARTITION_VTL, ep.as_bytes());
    assert_eq!(enabled, HvStatus::SUCCESS);
    let mut ev = EnableVpVtlInput::new_zeroed();
    ev.partition_id = HV_PARTITION_ID_SELF;
    ev.target_vtl = 1;
    ev.context.rip = 0x1000;
    ev.context.cr3 = 0x5000;
    let enabled = k
        .route
        .0
        .with_input(HypercallCode::ENABLE_VP_VTL, ev.as_bytes());
    assert_eq!(enabled, HvStatus::SUCCESS);
    let mut mrs = MessageRegisters::new();
    mrs.set(1, 1);
    let reply = k
        .route
        .0
        .call(
            H_VCPU,
            MessageInfo::new(api::label::INITIAL_CONTEXT, 2),
            &mut mrs,
        )
        .unwrap();
    let ctx = api::decode_context(reply, &mrs).unwrap();
    assert_eq!((ctx.rip, ctx.cr3), (0x1000, 0x5000));
    assert_eq!(
        k.route
            .0
            .hypercall(Control::new(HypercallCode::VTL_CALL), 0, 0),
        Outcome::SwitchVtl(Vtl::VTL1)
    );
}
