//! The SVM I/O permission map: one intercept bit per port, set = the access exits.
//! Every VM's map starts with every bit set; the only bits the kernel clears are
//! those of the VM's `<ioport>` grant (`kernel_abi::image::GUEST_PORT_RANGES`).
//! The CPU checks one bit per byte an access touches, so an access that reaches
//! past the grant on either side still exits.

/// 64 Ki ports, plus the bits a 4-byte access at 0xFFFF reads past the end.
pub const IOPM_BYTES: usize = 0x3000;

/// The byte of the map holding `port`'s bit, and the bit's mask.
pub const fn port_bit(port: u16) -> (usize, u8) {
    ((port / 8) as usize, 1 << (port % 8))
}

/// The (byte, mask) pairs to clear for ports `base..base + count`.
pub fn granted_bits(base: u16, count: u8) -> impl Iterator<Item = (usize, u8)> {
    (0..u16::from(count)).filter_map(move |k| base.checked_add(k).map(port_bit))
}

/// Whether an access of `size` bytes at `port` exits under `map` (as the CPU
/// decides it: any touched port's bit set; bits past the map count as set).
pub fn intercepts(map: &[u8], port: u16, size: u8) -> bool {
    (0..u32::from(size)).any(|k| {
        let p = u32::from(port) + k;
        let byte = (p / 8) as usize;
        map.get(byte).is_none_or(|b| b & (1 << (p % 8)) != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_granting(base: u16, count: u8) -> [u8; IOPM_BYTES] {
        let mut map = [0xff; IOPM_BYTES];
        for (byte, mask) in granted_bits(base, count) {
            map[byte] &= !mask;
        }
        map
    }

    #[test]
    fn only_the_granted_ports_pass() {
        let map = map_granting(0x2f8, 8);
        for port in 0..=u16::MAX {
            let inside = (0x2f8..0x300).contains(&port);
            assert_eq!(intercepts(&map, port, 1), !inside, "port {port:#x}");
        }
    }

    #[test]
    fn an_access_reaching_past_the_grant_exits() {
        let map = map_granting(0x2f8, 8);
        // (port, size, exits)
        let table = [
            (0x2f8, 4, false),
            (0x2fc, 4, false),
            (0x2fd, 4, true),
            (0x2f7, 2, true),
            (0x2ff, 2, true),
            (0x3f8, 1, true),
            (0xcf8, 4, true),
        ];
        for (port, size, exits) in table {
            assert_eq!(intercepts(&map, port, size), exits, "{port:#x}/{size}");
        }
    }

    #[test]
    fn a_map_without_grants_intercepts_everything() {
        let map = map_granting(0, 0);
        assert!((0..=u16::MAX).all(|p| intercepts(&map, p, 1)));
        assert!(intercepts(&map, 0xffff, 4));
    }
}
