use super::*;

type AccessCase = (u64, u64, Result<(u16, u8, bool), Refusal>);
type BarCase = (u32, u32, u32, u32, Result<Bar, BarError>);

#[test]
fn config_addresses_select_the_dword() {
    let bdf = Bdf {
        bus: 0,
        device: 5,
        function: 0,
    };
    assert_eq!(bdf.config_address(0x3d), 0x8000_283c);
    let other = Bdf {
        bus: 1,
        device: 31,
        function: 7,
    };
    assert_eq!(other.config_address(0xff), 0x8001_fffc);
    assert!(other.is_valid());
    assert!(!Bdf {
        device: 32,
        ..other
    }
    .is_valid());
}

#[test]
fn accesses_the_policy_allows_and_refuses() {
    use Refusal::*;
    let w = WRITE;
    // (offset, flags, expected)
    let table: &[AccessCase] = &[
        (0x00, 4, Ok((0x00, 4, false))),
        (0x3d, 1, Ok((0x3d, 1, false))),
        (0xfc, 4, Ok((0xfc, 4, false))),
        (0x04, 2 | w, Ok((0x04, 2, true))),
        (0x04, 1 | w, Ok((0x04, 1, true))),
        (0x40, 4 | w, Ok((0x40, 4, true))),
        (0xff, 1 | w, Ok((0xff, 1, true))),
        // ids, status, BARs, ROM, interrupt line: the kernel's decisions.
        (0x00, 4 | w, Err(Protected)),
        (0x04, 4 | w, Err(Protected)),
        (0x06, 2 | w, Err(Protected)),
        (0x10, 4 | w, Err(Protected)),
        (0x24, 4 | w, Err(Protected)),
        (0x30, 4 | w, Err(Protected)),
        (0x3c, 1 | w, Err(Protected)),
        (0x3f, 1 | w, Err(Protected)),
        // malformed
        (0x01, 2, Err(BadArgument)),
        (0x02, 4, Err(BadArgument)),
        (0x100, 1, Err(BadArgument)),
        (u64::MAX, 1, Err(BadArgument)),
        (0x00, 3, Err(BadArgument)),
        (0x00, 0, Err(BadArgument)),
        (0x00, 8, Err(BadArgument)),
        (0x00, 4 | 1 << 9, Err(BadArgument)),
        (0x00, u64::MAX, Err(BadArgument)),
    ];
    for &(offset, flags, want) in table {
        let got = check_access(offset, flags).map(|a| (a.offset, a.width, a.write));
        assert_eq!(got, want, "offset {offset:#x} flags {flags:#x}");
    }
}

#[test]
fn bars_decode_or_are_refused() {
    use BarError::*;
    // (lo, hi, size_lo, size_hi, expected)
    let table: &[BarCase] = &[
        // 64-bit prefetchable 16 KiB at 0xfebf_0000 (QEMU's virtio BAR 4)
        (
            0xfebf_000c,
            0,
            0xffff_c00c,
            0xffff_ffff,
            Ok(Bar {
                addr: 0xfebf_0000,
                size: 0x4000,
                is_64: true,
            }),
        ),
        // 32-bit 4 KiB
        (
            0xfebd_1000,
            0,
            0xffff_f000,
            0,
            Ok(Bar {
                addr: 0xfebd_1000,
                size: 0x1000,
                is_64: false,
            }),
        ),
        // 64-bit above 4 GiB
        (
            0x0000_000c,
            0x8,
            0xfff0_000c,
            0xffff_ffff,
            Ok(Bar {
                addr: 0x8_0000_0000,
                size: 0x10_0000,
                is_64: true,
            }),
        ),
        (0xc001, 0, 0xffff_ffe1, 0, Err(NotMemory)),
        (0xfebf_0002, 0, 0xffff_c002, 0, Err(Unusable)),
        (0xfebf_0006, 0, 0xffff_c006, 0, Err(Unusable)),
        (0, 0, 0, 0, Err(Unusable)),
        (0, 0, 0xffff_f000, 0, Err(Unusable)),
        (0xfebf_0000, 0, 0xffff_ff00, 0, Err(SubPage)),
        (0xfebf_0800, 0, 0xffff_f000, 0, Err(SubPage)),
        // a size mask with holes is not a BAR
        (0xfebf_0000, 0, 0xfff0_f000, 0, Err(Unusable)),
        // 64-bit that would wrap past the top
        (
            0xffff_f00c,
            0xffff_ffff,
            0xffff_000c,
            0xffff_ffff,
            Err(Unusable),
        ),
    ];
    for &(lo, hi, slo, shi, want) in table {
        assert_eq!(decode_bar(lo, hi, slo, shi), want, "bar {lo:#x} {hi:#x}");
    }
}
