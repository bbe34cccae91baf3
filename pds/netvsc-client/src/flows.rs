//! Test traffic for vRSS, from the guest's side: frames of many flows and the
//! channel each must arrive on, computed here from the definition of the
//! Toeplitz hash (bit by bit, apart from the host's own implementation), so a
//! test that checks arrivals against it checks the host's hashing too.

use alloc::vec::Vec;

/// Microsoft's RSS verification key, which Linux's netvsc also uses by default.
pub const KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key`: for every set input bit, the 32 key
/// bits from that bit's position on, XORed together.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let bit = |bytes: &[u8], i: usize| {
        bytes
            .get(i / 8)
            .map_or(0, |b| u32::from(b >> (7 - i % 8) & 1))
    };
    (0..input.len() * 8)
        .filter(|&i| bit(input, i) == 1)
        .map(|i| (0..32).fold(0u32, |w, j| w << 1 | bit(key, i + j)))
        .fold(0, |h, w| h ^ w)
}

/// Flow `n`'s frame to `mac`: IPv6 for every third, else IPv4; TCP for even
/// `n`, else UDP; addresses and ports from `n`. With it the hash input RSS takes
/// (source and destination address, source and destination port).
pub fn flow(mac: [u8; 6], n: u32) -> (Vec<u8>, Vec<u8>) {
    let b = n.to_be_bytes();
    let proto = if n.is_multiple_of(2) { 6 } else { 17 };
    let ports = [b[3], b[2] ^ 0x40, b[3] ^ 0x5a, 0x50];
    let mut f = [mac, [0x00, 0x15, 0x5d, 9, 9, 9]].concat();
    let addrs: Vec<u8> = if n.is_multiple_of(3) {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 24, proto, 64]);
        let (src, dst) = ([0xfd, 0, 0, 1], [0xfd, 0, 0, 2]);
        [src, [0; 4], [0; 4], b, dst, [0; 4], b, [0, 0, 0, 1]].concat()
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, proto, 0, 0]);
        [[10, b[1], b[2], b[3]], [192, 168, b[3], 7]].concat()
    };
    f.extend_from_slice(&addrs);
    f.extend_from_slice(&ports);
    f.resize(f.len() + 20, n as u8);
    (f, [addrs, ports.to_vec()].concat())
}

/// The channel flow `n` must arrive on under `table` (Linux's: entry `i` is
/// channel `i % channels`) and [`KEY`].
pub fn channel_of(input: &[u8], table: &[u32]) -> u32 {
    table
        .get(toeplitz(&KEY, input) as usize % table.len().max(1))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_matches_microsofts_first_vectors() {
        // 66.9.149.187:2794 -> 161.142.100.80:1766.
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz(&KEY, &input[..8]), 0x323e_8fc2);
        assert_eq!(toeplitz(&KEY, &input), 0x51cc_c178);
    }
}
