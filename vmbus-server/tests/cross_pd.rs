//! The whole VMBus path across PDs, in one process: the Rust client as the guest
//! posts through hvcall-pd (HvPostMessage), vmbus-server takes the messages from its
//! service queue and answers through synic-pd into the guest's SynIC message page,
//! and an echo VSP PD serves the channel: the guest's packets go out through the
//! guest-to-host ring with HvSignalEvent and come back on the other ring with an
//! event flag. Every PD is its real `ipc::Handler`; a router kernel carries protected
//! calls synchronously and notifications in order, as the runtime would.
//!
//! Run with a 6.0 guest asking for Confidential VMBus (everything on the paravisor's
//! SynIC, private rings) and a 5.3 guest (the hypervisor's SynIC, shared rings).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use hvcall_pd::api::{self as hv_api, RegisterStatus, Registration, RouteKind};
use hvcall_pd::pd::{self as hv, HvcallPd};
use hvcall_pd::{HypercallRequest, Outcome};
use hvdef::hypercall::{PostMessageInput, SignalEventInput};
use hvdef::msr::*;
use hvdef::{Control, HvStatus, HypercallCode, Vtl};
use ipc::testing::{leaked_region, FakeInit};
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, HandlerReply, IpcError, Kernel, MessageInfo,
    MessageRegisters, Perms, PpCall, PpReply, Region,
};
use synic_pd::pd::{self as sy, SynicPd};
use synic_pd::{Instance, SintTarget};
use vmbus_client::{Client, ClientConfig, OpenParams, Transport, TransportError};
use vmbus_protocol::ids::interface;
use vmbus_protocol::{gpa, FeatureFlags, GpadlId, Guid, Relid, Version};
use vmbus_ring::{
    GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing,
};
use vmbus_server::pd::{self as vm, VmbusPd};
use vmbus_server::vsp::{self, VspOffer, VspRequest};
use zerocopy::IntoBytes;

const RAM_PAGES: u64 = 256;
const SHARED_GPA: u64 = 1 << 30;
/// The guest's hypercall input page and its two SynICs' pages.
const IN: u64 = 0x3000;
const SIMP: [u64; 2] = [0x8000, 0xA000];
const SIEFP: [u64; 2] = [0x9000, 0xB000];
const INSTANCES: [Instance; 2] = [Instance::PARAVISOR, Instance::HYPERVISOR];
const VECTOR: u8 = 0x30;
const SINT: u8 = 2;

#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Pd {
    Guest,
    Hvcall,
    Synic,
    Vmbus,
    Vsp,
    /// A second VSP (slot 1) that tries to take the echo VSP's channel.
    Rogue,
}

/// (pd, its channel id) <-> (pd, its channel id)
const LINKS: [((Pd, u8), (Pd, u8)); 10] = [
    ((Pd::Guest, 0), (Pd::Hvcall, 0)),
    ((Pd::Guest, 1), (Pd::Synic, 0)),
    ((Pd::Hvcall, 1), (Pd::Synic, 1)),
    ((Pd::Hvcall, 3), (Pd::Vmbus, 0)),
    ((Pd::Hvcall, 4), (Pd::Vsp, 1)),
    ((Pd::Vmbus, 1), (Pd::Synic, 2)),
    ((Pd::Vmbus, 2), (Pd::Vsp, 0)),
    ((Pd::Vsp, 2), (Pd::Synic, 3)),
    ((Pd::Hvcall, 5), (Pd::Rogue, 1)),
    ((Pd::Synic, 4), (Pd::Rogue, 2)),
];

/// An echo VSP: offers one storage-class device, and writes every in-band packet
/// the guest sends back to it with the same transaction id.
struct EchoVsp {
    ram: Region<'static>,
    window: Region<'static>,
    gpadls: BTreeMap<GpadlId, Vec<u64>>,
    open: Option<OpenChannel>,
    opens: Vec<vsp::VspOpen>,
    echoed: usize,
    /// The VSP withdrew its offer (GET_OFFER answers "none").
    withdrawn: bool,
    /// A VSP gone bad: it leaves its hvcall-pd route behind on CLOSE.
    keeps_routes: bool,
}

struct OpenChannel {
    request: vsp::VspOpen,
    inbound: IncomingRing<GpadlRingMem<'static, Vec<u64>>>,
    outbound: OutgoingRing<GpadlRingMem<'static, Vec<u64>>>,
}

const P_VMBUS: Channel = Channel::new(0);
const P_HVCALL: Channel = Channel::new(1);
const P_SYNIC: Channel = Channel::new(2);

impl EchoVsp {
    fn offer() -> VspOffer {
        VspOffer::device(interface::STORAGE, Guid::from_fields(0xec40, 1, 2, [3; 8]))
    }

    fn handle(
        &mut self,
        kernel: &mut dyn Kernel,
        req: VspRequest,
        mrs: &mut MessageRegisters,
    ) -> MessageInfo {
        match req {
            VspRequest::GetOffer { slot: 0 } if !self.withdrawn => Self::offer().encode(mrs),
            VspRequest::GetOffer { .. } => MessageInfo::new(vsp::REPLY_NONE, 0),
            VspRequest::MapGpadl(m) => {
                let mut words = vec![0u64; m.words as usize];
                vsp::read_window(&self.window, &mut words).expect("window");
                let ranges = gpa::validate(&words, m.range_count.into()).expect("server validated");
                self.gpadls.insert(m.gpadl, ranges.pfns().collect());
                vsp::status_reply(mrs, 0)
            }
            VspRequest::UnmapGpadl { gpadl, .. } => {
                self.gpadls.remove(&gpadl);
                MessageInfo::new(vsp::REPLY_OK, 0)
            }
            VspRequest::Open(o) => {
                let pages = self.gpadls[&o.ring_gpadl].clone();
                let split = o.downstream_page_offset as usize;
                let inbound = IncomingRing::new(
                    GpadlRingMem::new(self.ram, pages[..split].to_vec()).expect("ring pages"),
                )
                .expect("inbound ring");
                let outbound = OutgoingRing::new(
                    GpadlRingMem::new(self.ram, pages[split..].to_vec()).expect("ring pages"),
                )
                .expect("outbound ring");
                // The guest signals this channel through hvcall-pd from now on.
                let reg = Registration {
                    connection_id: o.signal_connection_id,
                    vtl: Vtl::VTL0,
                    kind: RouteKind::Service,
                };
                let status = hv_api::register_connection(kernel, P_HVCALL, &reg).expect("pp");
                assert_eq!(status, Some(RegisterStatus::Ok));
                self.opens.push(o.clone());
                self.open = Some(OpenChannel {
                    request: o,
                    inbound,
                    outbound,
                });
                vsp::status_reply(mrs, 0)
            }
            VspRequest::Close { .. } => {
                if let Some(open) = self.open.take().filter(|_| !self.keeps_routes) {
                    hv_api::unregister_connection(
                        kernel,
                        P_HVCALL,
                        open.request.signal_connection_id,
                        Vtl::VTL0,
                    )
                    .expect("pp");
                }
                MessageInfo::new(vsp::REPLY_OK, 0)
            }
            VspRequest::Modify { .. } => vsp::status_reply(mrs, 0),
        }
    }

    fn echo(&mut self, kernel: &mut dyn Kernel) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let mut signal = false;
        while let Ok(packet) = open.inbound.read() {
            assert_eq!(packet.kind, IncomingKind::InBand);
            let mut buf = vec![0u8; packet.payload.len()];
            open.inbound
                .copy_from(&packet.payload, 0, &mut buf)
                .expect("payload");
            let reply = OutgoingPacket {
                transaction_id: packet.transaction_id,
                completion_requested: false,
                kind: OutgoingKind::InBand,
            };
            open.outbound
                .write_packet(&reply, &[&buf])
                .expect("room to echo");
            signal |= open.outbound.commit().expect("commit");
            self.echoed += 1;
        }
        open.inbound.commit().expect("reader commit");
        if signal {
            let r = &open.request;
            let target = SintTarget {
                vp: r.target_vp,
                instance: if r.paravisor_synic {
                    Instance::PARAVISOR
                } else {
                    Instance::HYPERVISOR
                },
                sint: r.target_sint,
            };
            let result = synic_pd::api::signal_event(kernel, P_SYNIC, target, r.event_flag);
            assert!(matches!(result, Ok(Ok(_))), "{result:?}");
        }
    }
}

impl Handler for EchoVsp {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        // The guest signalled the channel (through hvcall-pd's service route).
        if channels.contains(P_HVCALL) {
            self.echo(kernel);
        }
        Ok(())
    }

    fn protected(&mut self, kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        assert_eq!(call.ch, P_VMBUS);
        let req = VspRequest::decode(call.msg, call.mrs).map_err(|_| call.bad_request())?;
        Ok(self.handle(kernel, req, call.mrs))
    }
}

struct World {
    ram: Region<'static>,
    hvcall: RefCell<Box<HvcallPd<2, 16>>>,
    synic: RefCell<Box<SynicPd<2, 16>>>,
    vmbus: RefCell<VmbusPd>,
    vsp: RefCell<EchoVsp>,
    pending: RefCell<VecDeque<(Pd, Channel)>>,
    console: RefCell<Vec<String>>,
    /// Notifications that reached the rogue VSP.
    rogue_woken: RefCell<u32>,
}

struct Link<'w> {
    world: &'w World,
    me: Pd,
}

fn peer(from: Pd, ch: Channel) -> Option<(Pd, Channel)> {
    LINKS.iter().find_map(|&((a, ac), (b, bc))| {
        if (a, ac) == (from, ch.index()) {
            Some((b, Channel::new(bc)))
        } else if (b, bc) == (from, ch.index()) {
            Some((a, Channel::new(ac)))
        } else {
            None
        }
    })
}

impl Kernel for Link<'_> {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        let (to, their) = peer(self.me, ch).ok_or(IpcError::NotGranted(ch))?;
        self.world.pending.borrow_mut().push_back((to, their));
        Ok(())
    }

    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        let ch = call.ch;
        let (to, their) = peer(self.me, ch).ok_or(IpcError::NotGranted(ch))?;
        let mut k = Link {
            world: self.world,
            me: to,
        };
        let w = self.world;
        let call = call.on(their);
        let r = match to {
            Pd::Hvcall => w.hvcall.borrow_mut().protected(&mut k, call),
            Pd::Synic => w.synic.borrow_mut().protected(&mut k, call),
            Pd::Vmbus => w.vmbus.borrow_mut().protected(&mut k, call),
            Pd::Vsp => w.vsp.borrow_mut().protected(&mut k, call),
            Pd::Guest | Pd::Rogue => return Err(IpcError::CallNotPermitted(ch)),
        };
        r.map_err(|e| {
            w.console
                .borrow_mut()
                .push(format!("{to:?} refused a call: {e}"));
            IpcError::CallFailed(ch)
        })
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        Err(IpcError::NotAnIrq(ch))
    }

    fn debug_puts(&mut self, text: &str) {
        self.world
            .console
            .borrow_mut()
            .push(format!("{:?}: {text}", self.me));
    }
}

impl World {
    fn new(confidential: bool) -> Self {
        Self::starting_after(confidential, |_| {})
    }

    /// A world where `early` runs before vmbus-server's start (its first calls to
    /// hvcall-pd and synic-pd): what a VSP that boots first could do.
    fn starting_after(confidential: bool, early: impl FnOnce(&World)) -> Self {
        let ram = leaked_region(RAM_PAGES as usize * 4096);
        let shared = leaked_region(4 * 4096);
        let vmbus_queue = hvcall_pd::testing::service_queue();
        let window = leaked_region(4 * 4096);

        // hvcall-pd's service 0 is vmbus-server (channel 3, as `testing` has it).
        let hvcall_init = hvcall_pd::testing::init(ram, vmbus_queue, SHARED_GPA)
            .region(hv::GUEST_SHARED, shared)
            .region(
                hv::SERVICE_QUEUE_REGIONS[1],
                hvcall_pd::testing::service_queue(),
            )
            .variable(hv::GUEST_SHARED_GPA, SHARED_GPA)
            .variable(hv::MAX_GUEST_VTL, 0)
            .variable(hv::SERVICE_CHANNEL_VARS[1], 4)
            .variable(hv::SERVICE_CHANNEL_VARS[2], 5)
            // vmbus-server grants; VSP slot 0 is the echo VSP, slot 1 the rogue.
            .variable(hv::GRANT_CHANNEL, 3)
            .variable(hv::VSP_CHANNEL_VARS[0], 4)
            .variable(hv::VSP_CHANNEL_VARS[1], 5);
        // hvcall-pd, vmbus-server and the VSP deliver into both instances.
        let irq = synic_pd::testing::irq_queue();
        let synic_init = synic_pd::testing::init(ram, irq, Channel::new(0), 0b11110)
            .variable(sy::GRANT_CHANNEL, 2)
            .variable(sy::VSP_CHANNEL_VARS[0], 3)
            .variable(sy::VSP_CHANNEL_VARS[1], 4);
        let vmbus_init = FakeInit::new("test")
            .region(vm::SERVICE_QUEUE, vmbus_queue)
            .region(vm::VSP_GPADL_REGIONS[0], window)
            .variable(vm::HVCALL_CHANNEL, 0)
            .variable(vm::SYNIC_CHANNEL, 1)
            .variable(vm::VSP_CHANNEL_VARS[0], 2)
            .variable(vm::VP_COUNT, 2)
            .variable(vm::GUEST_RAM_GPA, 0)
            .variable(vm::GUEST_RAM_SIZE, RAM_PAGES * 4096)
            .variable(vm::CONFIDENTIAL_VMBUS, confidential.into());
        let world = World {
            ram,
            hvcall: RefCell::new(Box::new(
                HvcallPd::init(&hvcall_init).expect("hvcall-pd init"),
            )),
            synic: RefCell::new(Box::new(SynicPd::init(&synic_init).expect("synic-pd init"))),
            vmbus: RefCell::new(VmbusPd::init(&vmbus_init).expect("vmbus-server init")),
            vsp: RefCell::new(EchoVsp {
                ram,
                window: window.restrict(Perms::R),
                gpadls: BTreeMap::new(),
                open: None,
                opens: Vec::new(),
                withdrawn: false,
                keeps_routes: false,
                echoed: 0,
            }),
            pending: RefCell::new(VecDeque::new()),
            console: RefCell::new(Vec::new()),
            rogue_woken: RefCell::new(0),
        };
        early(&world);
        world
            .vmbus
            .borrow_mut()
            .start(&mut Link {
                world: &world,
                me: Pd::Vmbus,
            })
            .expect("vmbus-server start");
        world.run();
        world.enable_synics();
        world
    }

    /// VP 0 enables both SynICs, as a guest that reads both does.
    fn enable_synics(&self) {
        for (i, instance) in INSTANCES.into_iter().enumerate() {
            for (msr, value) in hvdef::synic::enable_writes(SIMP[i], SIEFP[i], SINT, VECTOR) {
                self.write_msr(instance, msr, value);
            }
        }
    }

    fn write_msr(&self, instance: Instance, msr: u32, value: u64) {
        let mut k = Link {
            world: self,
            me: Pd::Guest,
        };
        let status = synic_pd::api::write_msr(&mut k, Channel::new(1), 0, instance, msr, value)
            .expect("synic-pd call");
        assert_eq!(status, synic_pd::api::MsrStatus::Ok);
    }

    /// Delivers notifications until the system is quiet.
    fn run(&self) {
        loop {
            let next = self.pending.borrow_mut().pop_front();
            let Some((pd, ch)) = next else { return };
            let mut k = Link {
                world: self,
                me: pd,
            };
            let set = ChannelSet::from_iter([ch]);
            let r = match pd {
                Pd::Hvcall => self.hvcall.borrow_mut().notified(&mut k, set),
                Pd::Synic => self.synic.borrow_mut().notified(&mut k, set),
                Pd::Vmbus => self.vmbus.borrow_mut().notified(&mut k, set),
                Pd::Vsp => self.vsp.borrow_mut().notified(&mut k, set),
                // The guest polls its pages instead of taking interrupts.
                Pd::Guest => Ok(()),
                Pd::Rogue => {
                    *self.rogue_woken.borrow_mut() += 1;
                    Ok(())
                }
            };
            r.unwrap_or_else(|e| panic!("{pd:?} failed on {ch}: {e}"));
        }
    }

    /// A VSP (`pd`) claims `connection_id` for itself at hvcall-pd.
    fn claims(&self, pd: Pd, connection_id: u32) -> Option<RegisterStatus> {
        let reg = Registration {
            connection_id,
            vtl: Vtl::VTL0,
            kind: RouteKind::Service,
        };
        let mut k = Link {
            world: self,
            me: pd,
        };
        // Both VSPs reach hvcall-pd on their channel 1 and synic-pd on 2.
        hv_api::register_connection(&mut k, P_HVCALL, &reg).expect("hvcall-pd call")
    }

    /// A VSP (`pd`) sets `flag` on `target` through synic-pd.
    fn signals(&self, pd: Pd, target: SintTarget, flag: u32) -> Result<bool, HvStatus> {
        let mut k = Link {
            world: self,
            me: pd,
        };
        synic_pd::api::signal_event(&mut k, P_SYNIC, target, flag).expect("synic-pd call")
    }

    /// The guest's HvSignalEvent (fast, flag 0) on `connection_id`.
    fn signal_guest_event(&self, connection_id: u32) -> HvStatus {
        let input = SignalEventInput::new(connection_id, 0);
        self.hypercall(SignalEventInput::FAST_CONTROL, input.to_u64())
    }

    fn hypercall(&self, control: Control, rdx: u64) -> HvStatus {
        let req = HypercallRequest::vp0(control, rdx, 0);
        let mut k = Link {
            world: self,
            me: Pd::Guest,
        };
        let outcome = hv_api::hypercall(&mut k, Channel::new(0), &req).expect("hvcall-pd call");
        let status = match outcome {
            Some(Outcome::Complete(r)) => r.status(),
            other => panic!("{other:?}"),
        };
        self.run();
        status
    }
}

/// The guest's side of the message path: HvPostMessage out, SIMP slots in.
struct GuestBus<'w> {
    world: &'w World,
    /// Which instance each received message came through.
    received_on: Vec<Instance>,
}

impl Transport for GuestBus<'_> {
    fn post(&mut self, connection_id: u32, message: &[u8]) -> Result<(), TransportError> {
        let p = PostMessageInput::new(connection_id, 1, message)
            .ok_or_else(|| TransportError::Other("message too long".into()))?;
        self.world
            .ram
            .write_bytes(IN as usize, p.as_bytes())
            .expect("input page");
        match self
            .world
            .hypercall(Control::new(HypercallCode::POST_MESSAGE), IN)
        {
            HvStatus::SUCCESS => Ok(()),
            HvStatus::INSUFFICIENT_BUFFERS => Err(TransportError::Busy),
            s => Err(TransportError::Other(format!("HvPostMessage: {s:?}"))),
        }
    }

    fn receive(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        self.world.run();
        for (i, instance) in INSTANCES.into_iter().enumerate() {
            let slot = (SIMP[i] + u64::from(SINT) * 256) as usize;
            let ram = self.world.ram;
            let message_type: u32 = ram.read(slot).expect("slot");
            if message_type == 0 {
                continue;
            }
            let size: u8 = ram.read(slot + 4).expect("slot");
            let flags: u8 = ram.read(slot + 5).expect("slot");
            let mut payload = vec![0u8; usize::from(size).min(240)];
            ram.read_bytes(slot + 16, &mut payload).expect("slot");
            // Free the slot, then EOM if the SynIC has more for us (Linux's order).
            ram.write(slot, &0u32).expect("slot");
            if flags & 1 != 0 {
                self.world.write_msr(instance, HV_X64_MSR_EOM, 0);
            }
            self.received_on.push(instance);
            return Ok(Some(payload));
        }
        Ok(None)
    }
}

/// Takes (and clears) the guest's event flag for `relid` on an instance.
fn take_event_flag(world: &World, instance: usize, relid: Relid) -> bool {
    let at = (SIEFP[instance] + u64::from(SINT) * 256 + u64::from(relid.0 / 8)) as usize;
    let byte: u8 = world.ram.read(at).expect("flags");
    let bit = 1u8 << (relid.0 % 8);
    world.ram.write(at, &(byte & !bit)).expect("flags");
    byte & bit != 0
}

/// How an echo session ends.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Ending {
    /// Linux's close, GPADL teardown and unload.
    GuestCloses,
    /// The VSP withdraws its offer while the channel is open, and leaves its route
    /// behind when vmbus-server closes the channel.
    VspWithdraws,
}

/// The rogue VSP, started before vmbus-server, reaches for the doorbells and
/// interrupts the echo channel will have (its relid is the first, but any of the
/// first few would do): all refused, so nothing it could hold survives into the
/// session, where the echo VSP must register that connection itself.
fn rogue_first(world: &World) {
    let target = SintTarget {
        vp: 0,
        instance: Instance::PARAVISOR,
        sint: SINT,
    };
    for relid in 1..=4 {
        assert_eq!(
            world.claims(Pd::Rogue, 0x2000 + relid),
            Some(RegisterStatus::NotPermitted),
            "relid {relid}'s doorbell"
        );
        assert_eq!(
            world.signals(Pd::Rogue, target, relid),
            Err(HvStatus::ACCESS_DENIED),
            "relid {relid}'s flag"
        );
    }
}

fn echo_session(confidential_guest: bool, ending: Ending) {
    echo_session_after(confidential_guest, ending, |_| {});
}

fn echo_session_after(confidential_guest: bool, ending: Ending, early: fn(&World)) {
    let world = World::starting_after(true, early);
    let config = if confidential_guest {
        ClientConfig::linux_confidential()
    } else {
        // Debian's 6.1/6.12 kernels: up to 5.3, no Confidential VMBus.
        let mut c = ClientConfig::linux();
        c.versions.retain(|&v| v <= Version::WIN10_V5_3);
        c
    };
    let bus = GuestBus {
        world: &world,
        received_on: Vec::new(),
    };
    let mut client = Client::new(bus, config);
    let connection = client.connect().expect("connect");
    let (instance, instance_index) = if confidential_guest {
        assert_eq!(connection.version, Version::V6_0);
        assert_eq!(connection.features, FeatureFlags::CONFIDENTIAL_CHANNELS);
        (Instance::PARAVISOR, 0)
    } else {
        assert_eq!(connection.version, Version::WIN10_V5_3);
        (Instance::HYPERVISOR, 1)
    };
    let offers = client.request_offers().expect("offers");
    assert_eq!(offers.len(), 1);
    let offer = offers[0];
    assert_eq!(offer.instance_id, EchoVsp::offer().instance_id);
    assert_eq!(offer.confidential_ring(), confidential_guest);
    assert!(
        client
            .transport()
            .received_on
            .iter()
            .all(|&i| i == instance),
        "every message on one SynIC: {:?}",
        client.transport().received_on
    );

    // An 8-page ring GPADL: guest-to-host ring in pages 0-3, host-to-guest in 4-7.
    let pfns: Vec<u64> = (0x40..0x48).collect();
    for &control in &[pfns[0], pfns[4]] {
        world
            .ram
            .fill((control * 4096) as usize, 4096, 0)
            .expect("ring control page");
    }
    // Another VSP cannot pre-claim the channel's doorbell (vmbus-server grants it
    // to the echo VSP only when it opens the channel).
    assert_eq!(
        world.claims(Pd::Rogue, offer.connection_id),
        Some(RegisterStatus::NotPermitted)
    );
    let ring = client.create_gpadl(offer.relid, &pfns).expect("ring GPADL");
    assert_eq!(
        world.vsp.borrow().gpadls[&ring],
        pfns,
        "the VSP sees the pages"
    );
    client
        .open(
            offer.relid,
            &OpenParams {
                ring_gpadl: ring,
                downstream_page_offset: 4,
                target_vp: 0,
                user_data: [0; 120],
            },
        )
        .expect("open");
    {
        let vsp = world.vsp.borrow();
        let opened = vsp.opens.last().expect("VSP opened the channel");
        assert_eq!(opened.confidentiality.ring, confidential_guest);
        assert_eq!(opened.paravisor_synic, confidential_guest);
        assert_eq!(opened.signal_connection_id, offer.connection_id);
    }

    let mut tx =
        OutgoingRing::new(GpadlRingMem::new(world.ram, pfns[..4].to_vec()).expect("pages"))
            .expect("ring");
    let mut rx =
        IncomingRing::new(GpadlRingMem::new(world.ram, pfns[4..].to_vec()).expect("pages"))
            .expect("ring");
    // Nor take it over, nor interrupt the guest in the echo VSP's name.
    assert_eq!(
        world.claims(Pd::Rogue, offer.connection_id),
        Some(RegisterStatus::NotPermitted)
    );
    let echo_target = SintTarget {
        vp: 0,
        instance,
        sint: SINT,
    };
    assert_eq!(
        world.signals(Pd::Rogue, echo_target, offer.relid.0),
        Err(HvStatus::ACCESS_DENIED)
    );
    assert!(!take_event_flag(&world, instance_index, offer.relid));
    for round in 0..20u64 {
        let body = format!("packet {round} through the paravisor").into_bytes();
        let packet = OutgoingPacket {
            transaction_id: 1000 + round,
            completion_requested: false,
            kind: OutgoingKind::InBand,
        };
        tx.write_packet(&packet, &[&body]).expect("room");
        if tx.commit().expect("commit") {
            let status = world.signal_guest_event(offer.connection_id);
            assert_eq!(status, HvStatus::SUCCESS);
        }
        assert!(
            take_event_flag(&world, instance_index, offer.relid),
            "round {round}: the VSP interrupted the guest on its SynIC"
        );
        assert!(!take_event_flag(&world, 1 - instance_index, offer.relid));
        let echo = rx.read().expect("an echo");
        assert_eq!(echo.transaction_id, 1000 + round);
        let mut got = vec![0u8; echo.payload.len()];
        rx.copy_from(&echo.payload, 0, &mut got).expect("payload");
        assert_eq!(&got[..body.len()], &body[..]);
        rx.commit().expect("commit");
    }
    assert_eq!(world.vsp.borrow().echoed, 20);
    assert_eq!(
        *world.rogue_woken.borrow(),
        0,
        "doorbells reach only the owner"
    );

    // A retarget moves the channel's interrupt grant with it: the VSP may set its
    // flag on the new VP only.
    client.modify(offer.relid, 1).expect("modify");
    let moved = SintTarget {
        vp: 1,
        ..echo_target
    };
    assert_eq!(
        world.signals(Pd::Vsp, echo_target, offer.relid.0),
        Err(HvStatus::ACCESS_DENIED)
    );
    assert!(world.signals(Pd::Vsp, moved, offer.relid.0).is_ok());
    client.modify(offer.relid, 0).expect("modify back");
    assert!(world.signals(Pd::Vsp, echo_target, offer.relid.0).is_ok());
    assert!(take_event_flag(&world, instance_index, offer.relid));

    if ending == Ending::VspWithdraws {
        {
            let mut vsp = world.vsp.borrow_mut();
            vsp.withdrawn = true;
            vsp.keeps_routes = true;
        }
        // The VSP notifies vmbus-server (its channel 2) that its offers changed.
        world
            .pending
            .borrow_mut()
            .push_back((Pd::Vmbus, Channel::new(2)));
        world.run();
        assert!(world.vsp.borrow().open.is_none(), "vmbus-server closed it");
        // vmbus-server rescinded and closed the channel: the doorbell leads nowhere
        // even though the VSP never unregistered, and the VSP's own interrupt and
        // connection are gone with the grant.
        let status = world.signal_guest_event(offer.connection_id);
        assert_eq!(status, HvStatus::INVALID_CONNECTION_ID);
        assert_eq!(
            world.signals(Pd::Vsp, echo_target, offer.relid.0),
            Err(HvStatus::ACCESS_DENIED)
        );
        assert_eq!(
            world.claims(Pd::Vsp, offer.connection_id),
            Some(RegisterStatus::NotPermitted)
        );
        return;
    }

    // Linux's teardown order, then unload; the VSP lets go of everything.
    client.close(offer.relid).expect("close");
    client.teardown_gpadl(offer.relid, ring).expect("teardown");
    client.unload().expect("unload");
    assert!(world.vsp.borrow().open.is_none());
    assert!(world.vsp.borrow().gpadls.is_empty());
    assert!(world.vmbus.borrow().server().connection().is_none());
    // Closing took the grant back: the freed connection and flag are nobody's.
    assert_eq!(
        world.claims(Pd::Rogue, offer.connection_id),
        Some(RegisterStatus::NotPermitted)
    );
    assert_eq!(
        world.signals(Pd::Rogue, echo_target, offer.relid.0),
        Err(HvStatus::ACCESS_DENIED)
    );
    let console = world.console.borrow();
    assert!(
        console
            .iter()
            .all(|l| !l.contains("Warn") && !l.contains("Error") && !l.contains("refused")),
        "{console:#?}"
    );
}

/// Debug builds keep every PD's frames (message registers, 256-byte messages) on one
/// stack through nested protected calls: give the chain room.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn a_confidential_6_0_guest_echoes_through_the_paravisor_synic() {
    with_big_stack(|| echo_session(true, Ending::GuestCloses));
}

#[test]
fn a_5_3_guest_echoes_through_the_hypervisor_synic() {
    with_big_stack(|| echo_session(false, Ending::GuestCloses));
}

#[test]
fn a_rescinded_open_channel_takes_its_doorbell_and_interrupt_from_the_vsp() {
    with_big_stack(|| echo_session(true, Ending::VspWithdraws));
}

#[test]
fn a_vsp_that_starts_before_vmbus_server_takes_nothing_of_anothers() {
    with_big_stack(|| echo_session_after(true, Ending::GuestCloses, rogue_first));
}

#[test]
fn a_flood_of_garbage_posts_leaves_the_server_usable() {
    with_big_stack(flood);
}

fn flood() {
    let world = World::new(true);
    let mut bus = GuestBus {
        world: &world,
        received_on: Vec::new(),
    };
    // A flood of garbage: every post is taken (vmbus-server drains as it goes) and
    // dropped with a log line; the server stays usable.
    for i in 0..200u32 {
        let junk = [(i % 40) as u8; 24];
        bus.post(4, &junk).expect("taken");
    }
    assert!(bus.receive().expect("receive").is_none());
    let mut client = Client::new(bus, ClientConfig::linux_confidential());
    assert_eq!(client.connect().expect("connect").version, Version::V6_0);
    assert_eq!(client.request_offers().expect("offers").len(), 1);
    assert!(world
        .console
        .borrow()
        .iter()
        .any(|l| l.contains("malformed message")));
}
