use super::*;
use proptest::prelude::*;

const M64: CodeMode = CodeMode::Bits64;

fn regs() -> [u64; 16] {
    let mut r = [0u64; 16];
    for (i, v) in r.iter_mut().enumerate() {
        *v = 0x1111_1111_1111_1111u64.wrapping_mul(i as u64 + 1) ^ 0x8070_6050_4030_2010;
    }
    r
}

fn write(bytes: &[u8]) -> (u8, u8, u64) {
    match decode_mmio(bytes, M64, &regs()) {
        Ok(MmioInstruction {
            len,
            size,
            access: MmioAccess::Write { value },
        }) => (len, size, value),
        other => panic!("{bytes:02x?}: {other:?}"),
    }
}

fn read(bytes: &[u8], mode: CodeMode) -> (u8, u8, ReadTarget) {
    match decode_mmio(bytes, mode, &regs()) {
        Ok(MmioInstruction {
            len,
            size,
            access: MmioAccess::Read(t),
        }) => (len, size, t),
        other => panic!("{bytes:02x?}: {other:?}"),
    }
}

#[test]
fn stores_from_registers_in_every_size() {
    let r = regs();
    assert_eq!(write(&[0x89, 0x37]), (2, 4, r[6] & 0xffff_ffff)); // mov [rdi], esi
    assert_eq!(write(&[0x88, 0x27]), (2, 1, (r[0] >> 8) & 0xff)); // mov [rdi], ah
    assert_eq!(write(&[0x88, 0x3f]), (2, 1, (r[3] >> 8) & 0xff)); // mov [rdi], bh
    assert_eq!(write(&[0x40, 0x88, 0x37]), (3, 1, r[6] & 0xff)); // mov [rdi], sil
    assert_eq!(write(&[0x66, 0x89, 0x07]), (3, 2, r[0] & 0xffff)); // mov [rdi], ax
    assert_eq!(write(&[0x48, 0x89, 0x07]), (3, 8, r[0])); // mov [rdi], rax
    assert_eq!(write(&[0x4c, 0x89, 0x3f]), (3, 8, r[15])); // mov [rdi], r15
    assert_eq!(
        write(&[0x44, 0x89, 0x44, 0x24, 0x08]),
        (5, 4, r[8] & 0xffff_ffff)
    ); // mov [rsp+8], r8d
       // mov [abs64], eax (moffs form, 64-bit address).
    assert_eq!(
        write(&[0xa3, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]),
        (9, 4, r[0] & 0xffff_ffff)
    );
}

#[test]
fn stores_of_immediates() {
    assert_eq!(write(&[0xc6, 0x07, 0xab]), (3, 1, 0xab));
    assert_eq!(write(&[0x66, 0xc7, 0x07, 0x34, 0x12]), (5, 2, 0x1234));
    assert_eq!(
        write(&[0xc7, 0x47, 0x10, 0x78, 0x56, 0x34, 0x12]),
        (7, 4, 0x1234_5678)
    );
    // REX.W: imm32 sign-extended to 64.
    assert_eq!(
        write(&[0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff]),
        (7, 8, u64::MAX)
    );
    assert_eq!(write(&[0x48, 0xc7, 0x07, 0x01, 0, 0, 0]), (7, 8, 1));
}

#[test]
fn loads_and_their_write_back() {
    let mut g = regs();
    // mov eax, [rdi]: 32-bit destination zero-extends.
    let (len, size, t) = read(&[0x8b, 0x07], M64);
    assert_eq!((len, size, t.gpr(), t.width()), (2, 4, 0, 4));
    write_back(&mut g, t, 0xdead_beef_cafe_f00d);
    assert_eq!(g[0], 0xcafe_f00d);

    // mov bh, [rdi]: merges into bits 8..16 of RBX.
    let (_, size, t) = read(&[0x8a, 0x3f], M64);
    assert_eq!((size, t.gpr(), t.high_byte()), (1, 3, true));
    let before = g[3];
    write_back(&mut g, t, 0x1ab);
    assert_eq!(g[3], (before & !0xff00) | 0xab00);

    // mov cx, [rdi]: merges the low 16 bits.
    let (_, _, t) = read(&[0x66, 0x8b, 0x0f], M64);
    let before = g[1];
    write_back(&mut g, t, 0xffff_1234);
    assert_eq!(g[1], (before & !0xffff) | 0x1234);

    // mov dl, [rdi] / mov r9b, [rdi]
    let (_, _, t) = read(&[0x8a, 0x17], M64);
    let before = g[2];
    write_back(&mut g, t, 0x77);
    assert_eq!(g[2], (before & !0xff) | 0x77);
    let (_, _, t) = read(&[0x44, 0x8a, 0x0f], M64);
    assert_eq!((t.gpr(), t.width(), t.high_byte()), (9, 1, false));

    // mov r10, [rdi]
    let (_, size, t) = read(&[0x4c, 0x8b, 0x17], M64);
    assert_eq!((size, t.gpr(), t.width()), (8, 10, 8));
    write_back(&mut g, t, 0x0123_4567_89ab_cdef);
    assert_eq!(g[10], 0x0123_4567_89ab_cdef);

    // mov eax, [abs64]
    let (len, size, t) = read(&[0xa1, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0], M64);
    assert_eq!((len, size, t.gpr(), t.width()), (9, 4, 0, 4));
}

#[test]
fn extending_loads() {
    let mut g = regs();
    // movzx eax, byte [rdi]
    let (len, size, t) = read(&[0x0f, 0xb6, 0x07], M64);
    assert_eq!(
        (len, size, t.width(), t.extension()),
        (3, 1, 4, Extension::Zero)
    );
    write_back(&mut g, t, 0xfff0);
    assert_eq!(g[0], 0xf0);
    // movsx rax, word [rdi]
    let (_, size, t) = read(&[0x48, 0x0f, 0xbf, 0x07], M64);
    assert_eq!((size, t.width(), t.extension()), (2, 8, Extension::Sign));
    write_back(&mut g, t, 0x8001);
    assert_eq!(g[0], 0xffff_ffff_ffff_8001);
    // movsx ecx, byte [rdi]: sign-extends to 32, then zero-extends to 64.
    let (_, _, t) = read(&[0x0f, 0xbe, 0x0f], M64);
    write_back(&mut g, t, 0x80);
    assert_eq!(g[1], 0xffff_ff80);
    // movsx dx, byte [rdi]: merges 16 bits.
    let (_, _, t) = read(&[0x66, 0x0f, 0xbe, 0x17], M64);
    let before = g[2];
    write_back(&mut g, t, 0xfe);
    assert_eq!(g[2], (before & !0xffff) | 0xfffe);
    // movsxd rax, dword [rdi]
    let (_, size, t) = read(&[0x48, 0x63, 0x07], M64);
    assert_eq!(size, 4);
    write_back(&mut g, t, 0x8000_0000);
    assert_eq!(g[0], 0xffff_ffff_8000_0000);
    // movzx r11d, word [rdi]
    let (_, size, t) = read(&[0x44, 0x0f, 0xb7, 0x1f], M64);
    assert_eq!((size, t.gpr()), (2, 11));
}

#[test]
fn other_modes() {
    // 32-bit mode: 66 8b 07 is mov ax, [edi]; 0x40 is INC EAX, not REX.
    let (len, size, t) = read(&[0x66, 0x8b, 0x07], CodeMode::Bits32);
    assert_eq!((len, size, t.width()), (3, 2, 2));
    assert_eq!(
        decode_mmio(&[0x40, 0x88, 0x37], CodeMode::Bits32, &regs()),
        Err(MmioDecodeError::Unsupported { len: 1 })
    );
    // 16-bit: 8b 07 is mov ax, [bx].
    let (_, size, _) = read(&[0x8b, 0x07], CodeMode::Bits16);
    assert_eq!(size, 2);
}

#[test]
fn malformed_and_unsupported() {
    let g = regs();
    let cases: &[(&[u8], MmioDecodeError)] = &[
        (&[], MmioDecodeError::Truncated),
        (&[0x8b], MmioDecodeError::Truncated),
        (&[0x48, 0xc7, 0x07, 0xff], MmioDecodeError::Truncated),
        (&[0x66; 14], MmioDecodeError::Truncated),
        (&[0xf0, 0x8b, 0x07], MmioDecodeError::Invalid), // LOCK MOV
        (&[0x06, 0x90], MmioDecodeError::Invalid),       // PUSH ES in 64-bit mode
        (&[0x0f, 0x0b], MmioDecodeError::Unsupported { len: 2 }), // UD2
        (&[0x89, 0xc0], MmioDecodeError::Unsupported { len: 2 }), // mov eax, eax
        (&[0x8b, 0xc7], MmioDecodeError::Unsupported { len: 2 }), // mov eax, edi
        (
            &[0xc7, 0xc0, 1, 0, 0, 0],
            MmioDecodeError::Unsupported { len: 6 },
        ), // mov eax, 1
        (&[0xf3, 0xa5], MmioDecodeError::Unsupported { len: 2 }), // rep movsd
        (&[0x01, 0x07], MmioDecodeError::Unsupported { len: 2 }), // add [rdi], eax
        (&[0x0f, 0xb6, 0xc0], MmioDecodeError::Unsupported { len: 3 }), // movzx eax, al
        (&[0x8c, 0x07], MmioDecodeError::Unsupported { len: 2 }), // mov [rdi], es
        (&[0x0f, 0x11, 0x07], MmioDecodeError::Unsupported { len: 3 }), // movups [rdi], xmm0
    ];
    for &(bytes, err) in cases {
        assert_eq!(decode_mmio(bytes, M64, &g), Err(err), "{bytes:02x?}");
    }
    // 16 prefixes: over the architectural limit.
    let mut long = [0x66u8; 17];
    long[15] = 0x8b;
    long[16] = 0x07;
    assert_eq!(decode_mmio(&long, M64, &g), Err(MmioDecodeError::Invalid));
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_stay_consistent(
        bytes in proptest::collection::vec(any::<u8>(), 0..20),
        mode in 0u8..3,
        gprs in any::<[u64; 16]>(),
        value in any::<u64>(),
    ) {
        let mode = [CodeMode::Bits16, CodeMode::Bits32, CodeMode::Bits64][usize::from(mode)];
        if let Ok(m) = decode_mmio(&bytes, mode, &gprs) {
            prop_assert!(usize::from(m.len) <= bytes.len().min(15));
            prop_assert!(matches!(m.size, 1 | 2 | 4 | 8));
            match m.access {
                MmioAccess::Write { value: v } => prop_assert_eq!(v & !size_mask(m.size), 0),
                MmioAccess::Read(t) => {
                    let mut after = gprs;
                    write_back(&mut after, t, value);
                    for i in 0..16 {
                        if i != t.gpr() {
                            prop_assert_eq!(after[i], gprs[i]);
                        }
                    }
                    // Bits outside the destination survive a partial write.
                    let kept = match (t.width(), t.high_byte()) {
                        (1, true) => !0xff00u64,
                        (1, false) => !0xffu64,
                        (2, _) => !0xffffu64,
                        _ => 0,
                    };
                    prop_assert_eq!(after[t.gpr()] & kept, gprs[t.gpr()] & kept);
                    if t.width() == 4 {
                        prop_assert_eq!(after[t.gpr()] >> 32, 0);
                    }
                }
            }
        }
    }
}
