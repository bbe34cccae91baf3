//! A guest NIC on a TAP device, inside a network namespace this test creates (so
//! nothing it sends can reach a real network): the host kernel's stack on the
//! other side answers the guest's ARP request and ping. Needs root (CI runs as
//! root); skipped with the reason printed otherwise.

#![allow(clippy::unwrap_used)]
// unshare(2) to enter a fresh network namespace.
#![allow(unsafe_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use netvsp::backend::tap::Tap;
use netvsp::testing::{self, Client, GuestLayout, Host};
use netvsp::Config;
use netvsp_protocol::nvsp::Version;

const GUEST_MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x77, 0x00, 0x02];
const GUEST_IP: [u8; 4] = [10, 77, 0, 2];
const HOST_IP: [u8; 4] = [10, 77, 0, 1];

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn arp_request() -> Vec<u8> {
    let mut f = [[0xff; 6], GUEST_MAC].concat();
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&HOST_IP);
    f
}

fn ping(dst_mac: [u8; 6], seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"netvsp ping payload");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 1, 0, 0];
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&GUEST_IP);
    ip.extend_from_slice(&HOST_IP);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = [dst_mac, GUEST_MAC].concat();
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

/// Sends `frame`, then runs the NIC until a received frame satisfies `want`.
fn exchange(
    host: &mut Host,
    c: &mut Client,
    frame: &[u8],
    want: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    assert!(c.send_frame(frame).unwrap());
    c.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        host.serve();
        c.poll().unwrap();
        while let Some(f) = c.receive_frame() {
            if want(&f) {
                return f;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no answer from the host stack");
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

fn in_namespace() {
    let tap = Tap::open("nvsp0").unwrap();
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", "10.77.0.1/24", "dev", tap.name()]);
    ip(&["link", "set", tap.name(), "up"]);
    let (mut host, mut c) = testing::guest(
        GuestLayout::new(16, 8),
        Config::new(GUEST_MAC),
        Box::new(tap),
    );
    c.bring_up(Version::V61, &mut host.pump()).unwrap();

    let reply = exchange(&mut host, &mut c, &arp_request(), |f| {
        f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2]
    });
    assert_eq!(reply[0..6], GUEST_MAC, "ARP reply addressed to the guest");
    assert_eq!(reply[28..32], HOST_IP);
    let host_mac: [u8; 6] = reply[22..28].try_into().unwrap();

    for seq in 0..3 {
        let echo = exchange(&mut host, &mut c, &ping(host_mac, seq), |f| {
            f.len() >= 42 && f[12..14] == [0x08, 0x00] && f[23] == 1 && f[34] == 0
        });
        assert_eq!(echo[26..30], HOST_IP);
        assert_eq!(echo[40..42], seq.to_be_bytes(), "echo reply {seq}");
    }
    assert_eq!(host.nic.stats.bad_messages, 0);
}

#[test]
fn guest_reaches_the_host_stack_through_a_tap_in_its_own_namespace() {
    let t = std::thread::spawn(|| {
        // SAFETY: unshare takes flags only; CLONE_NEWNET moves this thread alone
        // into a new network namespace, which dies with the test.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let e = std::io::Error::last_os_error();
            println!("skipped: cannot create a network namespace ({e}); needs root");
            return;
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            println!("skipped: no /dev/net/tun");
            return;
        }
        in_namespace();
    });
    t.join().unwrap();
}
