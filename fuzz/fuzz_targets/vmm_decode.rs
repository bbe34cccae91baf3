//! vmm decode: any guest state, page tables and code bytes must fetch, translate and
//! decode without panicking; a decoded MMIO instruction stays within the bytes it
//! was given and its register write-back touches only its destination.
//!
//! Layout: 8 bytes of mode selectors, 8 of RIP, 16 GPR seed bytes, then guest RAM
//! (64 KiB at GPA 0, the input repeated so page tables point into it).
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use bytes::word;
use libfuzzer_sys::fuzz_target;
use vmm::decode::bits::*;
use vmm::decode::{
    decode_mmio, fetch_with, instruction_length, translate, write_back, Access, AccessKind,
    CpuState, FixedInstruction, FlatMemory, MmioAccess,
};

const RAM: usize = 0x10000;

const FIXED: [FixedInstruction; 15] = [
    FixedInstruction::Cpuid,
    FixedInstruction::Rdmsr,
    FixedInstruction::Wrmsr,
    FixedInstruction::Vmmcall,
    FixedInstruction::Hlt,
    FixedInstruction::Xsetbv,
    FixedInstruction::Rdtsc,
    FixedInstruction::Rdtscp,
    FixedInstruction::Rdpmc,
    FixedInstruction::Wbinvd,
    FixedInstruction::Invd,
    FixedInstruction::Pause,
    FixedInstruction::Monitor,
    FixedInstruction::Mwait,
    FixedInstruction::Io,
];

fuzz_target!(|data: &[u8]| {
    let sel = word(data, 0);
    let rip = word(data, 8);
    let seed = word(data, 16) ^ word(data, 24).rotate_left(17);
    let ram_src = data.get(32..).unwrap_or(&[]);
    let mut ram = vec![0u8; RAM];
    if !ram_src.is_empty() {
        for (i, b) in ram.iter_mut().enumerate() {
            *b = ram_src[i % ram_src.len()];
        }
    }
    let mem = FlatMemory {
        base: 0,
        bytes: &ram,
    };

    let mut gprs = [0u64; 16];
    for (i, g) in gprs.iter_mut().enumerate() {
        *g = seed.rotate_left(i as u32 * 5).wrapping_mul(i as u64 | 1);
    }
    let pick = |bit: u32, v: u64| if sel >> bit & 1 == 1 { v } else { 0 };
    let state = CpuState {
        gprs,
        // Mostly near the RAM so the walk and fetch get far; sometimes anywhere.
        rip: if sel >> 8 & 1 == 1 {
            rip
        } else {
            rip % (RAM as u64 + 0x100)
        },
        rflags: pick(9, RFLAGS_AC),
        cr0: pick(0, CR0_PE) | pick(1, CR0_PG) | pick(2, CR0_WP),
        cr3: (sel >> 16) & 0xffff,
        cr4: pick(3, CR4_PAE)
            | pick(4, CR4_LA57)
            | pick(5, CR4_PSE)
            | pick(10, CR4_SMEP)
            | pick(11, CR4_SMAP),
        efer: pick(6, EFER_LMA) | pick(7, EFER_NXE),
        cs_base: (sel >> 32) & 0xffff,
        cs_attrib: (sel >> 48) as u16 & 0xfff,
        cpl: (sel >> 60) as u8 & 3,
    };
    let paging = state.paging().with_phys_bits((sel >> 40) as u8);

    for kind in [AccessKind::Read, AccessKind::Write, AccessKind::Execute] {
        let access = Access {
            kind,
            user: state.cpl == 3,
            ac: sel >> 9 & 1 == 1,
        };
        if let Ok(gpa) = translate(&mem, &paging, rip, access) {
            assert_eq!(
                gpa & 0xfff,
                rip & 0xfff,
                "translation keeps the page offset"
            );
        }
    }

    let mode = state.code_mode();
    let fetched = fetch_with(&mem, &state, &paging);
    let raw = data.get(32..).unwrap_or(&[]);
    let raw = &raw[..raw.len().min(20)];
    for bytes in [fetched.as_ref().map(|b| b.as_slice()).unwrap_or(&[]), raw] {
        assert!(bytes.len() <= 20);
        if let Ok(m) = decode_mmio(bytes, mode, &state.gprs) {
            assert!(usize::from(m.len) <= bytes.len().min(15));
            if let MmioAccess::Read(target) = m.access {
                let mut after = state.gprs;
                write_back(&mut after, target, rip);
                for (i, (a, b)) in after.iter().zip(state.gprs.iter()).enumerate() {
                    assert!(i == target.gpr() || a == b);
                }
            }
        }
        for expected in FIXED {
            if let Ok(len) = instruction_length(bytes, mode, expected) {
                assert!(len >= 1 && usize::from(len) <= bytes.len().min(15));
            }
        }
    }
});
