//! Two netvsp PDs on the VMBus device layer (`VspPd`), driven through
//! `ipc::Handler` as vmbus-server, hvcall-pd and synic-pd would: each guest maps
//! Linux-sized GPADLs (a 258-page ring, over the layer's default 256-page limit),
//! opens the channel, brings the NIC up in Linux's order with netvsc-client, and
//! the two exchange frames through a pair of shared-memory frame queues whose
//! notifications the test carries between the PDs. Every frame arrives once.

#![allow(clippy::unwrap_used)]

use ipc::testing::{leaked_region, FakeInit, RoutingKernel};
use ipc::{Channel, ChannelSet, Handler, Perms, Region};
use netvsc_client::{Buffer, Layout, Netvsc};
use netvsp::backend::queue::QueueBackend;
use netvsp::vsp::{self, NetvspPd, Setup};
use netvsp_protocol::nvsp::Version;
use vmbus_device::names;
use vmbus_protocol::status::STATUS_SUCCESS;
use vmbus_protocol::{GpadlId, Guid, Relid};
use vmbus_ring::{GpadlRingMem, IncomingRing, OutgoingRing, RingMem, PAGE_SIZE};
use vsp_api::{Confidentiality, VspOpen};
use vsp_test_util::{Peers, VmbusServer};

const VMBUS: Channel = Channel::new(0);
const HVCALL: Channel = Channel::new(1);
const SYNIC: Channel = Channel::new(2);
const WIRE: Channel = Channel::new(3);
const RELID: Relid = Relid(9);
/// Linux's ring: 128 data pages and a control page each way.
const RING_HALF: usize = 129;
const RECEIVE: (usize, usize) = (2 * RING_HALF + 1, 64);
const SEND: (usize, usize) = (RECEIVE.0 + RECEIVE.1, 32);
const RAM_PAGES: usize = SEND.0 + SEND.1;
const QUEUE_SLOTS: u32 = 256;

struct Side {
    s: VmbusServer<NetvspPd>,
    ram: Region<'static>,
}

type Client = Netvsc<'static, GpadlRingMem<'static, Vec<u64>>>;

impl Side {
    fn new(mac: [u8; 6], tx: Region<'static>, rx: Region<'static>) -> Self {
        let ram = leaked_region(RAM_PAGES * PAGE_SIZE);
        let window = leaked_region(4 * PAGE_SIZE);
        let init = FakeInit::new("netvsp")
            .region(names::GUEST_RAM, ram)
            .region(names::GPADL_WINDOW, window.restrict(Perms::R))
            .variable(names::VMBUS_CHANNEL, VMBUS.index().into())
            .variable(names::HVCALL_CHANNEL, HVCALL.index().into())
            .variable(names::SYNIC_CHANNEL, SYNIC.index().into())
            .variable(names::GUEST_RAM_GPA, 0);
        let setup = Setup {
            instance: Guid::from_fields(
                1,
                2,
                3,
                mac.map(|b| b ^ 0x5a).repeat(2)[..8].try_into().unwrap(),
            ),
            mac,
            backend: Box::new(QueueBackend::new(tx, rx, QUEUE_SLOTS).unwrap()),
            backend_channel: Some(WIRE),
        };
        Self {
            s: VmbusServer {
                pd: vsp::init(&init, setup).unwrap(),
                kernel: RoutingKernel::new(Peers::new(HVCALL, SYNIC)),
                vmbus: VMBUS,
                window,
            },
            ram,
        }
    }

    fn map(&mut self, id: u32, (first, n): (usize, usize)) -> u32 {
        let pfns: Vec<u64> = (first..first + n).map(|p| p as u64).collect();
        self.s.map(RELID, id, &pfns, Confidentiality::NONE)
    }

    /// The guest's part of bringing the channel up, then NVSP/RNDIS in Linux's order.
    fn bring_up(&mut self) -> Client {
        let offer = self.s.offer(0).unwrap();
        assert_eq!(offer.interface_id, vmbus_protocol::ids::interface::NETWORK);
        let ring = |first: usize| {
            let m = GpadlRingMem::new(
                self.ram,
                (first as u64..(first + RING_HALF) as u64).collect(),
            )
            .unwrap();
            m.control().initialize();
            m
        };
        let (out, inp) = (ring(0), ring(RING_HALF));
        assert_eq!(
            self.map(1, (0, 2 * RING_HALF)),
            STATUS_SUCCESS,
            "a 258-page ring"
        );
        assert_eq!(self.map(2, RECEIVE), STATUS_SUCCESS);
        assert_eq!(self.map(3, SEND), STATUS_SUCCESS);
        let open = VspOpen {
            relid: RELID,
            open_id: 1,
            ring_gpadl: GpadlId(1),
            downstream_page_offset: RING_HALF as u32,
            target_vp: 0,
            target_sint: 2,
            paravisor_synic: false,
            confidentiality: Confidentiality::NONE,
            signal_connection_id: 0x2009,
            event_flag: RELID.0,
            version: vmbus_protocol::Version::WIN10_V5_3,
            user_data: [0; 120],
        };
        assert_eq!(self.s.status(|mrs| open.encode(mrs)), STATUS_SUCCESS);
        let buffer = |(first, n): (usize, usize), gpadl| Buffer {
            offset: first * PAGE_SIZE,
            len: n * PAGE_SIZE,
            gpadl,
        };
        let layout = Layout {
            ram: self.ram,
            base_pfn: 0,
            receive: buffer(RECEIVE, 2),
            send: buffer(SEND, 3),
            control_page: 2 * RING_HALF * PAGE_SIZE,
        };
        let mut client = Netvsc::new(
            OutgoingRing::new(out).unwrap(),
            IncomingRing::new(inp).unwrap(),
            layout,
        );
        let (pd, kernel) = (&mut self.s.pd, &mut self.s.kernel);
        client
            .bring_up(Version::V61, &mut || {
                pd.notified(kernel, ChannelSet::from_iter([HVCALL]))
                    .unwrap()
            })
            .unwrap();
        client
    }

    /// Serves on a guest signal; returns whether the wire peer was notified.
    fn serve(&mut self, on: Channel) -> bool {
        self.s.kernel.record.notified.clear();
        self.s
            .pd
            .notified(&mut self.s.kernel, ChannelSet::from_iter([on]))
            .unwrap();
        self.s.kernel.record.notified.contains(&WIRE)
    }
}

fn frame(src: u8, dst: u8, seq: u32) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x15, 0x5d, 0, 0, dst, 0x00, 0x15, 0x5d, 0, 0, src, 0x88, 0xb5,
    ];
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(60 + (seq as usize * 53) % 1450, src);
    f
}

#[test]
fn two_pds_bring_linux_sized_nics_up_and_exchange_every_frame_once() {
    let size = QueueBackend::region_size(QUEUE_SLOTS).unwrap();
    let (ab, ba) = (leaked_region(size), leaked_region(size));
    let macs = [0xa, 0xb];
    let mut sides = [
        Side::new([0, 0x15, 0x5d, 0, 0, macs[0]], ab, ba),
        Side::new([0, 0x15, 0x5d, 0, 0, macs[1]], ba, ab),
    ];
    let mut clients = [sides[0].bring_up(), sides[1].bring_up()];
    const FRAMES: u32 = 3000;
    let mut sent = [0u32; 2];
    let mut got: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut wake = [false; 2];
    let mut wire_serves = 0;
    for _round in 0..100_000 {
        for i in 0..2 {
            while sent[i] < FRAMES
                && clients[i]
                    .send_frame(&frame(macs[i], macs[1 - i], sent[i]))
                    .unwrap()
            {
                sent[i] += 1;
            }
            clients[i].flush().unwrap();
            // The guest signals; the wire's notification from the other side comes
            // in as the backend channel's.
            let on = if std::mem::take(&mut wake[i]) {
                wire_serves += 1;
                WIRE
            } else {
                HVCALL
            };
            wake[1 - i] |= sides[i].serve(on);
            clients[i].poll().unwrap();
            while let Some(f) = clients[i].receive_frame() {
                got[i].push(f);
            }
        }
        if got.iter().all(|g| g.len() == FRAMES as usize) {
            break;
        }
    }
    for i in 0..2 {
        let want: Vec<Vec<u8>> = (0..FRAMES)
            .map(|s| frame(macs[1 - i], macs[i], s))
            .collect();
        assert_eq!(got[i].len(), want.len(), "side {i}");
        assert!(
            got[i] == want,
            "side {i}: frames out of order, changed or duplicated"
        );
        assert_eq!(sides[i].s.pd.stats.broken_rings, 0);
        assert_eq!(sides[i].s.pd.device().frames_to_guest, u64::from(FRAMES));
    }
    assert!(
        wire_serves > 0,
        "the queue protocol never asked for a wake-up"
    );
    // The device's own channel is the only extra notification it takes.
    assert!(sides[0]
        .s
        .pd
        .notified(
            &mut sides[0].s.kernel,
            ChannelSet::from_iter([Channel::new(7)])
        )
        .is_err());
}

#[test]
fn a_receiver_that_is_not_served_slows_the_sender_and_loses_nothing() {
    // A small wire: its queues fill long before the sender runs out of frames.
    let size = QueueBackend::region_size(QUEUE_SLOTS).unwrap();
    let (ab, ba) = (leaked_region(size), leaked_region(size));
    let mut a = Side::new([0, 0x15, 0x5d, 0, 0, 0xa], ab, ba);
    let mut b = Side::new([0, 0x15, 0x5d, 0, 0, 0xb], ba, ab);
    let (mut ca, mut cb) = (a.bring_up(), b.bring_up());
    const FRAMES: u32 = 2000;
    let mut sent = 0;
    // Only A runs: the queue to B fills, then A's NIC leaves the guest's packets
    // in its ring, then the guest's sends stop fitting.
    for _ in 0..200 {
        while sent < FRAMES && ca.send_frame(&frame(0xa, 0xb, sent)).unwrap() {
            sent += 1;
        }
        ca.flush().unwrap();
        a.serve(HVCALL);
        ca.poll().unwrap();
    }
    assert!(sent < FRAMES, "the sender was never held back");
    let held = sent;
    let nic = |s: &Side| s.s.pd.device().nic(RELID).unwrap().rndis().counters;
    assert_eq!(nic(&a).xmit_error, 0, "frames were dropped, not held");
    // B runs now; its draining wakes A (the queue's producer asked to be), and
    // everything arrives.
    let mut got = Vec::new();
    let mut wake_a = false;
    for _ in 0..100_000 {
        let woke_b = b.serve(HVCALL);
        assert!(!woke_b || got.len() < FRAMES as usize);
        wake_a |= b.s.kernel.record.notified.contains(&WIRE);
        cb.poll().unwrap();
        cb.flush().unwrap();
        while let Some(f) = cb.receive_frame() {
            got.push(f);
        }
        if std::mem::take(&mut wake_a) {
            a.serve(WIRE);
        }
        while sent < FRAMES && ca.send_frame(&frame(0xa, 0xb, sent)).unwrap() {
            sent += 1;
        }
        ca.flush().unwrap();
        a.serve(HVCALL);
        ca.poll().unwrap();
        if got.len() == FRAMES as usize {
            break;
        }
    }
    let want: Vec<Vec<u8>> = (0..FRAMES).map(|s| frame(0xa, 0xb, s)).collect();
    assert!(
        got == want,
        "{} of {FRAMES} frames, {held} sent before B ran",
        got.len()
    );
    assert_eq!(nic(&a).xmit_error, 0);
}
