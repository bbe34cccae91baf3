use netvsp_protocol::oid::{hash, rss_flags};

use super::*;

/// The key of Microsoft's "Verifying the RSS Hash Calculation" (also Linux's
/// default netvsc key).
const KEY: [u8; KEY_SIZE] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Microsoft's tables, one row a packet: destination and its port, source and
/// its port, the address-only hash and the TCP hash.
const VECTORS: [(&str, u16, &str, u16, u32, u32); 8] = [
    (
        "161.142.100.80",
        1766,
        "66.9.149.187",
        2794,
        0x323e_8fc2,
        0x51cc_c178,
    ),
    (
        "65.69.140.83",
        4739,
        "199.92.111.2",
        14230,
        0xd718_262a,
        0xc626_b0ea,
    ),
    (
        "12.22.207.184",
        38024,
        "24.19.198.95",
        12898,
        0xd2d0_a5de,
        0x5c2b_394a,
    ),
    (
        "209.142.163.6",
        2217,
        "38.27.205.30",
        48228,
        0x8298_9176,
        0xafc7_327f,
    ),
    (
        "202.188.127.2",
        1303,
        "153.39.163.191",
        44251,
        0x5d18_09c5,
        0x10e8_28a2,
    ),
    (
        "3ffe:2501:200:3::1",
        1766,
        "3ffe:2501:200:1fff::7",
        2794,
        0x2cc1_8cd5,
        0x4020_7d3d,
    ),
    (
        "ff02::1",
        4739,
        "3ffe:501:8::260:97ff:fe40:efab",
        14230,
        0x0f0c_461c,
        0xdde5_1bbf,
    ),
    (
        "fe80::200:f8ff:fe21:67cf",
        38024,
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        44251,
        0x4b61_e985,
        0x02d1_feef,
    ),
];

/// An address's bytes, and the hash type of its IP version.
fn addr(text: &str) -> (Vec<u8>, u32) {
    match text.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => (a.octets().to_vec(), hash::IPV4),
        std::net::IpAddr::V6(a) => (a.octets().to_vec(), hash::IPV6),
    }
}

/// An Ethernet frame carrying an IP packet from `src` to `dst` with transport
/// `proto` and the two ports.
fn frame(src: &[u8], dst: &[u8], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = [[0x00, 0x15, 0x5d, 0, 0, 1], [0x00, 0x15, 0x5d, 0, 0, 2]].concat();
    if src.len() == 4 {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0]);
    } else {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, proto, 64]);
    }
    f.extend_from_slice(src);
    f.extend_from_slice(dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.resize(f.len() + 16, 0);
    f
}

fn hashed(frame: &[u8], types: u32) -> Option<u32> {
    let mut input = [0; 36];
    hash_input(frame, types, &mut input).map(|n| toeplitz(&KEY, &input[..n]))
}

#[test]
fn toeplitz_matches_microsofts_verification_vectors() {
    let all = hash::IPV4 | hash::TCP_IPV4 | hash::IPV6 | hash::TCP_IPV6;
    let udp = hash::UDP_IPV4 | hash::UDP_IPV6;
    for (dst, dport, src, sport, ip, tcp) in VECTORS {
        let ((dst, addr_type), (src, _)) = (addr(dst), addr(src));
        let tcp_frame = frame(&src, &dst, 6, sport, dport);
        assert_eq!(hashed(&tcp_frame, addr_type), Some(ip), "{dst:?}");
        assert_eq!(hashed(&tcp_frame, all), Some(tcp), "{dst:?}");
        // UDP hashes ports only when its type is on.
        let udp_frame = frame(&src, &dst, 17, sport, dport);
        assert_eq!(hashed(&udp_frame, all), Some(ip), "{dst:?}");
        assert_eq!(hashed(&udp_frame, all | udp), Some(tcp), "{dst:?}");
    }
}

#[test]
fn only_hashed_types_are_hashed() {
    let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let tcp_only = frame(&src, &dst, 6, 1, 2);
    assert_eq!(hashed(&tcp_only, hash::TCP_IPV6), None, "IPv4 off");
    assert_eq!(hashed(&frame(&src, &dst, 1, 0, 0), hash::TCP_IPV4), None);
    let mut arp = tcp_only.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(hashed(&arp, u32::MAX), None);
    // A later fragment hashes by address alone.
    let mut fragment = tcp_only.clone();
    fragment[20] = 0x00;
    fragment[21] = 0x10;
    assert_eq!(
        hashed(&fragment, hash::IPV4 | hash::TCP_IPV4),
        hashed(&tcp_only, hash::IPV4)
    );
    // A VLAN tag is looked through.
    let mut tagged = tcp_only[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    tagged.extend_from_slice(&tcp_only[12..]);
    assert_eq!(
        hashed(&tagged, hash::TCP_IPV4),
        hashed(&tcp_only, hash::TCP_IPV4)
    );
    // Runts and lies about the header length are not hashed, nor do they panic.
    for cut in 0..tcp_only.len() {
        let _ = hashed(&tcp_only[..cut], u32::MAX);
    }
    let mut short_ihl = tcp_only.clone();
    short_ihl[14] = 0x44;
    assert_eq!(hashed(&short_ihl, u32::MAX), None);
}

/// Linux's `rndis_set_rss_param_msg` with `types` hashed.
fn linux_params(table: &[u32], key: &[u8; KEY_SIZE], types: u32) -> Vec<u8> {
    let mut out = Vec::new();
    oid::rss_parameters(0, hash::TOEPLITZ | types, table, key, &mut out);
    out
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn malformed_parameters_are_refused_and_leave_the_last_good_setting() {
    let table: Vec<u32> = (0..128).map(|i| i % 4).collect();
    let good = linux_params(&table, &KEY, hash::IPV4 | hash::TCP_IPV4);
    let mut rss = Rss::default();
    rss.set(&good, 4).unwrap();
    let before = rss.clone();
    type Edit = fn(&mut Vec<u8>);
    let table: [(&str, Edit, RssError); 15] = [
        ("empty", |b| b.clear(), RssError::Truncated),
        ("fixed part cut", |b| b.truncate(39), RssError::Truncated),
        ("wrong type", |b| b[0] = 0x88, RssError::WrongObject),
        ("revision 0", |b| b[1] = 0, RssError::WrongObject),
        (
            "size past the end",
            |b| put16(b, 2, 4000),
            RssError::Truncated,
        ),
        (
            "size under the fixed part",
            |b| put16(b, 2, 8),
            RssError::WrongObject,
        ),
        (
            "not Toeplitz",
            |b| put32(b, 8, 2 | hash::IPV4),
            RssError::HashFunction,
        ),
        ("no table", |b| put16(b, 12, 0), RssError::TableSize),
        ("half an entry", |b| put16(b, 12, 6), RssError::TableSize),
        (
            "too many entries",
            |b| put16(b, 12, 4 * 257),
            RssError::TableSize,
        ),
        (
            "table over the header",
            |b| put32(b, 16, 8),
            RssError::Placement,
        ),
        (
            "table past the end",
            |b| put32(b, 16, u32::MAX - 2),
            RssError::Placement,
        ),
        (
            "entry past the channels",
            |b| put32(b, 40 + 4 * 7, 4),
            RssError::TableEntry(4),
        ),
        ("key of 16 bytes", |b| put16(b, 20, 16), RssError::KeySize),
        (
            "key past the end",
            |b| put32(b, 24, 40 + 512 + 1),
            RssError::Placement,
        ),
    ];
    for (what, edit, want) in table {
        let mut bytes = good.clone();
        edit(&mut bytes);
        assert_eq!(rss.set(&bytes, 4), Err(want), "{what}");
        assert_eq!(rss, before, "{what}: the good setting stays");
    }
    assert_eq!(RssError::Truncated.status(), Status::INVALID_LENGTH);
    assert_eq!(RssError::KeySize.status(), Status::INVALID_DATA);
    // "Unchanged" needs something to keep.
    let mut fresh = Rss::default();
    let mut keep_key = good.clone();
    put16(&mut keep_key, 4, rss_flags::HASH_KEY_UNCHANGED);
    assert_eq!(fresh.set(&keep_key, 4), Err(RssError::NothingToKeep));
    // With a setting in force, the table and key may be kept, and RSS turned off.
    let mut swap = linux_params(&[3, 2], &[0; KEY_SIZE], hash::IPV4);
    put16(&mut swap, 4, rss_flags::HASH_KEY_UNCHANGED);
    rss.set(&swap, 4).unwrap();
    assert_eq!(rss.table(), [3, 2]);
    let mut off = good.clone();
    put16(&mut off, 4, rss_flags::DISABLE_RSS);
    rss.set(&off, 4).unwrap();
    assert!(!rss.is_enabled());
    assert_eq!(rss.queue(&frame(&[1, 2, 3, 4], &[5, 6, 7, 8], 6, 1, 2)), 0);
}

#[test]
fn frames_go_to_the_entry_their_hash_picks() {
    let table: Vec<u32> = (0..128).map(|i| i % 5).collect();
    let mut rss = Rss::default();
    rss.set(
        &linux_params(&table, &KEY, hash::TCP_IPV4 | hash::TCP_IPV6),
        5,
    )
    .unwrap();
    for (dst, dport, src, sport, _, tcp) in VECTORS {
        let f = frame(&addr(src).0, &addr(dst).0, 6, sport, dport);
        assert_eq!(rss.queue(&f), table[tcp as usize % 128]);
    }
    assert_eq!(rss.queue(&[0xff; 60]), 0, "not IP: channel 0");
}
