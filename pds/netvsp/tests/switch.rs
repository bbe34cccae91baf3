//! Two guests on the in-memory switch, each with its own NIC and driver, send
//! each other frames both ways at once: every frame arrives exactly once, in
//! order, and a third guest only sees the broadcasts.

#![allow(clippy::unwrap_used)]

use netvsp::backend::switch::Switch;
use netvsp::testing::{self, Client, GuestLayout, Host};
use netvsp::Config;
use netvsp_protocol::nvsp::Version;

const MACS: [[u8; 6]; 3] = [
    [0x00, 0x15, 0x5d, 0, 0, 0xa],
    [0x00, 0x15, 0x5d, 0, 0, 0xb],
    [0x00, 0x15, 0x5d, 0, 0, 0xc],
];

struct Guest {
    host: Host,
    client: Client,
    next_seq: u32,
    received: Vec<Vec<u8>>,
}

fn guest(switch: &Switch, mac: [u8; 6]) -> Guest {
    let (mut host, mut client) = testing::guest(
        GuestLayout::new(32, 16),
        Config::new(mac),
        Box::new(switch.port()),
    );
    client.bring_up(Version::V61, &mut host.pump()).unwrap();
    Guest {
        host,
        client,
        next_seq: 0,
        received: Vec::new(),
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], seq: u32) -> Vec<u8> {
    let mut f = [dst, src].concat();
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(60 + (seq as usize * 37) % 1400, src[5]);
    f
}

impl Guest {
    /// Sends what fits now, lets its host run, collects what arrived.
    fn step(&mut self, dst: [u8; 6], src: [u8; 6], total: u32) {
        while self.next_seq < total
            && self
                .client
                .send_frame(&frame(dst, src, self.next_seq))
                .unwrap()
        {
            self.next_seq += 1;
        }
        self.client.flush().unwrap();
        self.host.serve();
        self.client.poll().unwrap();
        while let Some(f) = self.client.receive_frame() {
            self.received.push(f);
        }
    }
}

#[test]
fn two_guests_exchange_frames_none_lost_or_duplicated() {
    const N: u32 = 3000;
    let switch = Switch::new();
    let mut a = guest(&switch, MACS[0]);
    let mut b = guest(&switch, MACS[1]);
    let mut c = guest(&switch, MACS[2]);
    // A's first frame is a broadcast, so B and C learn where A is (and C sees it).
    a.client
        .send_frame(&frame([0xff; 6], MACS[0], u32::MAX))
        .unwrap();
    let mut rounds = 0;
    while (a.received.len() as u32) < N || (b.received.len() as u32) < N + 1 {
        a.step(MACS[1], MACS[0], N);
        b.step(MACS[0], MACS[1], N);
        c.step(MACS[0], MACS[2], 0);
        rounds += 1;
        assert!(
            rounds < 100_000,
            "stuck: a {} b {}",
            a.received.len(),
            b.received.len()
        );
    }
    let want = |dst, src| (0..N).map(|s| frame(dst, src, s)).collect::<Vec<_>>();
    assert_eq!(b.received[0], frame([0xff; 6], MACS[0], u32::MAX));
    assert!(
        b.received[1..] == want(MACS[1], MACS[0]),
        "B got A's frames in order, once"
    );
    assert!(
        a.received == want(MACS[0], MACS[1]),
        "A got B's frames in order, once"
    );
    assert_eq!(c.received, vec![frame([0xff; 6], MACS[0], u32::MAX)]);
    assert_eq!(switch.dropped(), 0);
    for g in [&a, &b] {
        assert_eq!(g.host.nic.stats.bad_messages, 0);
        assert_eq!(g.client.tx_refused, 0);
    }
}

#[test]
fn frames_for_a_guest_that_is_not_up_are_dropped_not_queued() {
    let switch = Switch::new();
    let mut a = guest(&switch, MACS[0]);
    // B's NIC exists but its driver never brought it up.
    let (mut b_host, _b_client) = testing::guest(
        GuestLayout::new(8, 4),
        Config::new(MACS[1]),
        Box::new(switch.port()),
    );
    for _ in 0..10 {
        a.step(MACS[1], MACS[0], 5);
    }
    b_host.serve();
    assert_eq!(b_host.nic.stats.rx_frames, 0);
    assert_eq!(b_host.nic.stats.rx_filtered, 5);
}
