//! The PD driven through `ipc::Handler` with fake peers: vmbus-server's calls come
//! in as protected calls, hvcall-pd and synic-pd are a recording kernel, and the
//! test plays the guest on the other end of the rings.

use std::vec;
use std::vec::Vec;

use ipc::testing::{leaked_region, FakeInit, RoutingKernel};
use ipc::{
    ChannelSet, Handler, HandlerError, MessageInfo, MessageRegisters, Perms, PpCall, Region,
};
use proptest::prelude::*;
use synic_api::{Instance, SintTarget};
use vmbus_protocol::gpa;
use vmbus_protocol::status::*;
use vmbus_protocol::{GpadlId, OfferFlags, Relid, Version};
use vmbus_ring::{
    GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing,
    ReadError, PAGE_SIZE,
};
use vsp_api::Confidentiality;
use vsp_api::{self as vsp, MapGpadl, VspOffer, VspOpen, REPLY_NONE};
use vsp_test_util::{Peers, VmbusServer};

use vmbus_device::names as config;

use crate::device::{self as pd, EchoVsp};

use crate::config::build::{GUEST_RAM_GPA, GUEST_SHARED_GPA as SHARED_GPA, HVCALL, SYNIC, VMBUS};
const SHARED_PFN: u64 = SHARED_GPA / PAGE_SIZE as u64;
const RAM_PAGES: usize = 64;
const RELID: Relid = Relid(5);
const CONNECTION: u32 = 0x2005;

struct Rig {
    s: VmbusServer<EchoVsp>,
    ram: Region<'static>,
    shared: Region<'static>,
}

/// The guest's ends of an open channel.
struct GuestRings {
    tx: OutgoingRing<GpadlRingMem<'static, Vec<u64>>>,
    rx: IncomingRing<GpadlRingMem<'static, Vec<u64>>>,
}

impl Rig {
    fn new() -> Self {
        let ram = leaked_region(RAM_PAGES * PAGE_SIZE);
        let shared = leaked_region(16 * PAGE_SIZE);
        let window = leaked_region(PAGE_SIZE);
        let init = FakeInit::new("echo_vsp")
            .region(config::GUEST_RAM, ram)
            .region(config::GUEST_SHARED, shared)
            .region(config::GPADL_WINDOW, window.restrict(Perms::R))
            .variable(config::VMBUS_CHANNEL, VMBUS.index().into())
            .variable(config::HVCALL_CHANNEL, HVCALL.index().into())
            .variable(config::SYNIC_CHANNEL, SYNIC.index().into())
            .variable(config::GUEST_RAM_GPA, GUEST_RAM_GPA)
            .variable(config::GUEST_SHARED_GPA, SHARED_GPA);
        Self {
            s: VmbusServer {
                pd: crate::init(&init).unwrap(),
                kernel: RoutingKernel::new(Peers::new(HVCALL, SYNIC)),
                vmbus: VMBUS,
                window,
            },
            ram,
            shared,
        }
    }

    fn map(&mut self, gpadl: u32, pfns: &[u64], ring_confidential: bool) -> u32 {
        let confidentiality = Confidentiality {
            ring: ring_confidential,
            external: ring_confidential,
        };
        self.s.map(RELID, gpadl, pfns, confidentiality)
    }

    fn open(&mut self, gpadl: u32, split: u32, confidential: bool) -> u32 {
        let open = VspOpen {
            relid: RELID,
            subchannel_index: 0,
            open_id: 1,
            ring_gpadl: GpadlId(gpadl),
            downstream_page_offset: split,
            target_vp: 0,
            target_sint: 2,
            paravisor_synic: confidential,
            confidentiality: Confidentiality {
                ring: confidential,
                external: confidential,
            },
            signal_connection_id: CONNECTION,
            event_flag: RELID.0,
            version: Version::V6_0,
            user_data: [0; 120],
        };
        self.s.status(|mrs| open.encode(mrs))
    }

    /// Creates and opens a channel whose 8 ring pages start at `first_pfn`, in
    /// private RAM or (above the vTOM) the shared alias.
    fn open_channel(&mut self, first_pfn: u64, confidential: bool) -> GuestRings {
        let pfns: Vec<u64> = (first_pfn..first_pfn + 8).collect();
        let (region, base) = if first_pfn >= SHARED_PFN {
            (self.shared, SHARED_PFN)
        } else {
            (self.ram, 0)
        };
        let rel: Vec<u64> = pfns.iter().map(|p| p - base).collect();
        let tx_mem = GpadlRingMem::new(region, rel[..4].to_vec()).unwrap();
        let rx_mem = GpadlRingMem::new(region, rel[4..].to_vec()).unwrap();
        vmbus_ring::RingMem::control(&tx_mem).initialize();
        vmbus_ring::RingMem::control(&rx_mem).initialize();
        assert_eq!(self.map(7, &pfns, confidential), STATUS_SUCCESS);
        assert_eq!(self.open(7, 4, confidential), STATUS_SUCCESS);
        GuestRings {
            tx: OutgoingRing::new(tx_mem).unwrap(),
            rx: IncomingRing::new(rx_mem).unwrap(),
        }
    }

    fn guest_signal(&mut self) -> Result<(), HandlerError> {
        self.s
            .pd
            .notified(&mut self.s.kernel, ChannelSet::from_iter([HVCALL]))
    }
}

fn in_band(id: u64) -> OutgoingPacket<'static> {
    OutgoingPacket {
        transaction_id: id,
        completion_requested: false,
        kind: OutgoingKind::InBand,
    }
}

fn read_echo(rx: &mut IncomingRing<GpadlRingMem<'static, Vec<u64>>>) -> Option<(u64, Vec<u8>)> {
    let p = match rx.read() {
        Ok(p) => p,
        Err(ReadError::Empty) => return None,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(p.kind, IncomingKind::InBand);
    let mut body = vec![0u8; p.payload.len()];
    rx.copy_from(&p.payload, 0, &mut body).unwrap();
    Some((p.transaction_id, body))
}

#[test]
fn one_offer_with_confidential_external_memory_in_slot_zero() {
    let mut r = Rig::new();
    let (reply, mrs) = r.s.call(|mrs| {
        mrs.set(0, 0);
        MessageInfo::new(vsp::label::GET_OFFER, 1)
    });
    let offer = VspOffer::decode(reply, &mrs).unwrap().unwrap();
    assert_eq!(offer.interface_id, pd::INTERFACE_ID);
    assert_eq!(offer.instance_id, pd::INSTANCE_ID);
    assert_eq!(offer.flags, OfferFlags::EMPTY);
    assert!(offer.confidential_external_memory);
    let (reply, _) = r.s.call(|mrs| {
        mrs.set(0, 1);
        MessageInfo::new(vsp::label::GET_OFFER, 1)
    });
    assert_eq!(reply.label(), REPLY_NONE);
    r.s.pd.announce(&mut r.s.kernel).unwrap();
    assert_eq!(r.s.kernel.record.notified, [VMBUS]);
}

#[test]
fn packets_come_back_with_their_ids_and_the_guest_is_interrupted() {
    let mut r = Rig::new();
    let mut g = r.open_channel(0x10, true);
    assert_eq!(r.s.kernel.route.registered, [CONNECTION]);
    assert!(r
        .s
        .kernel
        .record
        .console
        .contains("confidential ring in private memory"));
    for round in 0..3u64 {
        for i in 0..4u64 {
            let body = std::format!("packet {round}.{i}").into_bytes();
            g.tx.write_packet(&in_band(round * 10 + i), &[&body])
                .unwrap();
        }
        let signal = g.tx.commit().unwrap();
        assert!(
            signal,
            "the VSP never masks, so an empty ring asks for a signal"
        );
        r.guest_signal().unwrap();
        for i in 0..4u64 {
            let (id, body) = read_echo(&mut g.rx).unwrap();
            assert_eq!(id, round * 10 + i);
            let want = std::format!("packet {round}.{i}").into_bytes();
            assert_eq!(&body[..want.len()], &want[..]);
            assert!(body[want.len()..].iter().all(|&b| b == 0), "padding");
        }
        assert!(read_echo(&mut g.rx).is_none());
        g.rx.commit().unwrap();
    }
    let target = SintTarget {
        vp: 0,
        instance: Instance::PARAVISOR,
        sint: 2,
    };
    assert_eq!(r.s.kernel.route.signals, [(target, RELID.0); 3]);
    assert_eq!(r.s.pd.device().echoed, 12);
    // Close lets go of the signal connection.
    r.s.call(|mrs| {
        mrs.set(0, RELID.0.into());
        MessageInfo::new(vsp::label::CLOSE, 1)
    });
    assert_eq!(r.s.kernel.route.unregistered, [CONNECTION]);
    assert_eq!(r.s.pd.open_channels().count(), 0);
}

#[test]
fn a_full_guest_ring_stalls_the_echo_until_the_guest_reads() {
    let mut r = Rig::new();
    let mut g = r.open_channel(0x10, false);
    // 3 data pages per ring: 20 packets of ~1 KiB cannot all come back at once.
    let body = [0x5au8; 1000];
    let mut sent = 0u64;
    let mut received = 0u64;
    while sent < 20 {
        match g.tx.write_packet(&in_band(sent), &[&body]) {
            Ok(()) => sent += 1,
            Err(vmbus_ring::WriteError::Full { .. }) => {
                g.tx.commit().unwrap();
                r.guest_signal().unwrap();
                while let Some((id, _)) = read_echo(&mut g.rx) {
                    assert_eq!(id, received);
                    received += 1;
                }
                if g.rx.commit().unwrap() {
                    // The VSP asked for room: the guest signals it back.
                    r.guest_signal().unwrap();
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    g.tx.commit().unwrap();
    for _ in 0..10 {
        r.guest_signal().unwrap();
        while let Some((id, _)) = read_echo(&mut g.rx) {
            assert_eq!(id, received);
            received += 1;
        }
        if !g.rx.commit().unwrap() && received == 20 {
            break;
        }
    }
    assert_eq!(received, 20);
    assert_eq!(r.s.pd.stats.broken_rings, 0);
}

#[test]
fn non_confidential_rings_may_live_in_shared_memory_confidential_ones_may_not() {
    let mut r = Rig::new();
    let mut g = r.open_channel(SHARED_PFN + 2, false);
    assert!(r
        .s
        .kernel
        .record
        .console
        .contains("non-confidential ring in shared memory"));
    assert!(r.s.kernel.record.console.contains("hypervisor-relay SynIC"));
    g.tx.write_packet(&in_band(1), &[b"shared"]).unwrap();
    assert!(g.tx.commit().unwrap());
    r.guest_signal().unwrap();
    assert_eq!(read_echo(&mut g.rx).unwrap().0, 1);
    assert_eq!(r.s.kernel.route.signals[0].0.instance, Instance::HYPERVISOR);

    let mut r = Rig::new();
    let pfns: Vec<u64> = (SHARED_PFN..SHARED_PFN + 8).collect();
    assert_eq!(r.map(1, &pfns, true), STATUS_SUCCESS);
    assert_eq!(r.open(1, 4, true), STATUS_INVALID_PARAMETER);
    assert!(
        r.s.kernel.route.registered.is_empty(),
        "nothing claimed for a refused open"
    );
}

#[test]
fn opens_that_name_bad_rings_are_refused() {
    let mut r = Rig::new();
    assert_eq!(
        r.open(1, 4, false),
        STATUS_INVALID_PARAMETER,
        "no such GPADL"
    );
    let straddling: Vec<u64> = (RAM_PAGES as u64 - 4..RAM_PAGES as u64 + 4).collect();
    assert_eq!(r.map(2, &straddling, false), STATUS_SUCCESS);
    assert_eq!(r.open(2, 4, false), STATUS_INVALID_PARAMETER, "outside RAM");
    let mixed: Vec<u64> = (0x10..0x14).chain(SHARED_PFN..SHARED_PFN + 4).collect();
    assert_eq!(r.map(3, &mixed, false), STATUS_SUCCESS);
    assert_eq!(r.open(3, 4, false), STATUS_INVALID_PARAMETER, "two windows");
    let fine: Vec<u64> = (0x10..0x18).collect();
    assert_eq!(r.map(4, &fine, false), STATUS_SUCCESS);
    assert_eq!(r.map(4, &fine, false), STATUS_INVALID_PARAMETER, "twice");
    for split in [0, 1, 7, 8, 100] {
        assert_eq!(r.open(4, split, false), STATUS_INVALID_PARAMETER, "{split}");
    }
    r.s.kernel.route.refuse_registration = true;
    assert_eq!(r.open(4, 4, false), STATUS_UNSUCCESSFUL);
    r.s.kernel.route.refuse_registration = false;
    assert_eq!(r.open(4, 4, false), STATUS_SUCCESS);
    assert_eq!(
        r.open(4, 4, false),
        STATUS_INVALID_PARAMETER,
        "already open"
    );
    // Tearing down the ring GPADL under an open channel closes it.
    r.s.call(|mrs| {
        mrs.set(0, RELID.0.into());
        mrs.set(1, 4);
        MessageInfo::new(vsp::label::UNMAP_GPADL, 2)
    });
    assert_eq!(r.s.pd.open_channels().count(), 0);
    assert_eq!(r.s.kernel.route.unregistered, [CONNECTION]);
}

#[test]
fn gpadl_lists_beyond_the_limits_are_refused() {
    let mut r = Rig::new();
    let map = |words, range_count| MapGpadl {
        relid: RELID,
        gpadl: GpadlId(9),
        range_count,
        words,
        confidentiality: Confidentiality::NONE,
    };
    let m = map(10_000, 1);
    assert_eq!(
        r.s.status(|mrs| m.encode(mrs)),
        STATUS_INSUFFICIENT_RESOURCES
    );
    // Garbage in the window: a range header claiming more pages than follow.
    vsp::write_window(
        &r.s.window,
        [gpa::range_header(40 * 4096, 0), 1, 2].into_iter(),
    )
    .unwrap();
    let m = map(3, 1);
    assert_eq!(r.s.status(|mrs| m.encode(mrs)), STATUS_INVALID_PARAMETER);
    for i in 0..vmbus_device::MAX_GPADLS as u32 {
        assert_eq!(r.map(100 + i, &[1, 2], false), STATUS_SUCCESS);
    }
    assert_eq!(r.map(999, &[1, 2], false), STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(r.s.pd.gpadl_count(), vmbus_device::MAX_GPADLS);
}

#[test]
fn a_ring_with_lying_indices_is_dropped_and_the_pd_keeps_serving() {
    let mut r = Rig::new();
    let g = r.open_channel(0x10, true);
    // The guest publishes a write index past the end of its data area.
    vmbus_ring::RingMem::control(g.tx.mem())
        .write_index()
        .store(0x7fff_fff8, core::sync::atomic::Ordering::SeqCst);
    r.guest_signal().unwrap();
    assert_eq!(r.s.pd.stats.broken_rings, 1);
    assert_eq!(r.s.pd.open_channels().count(), 0);
    assert_eq!(r.s.kernel.route.unregistered, [CONNECTION]);
    assert!(
        r.s.kernel.record.console.contains("ring broken"),
        "{}",
        r.s.kernel.record.console
    );
    r.guest_signal().unwrap();
    // The guest closes, rebuilds its rings and reopens: served again.
    r.s.call(|mrs| {
        mrs.set(0, RELID.0.into());
        mrs.set(1, 7);
        MessageInfo::new(vsp::label::UNMAP_GPADL, 2)
    });
    let mut g = r.open_channel(0x20, true);
    g.tx.write_packet(&in_band(42), &[b"again"]).unwrap();
    assert!(g.tx.commit().unwrap());
    r.guest_signal().unwrap();
    assert_eq!(read_echo(&mut g.rx).unwrap().0, 42);
}

#[test]
fn calls_and_notifications_outside_the_roles_are_refused() {
    let mut r = Rig::new();
    let mut mrs = MessageRegisters::new();
    assert_eq!(
        r.s.pd
            .protected(
                &mut r.s.kernel,
                PpCall::new(HVCALL, MessageInfo::new(vsp::label::GET_OFFER, 1), &mut mrs)
            )
            .unwrap_err(),
        HandlerError::UnexpectedCall(HVCALL)
    );
    assert!(matches!(
        r.s.pd.protected(
            &mut r.s.kernel,
            PpCall::new(VMBUS, MessageInfo::new(0x9999, 3), &mut mrs)
        ),
        Err(HandlerError::BadRequest { .. })
    ));
    assert_eq!(
        r.s.pd
            .notified(&mut r.s.kernel, ChannelSet::from_iter([SYNIC]))
            .unwrap_err(),
        HandlerError::UnexpectedNotification(SYNIC)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the guest scribbles over its rings' control pages and data, the PD
    /// never panics, and a ring it keeps serving still echoes in order.
    #[test]
    fn scribbled_rings_never_panic(
        writes in proptest::collection::vec((0usize..8 * 4096, any::<u64>()), 0..64),
        packets in 0usize..6,
    ) {
        let mut r = Rig::new();
        let mut g = r.open_channel(0x10, true);
        for i in 0..packets as u64 {
            g.tx.write_packet(&in_band(i), &[b"x"]).unwrap();
        }
        let _ = g.tx.commit();
        for (offset, value) in writes {
            let at = (0x10 * 4096 + offset) & !7;
            r.ram.write(at, &value).unwrap();
        }
        r.guest_signal().unwrap();
        r.guest_signal().unwrap();
        prop_assert!(r.s.pd.stats.broken_rings <= 1);
    }

    /// vmbus-server is a peer too: any register contents on any label decode to an
    /// error or a request the PD handles without panicking.
    #[test]
    fn arbitrary_calls_never_panic(
        label in prop_oneof![0x5601u64..0x5607, any::<u64>()],
        count in 0usize..32,
        regs in proptest::collection::vec(any::<u64>(), 32),
        window in proptest::collection::vec(any::<u64>(), 0..64),
    ) {
        let mut r = Rig::new();
        vsp::write_window(&r.s.window, window.into_iter()).unwrap();
        let mut mrs = MessageRegisters::new();
        for (i, v) in regs.iter().enumerate() {
            mrs.set(i, *v);
        }
        let _ = r.s.pd.protected(&mut r.s.kernel, PpCall::new(VMBUS, MessageInfo::new(label, count), &mut mrs));
        r.guest_signal().unwrap();
    }
}

#[test]
fn the_offer_guids_keep_their_values() {
    let tail = [0x65, 0x63, 0x68, 0x6f, 0, 0, 0, 1];
    for (guid, data1) in [
        (pd::INTERFACE_ID, 0xec40_0000),
        (pd::INSTANCE_ID, 0xec40_0001),
    ] {
        let fields = (guid.data1, guid.data2, guid.data3, guid.data4);
        assert_eq!(fields, (data1, 0x7673, 0x7000, tail), "{data1:#x}");
    }
}
