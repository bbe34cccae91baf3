//! Two netvsp PDs on the VMBus device layer (`VspPd`), driven through
//! `ipc::Handler` as vmbus-server, hvcall-pd and synic-pd would: each guest maps
//! Linux-sized GPADLs (a 258-page ring, over the layer's default 256-page limit),
//! opens the channel, brings the NIC up in Linux's order with netvsc-client, and
//! the two exchange frames through a pair of shared-memory frame queues whose
//! notifications the test carries between the PDs. Every frame arrives once.
//!
//! vRSS: a guest asks for 4 sub-channels, the PD offers them (same interface and
//! instance, indices 1 to 4) and tells vmbus-server, the guest opens each on its
//! own ring, sets Linux's RSS parameters, and every frame of many flows comes
//! back (a loopback wire) on the channel the test's own Toeplitz hash picks.

#![allow(clippy::unwrap_used)]

use ipc::testing::{leaked_region, FakeInit, RoutingKernel};
use ipc::{Channel, ChannelSet, Handler, Perms, Region};
use netvsc_client::flows::{self, flow, KEY};
use netvsc_client::{Buffer, Layout, Netvsc};
use netvsp::backend::queue::QueueBackend;
use netvsp::backend::{Backend, Loopback};
use netvsp::vsp::{self, NetvspPd, Setup};
use netvsp_protocol::nvsp::Version;
use netvsp_protocol::oid::{self, hash};
use netvsp_protocol::rndis;
use vmbus_device::names;
use vmbus_protocol::status::{STATUS_INVALID_PARAMETER, STATUS_SUCCESS};
use vmbus_protocol::{GpadlId, Guid, Relid};
use vmbus_ring::{GpadlRingMem, IncomingRing, OutgoingRing, RingMem, PAGE_SIZE};
use vsp_api::{CloseChannel, Confidentiality, VspOpen};
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
/// Sub-channel rings: smaller than Linux's (the protocol does not care), one
/// control and 8 data pages each way, after the buffers.
const SUB_RING_HALF: usize = 9;
const MAX_SUBS: usize = 7;
const SUB_RINGS: usize = SEND.0 + SEND.1;
const RAM_PAGES: usize = SUB_RINGS + MAX_SUBS * 2 * SUB_RING_HALF;
const QUEUE_SLOTS: u32 = 256;

struct Side {
    s: VmbusServer<NetvspPd>,
    ram: Region<'static>,
}

type Client = Netvsc<'static, Ring>;

type Ring = GpadlRingMem<'static, Vec<u64>>;

/// The guest's rings over `half` pages each way from page `first`, initialized.
fn rings(
    ram: Region<'static>,
    first: usize,
    half: usize,
) -> (OutgoingRing<Ring>, IncomingRing<Ring>) {
    let mem = |first: usize| {
        let m = GpadlRingMem::new(ram, (first as u64..(first + half) as u64).collect()).unwrap();
        m.control().initialize();
        m
    };
    (
        OutgoingRing::new(mem(first)).unwrap(),
        IncomingRing::new(mem(first + half)).unwrap(),
    )
}

/// vmbus-server's OPEN of `relid` on ring GPADL `gpadl` split at `half`.
fn open_request(relid: Relid, subchannel_index: u16, gpadl: u32, half: usize) -> VspOpen {
    VspOpen {
        relid,
        subchannel_index,
        open_id: relid.0,
        ring_gpadl: GpadlId(gpadl),
        downstream_page_offset: half as u32,
        target_vp: 0,
        target_sint: 2,
        paravisor_synic: false,
        confidentiality: Confidentiality::NONE,
        signal_connection_id: 0x2000 + relid.0,
        event_flag: relid.0,
        version: vmbus_protocol::Version::WIN10_V5_3,
        user_data: [0; 120],
    }
}

impl Side {
    fn new(mac: [u8; 6], tx: Region<'static>, rx: Region<'static>) -> Self {
        let wire = QueueBackend::new(tx, rx, QUEUE_SLOTS).unwrap();
        Self::with(mac, Box::new(wire), Some(WIRE))
    }

    fn with(mac: [u8; 6], backend: Box<dyn Backend>, backend_channel: Option<Channel>) -> Self {
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
            backend,
            backend_channel,
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
        let (out, inp) = rings(self.ram, 0, RING_HALF);
        assert_eq!(
            self.map(1, (0, 2 * RING_HALF)),
            STATUS_SUCCESS,
            "a 258-page ring"
        );
        assert_eq!(self.map(2, RECEIVE), STATUS_SUCCESS);
        assert_eq!(self.map(3, SEND), STATUS_SUCCESS);
        let open = open_request(RELID, 0, 1, RING_HALF);
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
        let mut client = Netvsc::new(out, inp, layout);
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

#[test]
fn vrss_subchannels_are_offered_opened_and_get_the_frames_their_hash_picks() {
    let mac = [0, 0x15, 0x5d, 0, 0, 0xc];
    let mut side = Side::with(mac, Box::new(Loopback::new(4096)), None);
    let mut client = side.bring_up();
    side.s.kernel.record.notified.clear();
    let (pd, kernel) = (&mut side.s.pd, &mut side.s.kernel);
    let mut pump = || {
        pd.notified(kernel, ChannelSet::from_iter([HVCALL]))
            .unwrap()
    };
    assert_eq!(client.request_subchannels(4, &mut pump), Ok(4));
    let notified = side.s.kernel.record.notified.clone();
    assert!(
        notified.contains(&VMBUS),
        "vmbus-server is told the offers changed"
    );
    let primary = side.s.offer(0).unwrap();
    for index in 1..=4u16 {
        let sub = side.s.offer(usize::from(index)).unwrap();
        assert_eq!(
            (sub.interface_id, sub.instance_id, sub.subchannel_index),
            (primary.interface_id, primary.instance_id, index)
        );
    }
    assert_eq!(side.s.offer(5), None);
    // Each sub-channel: its own ring GPADL and OPEN, as Linux's netvsc_sc_open.
    let sub_relid = |index: u16| Relid(20 + u32::from(index));
    for index in 1..=4u16 {
        let relid = sub_relid(index);
        let first = SUB_RINGS + usize::from(index - 1) * 2 * SUB_RING_HALF;
        let pfns: Vec<u64> = (first as u64..(first + 2 * SUB_RING_HALF) as u64).collect();
        let gpadl = 10 + u32::from(index);
        assert_eq!(
            side.s.map(relid, gpadl, &pfns, Confidentiality::NONE),
            STATUS_SUCCESS
        );
        let open = open_request(relid, index, gpadl, SUB_RING_HALF);
        assert_eq!(side.s.status(|mrs| open.encode(mrs)), STATUS_SUCCESS);
        let (out, inp) = rings(side.ram, first, SUB_RING_HALF);
        client.attach_subchannel(index, out, inp).unwrap();
        assert_eq!(side.s.pd.device().queue_of(relid), Some(usize::from(index)));
    }
    // Indices never granted, or taken, are refused.
    for (relid, index) in [(Relid(40), 5), (Relid(41), 2)] {
        let pfns: Vec<u64> = (0..4).collect();
        side.s
            .map(relid, 50 + relid.0, &pfns, Confidentiality::NONE);
        let open = open_request(relid, index, 50 + relid.0, 2);
        assert_eq!(
            side.s.status(|mrs| open.encode(mrs)),
            STATUS_INVALID_PARAMETER
        );
    }

    let (pd, kernel) = (&mut side.s.pd, &mut side.s.kernel);
    let mut pump = || {
        pd.notified(kernel, ChannelSet::from_iter([HVCALL]))
            .unwrap()
    };
    let table: Vec<u32> = (0..128).map(|i| i % 5).collect();
    let types = hash::IPV4 | hash::TCP_IPV4 | hash::UDP_IPV4;
    let types = types | hash::IPV6 | hash::TCP_IPV6 | hash::UDP_IPV6;
    // A table naming a channel the NIC cannot have is refused, and changes nothing.
    let bad: Vec<u32> = (0..128).map(|i| if i == 77 { 8 } else { 0 }).collect();
    let refused = client.set_rss(&bad, &KEY, types, &mut pump);
    assert_eq!(refused, Ok(rndis::Status::INVALID_DATA));
    let truncated = client.set_status(
        oid::Oid::GEN_RECEIVE_SCALE_PARAMETERS,
        &[0x89, 2],
        &mut pump,
    );
    assert_eq!(truncated, Ok(rndis::Status::INVALID_LENGTH));
    assert_eq!(
        client.set_rss(&table, &KEY, types, &mut pump),
        Ok(rndis::Status::SUCCESS)
    );

    const FLOWS: u32 = 200;
    let mut want = std::collections::BTreeMap::new();
    for n in 0..FLOWS {
        let (f, input) = flow(mac, n);
        let channel = flows::channel_of(&input, &table) as u16;
        want.insert(f.clone(), channel);
        // Sends go out on whichever channel, as Linux's transmit queues pick.
        while !client.send_frame_on((n % 5) as u16, &f).unwrap() {
            client.flush().unwrap();
            pump();
            client.poll().unwrap();
        }
    }
    let mut arp = [mac, [0x00, 0x15, 0x5d, 9, 9, 9]].concat();
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.resize(60, 1);
    client.send_frame_on(3, &arp).unwrap();
    want.insert(arp, 0);
    client.flush().unwrap();
    let mut got = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        pump();
        client.poll().unwrap();
        client.flush().unwrap();
        while let Some((channel, f)) = client.receive_frame_on() {
            assert!(got.insert(f, channel).is_none(), "a frame came twice");
        }
        if got.len() == want.len() {
            break;
        }
    }
    assert_eq!(got.len(), want.len(), "every frame came back");
    for (f, channel) in &want {
        assert_eq!(got.get(f), Some(channel), "frame {:02x?}", &f[..40]);
    }
    let mut per_channel = [0; 5];
    got.values().for_each(|&c| per_channel[usize::from(c)] += 1);
    assert!(per_channel.iter().all(|&n| n > 0), "{per_channel:?}");

    // A sub-channel that closes is no queue any more: its frames go to the primary.
    close(&mut side, sub_relid(2));
    assert_eq!(side.s.pd.device().queue_of(sub_relid(2)), None);
    client.detach_subchannel(2).unwrap();
    let (to_two, _) = (0..FLOWS)
        .map(|n| flow(mac, n))
        .find(|(f, _)| want.get(f) == Some(&2))
        .unwrap();
    client.send_frame_on(1, &to_two).unwrap();
    client.flush().unwrap();
    let (pd, kernel) = (&mut side.s.pd, &mut side.s.kernel);
    pd.notified(kernel, ChannelSet::from_iter([HVCALL]))
        .unwrap();
    client.poll().unwrap();
    assert_eq!(client.receive_frame_on(), Some((0, to_two)));
    // Closing the primary withdraws the sub-channel offers and tells vmbus-server.
    side.s.kernel.record.notified.clear();
    close(&mut side, RELID);
    assert_eq!(side.s.pd.device().subchannel_offers(), 0);
    assert_eq!(side.s.offer(1), None);
    assert!(side.s.kernel.record.notified.contains(&VMBUS));
    assert_eq!(side.s.pd.stats.broken_rings, 0);
}

/// vmbus-server's CLOSE of `relid`.
fn close(side: &mut Side, relid: Relid) {
    let (reply, _) = side.s.call(|mrs| CloseChannel { relid }.encode(mrs));
    assert_eq!(reply.label(), vsp_api::REPLY_OK);
}
