use isolation::{Gpa, IoExit, MsrAccess, VcpuExit};
use proptest::prelude::*;

use crate::cpu::Regs;
use crate::exit::{decode, reason, ExitError, L2Gprs};
use crate::status::Status;
use crate::vmcall::{expose, ghci, map_gpa_reply, sub, HostLied, MapGpaReply, Vmcall};

#[test]
fn status_codes_and_classes() {
    assert!(
        !Status::PAGE_ALREADY_ACCEPTED.is_error(),
        "a warning, not an error"
    );
    assert!(Status::PAGE_SIZE_MISMATCH.is_error());
    assert!(Status::OPERAND_INVALID.is_error());
    assert!(Status(0xc000_0100_0000_0001).is(Status::OPERAND_INVALID));
    assert!(!Status::PAGE_ALREADY_ACCEPTED.is(Status::SUCCESS));
}

fn exit_regs(rax: u64, rcx: u64, r8: u64) -> Regs {
    Regs {
        rax,
        rcx,
        r8,
        ..Regs::default()
    }
}

#[test]
fn vp_enter_exit_decode() {
    let g = L2Gprs {
        rax: 0x1234_5678_0000_0007,
        rcx: 0x4000_0001,
        rdx: 0x9,
    };
    let d = |rax: u64, rcx: u64, r8: u64| decode(&exit_regs(rax, rcx, r8), &g);
    assert_eq!(
        d(reason::CPUID.into(), 0, 0),
        Ok(VcpuExit::Cpuid {
            leaf: 7,
            subleaf: 0x4000_0001
        })
    );
    assert_eq!(d(reason::HLT.into(), 0, 0), Ok(VcpuExit::Halt));
    assert_eq!(d(reason::VMCALL.into(), 0, 0), Ok(VcpuExit::Hypercall));
    assert_eq!(
        d(reason::IO.into(), 0x3f8 << 16 | 1 << 3, 0),
        Ok(VcpuExit::Io(IoExit {
            port: 0x3f8,
            size: 1,
            write: false,
            string: false,
            rep: false,
            next_rip: None
        }))
    );
    assert_eq!(
        d(reason::IO.into(), 0x60 << 16 | 3 | 3 << 4, 0),
        Ok(VcpuExit::Io(IoExit {
            port: 0x60,
            size: 4,
            write: true,
            string: true,
            rep: true,
            next_rip: None
        }))
    );
    assert_eq!(d(reason::IO.into(), 2, 0), Ok(VcpuExit::Other { code: 30 }));
    assert_eq!(
        d(reason::RDMSR.into(), 0, 0),
        Ok(VcpuExit::Msr {
            index: 0x4000_0001,
            access: MsrAccess::Read
        })
    );
    assert_eq!(
        d(reason::WRMSR.into(), 0, 0),
        Ok(VcpuExit::Msr {
            index: 0x4000_0001,
            access: MsrAccess::Write(0x9_0000_0007)
        })
    );
    assert_eq!(
        d(reason::EPT_VIOLATION.into(), 2, 0x8000_1000),
        Ok(VcpuExit::MemoryFault {
            gpa: Gpa(0x8000_1000),
            write: true,
            fetch: false
        })
    );
    assert_eq!(
        d(reason::EPT_VIOLATION.into(), 4, 0x8000_1000),
        Ok(VcpuExit::MemoryFault {
            gpa: Gpa(0x8000_1000),
            write: false,
            fetch: true
        })
    );
    assert_eq!(
        d(1 << 31 | 33, 0, 0),
        Err(ExitError::EntryFailure(1 << 31 | 33))
    );
    assert_eq!(
        d(Status::OPERAND_INVALID.0, 0, 0),
        Err(ExitError::Status(Status::OPERAND_INVALID))
    );
    // An informational status (bit 63 clear) still carries the exit reason.
    assert_eq!(d(0x0000_1100_0000_0000 | 12, 0, 0), Ok(VcpuExit::Halt));
}

fn std_regs(r11: u64, args: [u64; 4], rcx: u64) -> Regs {
    Regs {
        rcx,
        r10: 0,
        r11,
        r12: args[0],
        r13: args[1],
        r14: args[2],
        r15: args[3],
        ..Regs::default()
    }
}

const ALL: u64 = expose::R10 | expose::R11 | expose::R12 | expose::R13 | expose::R14 | expose::R15;

#[test]
fn vmcall_parse_rules() {
    let p = |r11, args, rcx| Vmcall::parse(&std_regs(r11, args, rcx));
    assert_eq!(
        p(sub::MAP_GPA, [0x1000, 0x2000, 0, 0], ALL),
        Ok(Vmcall::MapGpa {
            gpa: 0x1000,
            size: 0x2000
        })
    );
    // (what, leaf, R12..R15, exposed registers)
    type Case = (&'static str, u64, [u64; 4], u64);
    const NO_R13: u64 = expose::R10 | expose::R11 | expose::R12;
    let misaligned: [Case; 2] = [
        ("unaligned GPA", sub::MAP_GPA, [0x1001, 0x2000, 0, 0], ALL),
        ("unaligned size", sub::MAP_GPA, [0x1000, 0x2001, 0, 0], ALL),
    ];
    let invalid: [Case; 12] = [
        ("empty map", sub::MAP_GPA, [0x1000, 0, 0, 0], ALL),
        (
            "map past the top",
            sub::MAP_GPA,
            [!0xfff, 0x2000, 0, 0],
            ALL,
        ),
        (
            "R13 not exposed",
            sub::MAP_GPA,
            [0x1000, 0x1000, 0, 0],
            NO_R13,
        ),
        ("RSP exposed", sub::HLT, [0; 4], ALL | 1 << 4),
        ("reserved bitmap bit", sub::HLT, [0; 4], ALL | 1 << 16),
        ("HLT with a bad flag", sub::HLT, [2, 0, 0, 0], ALL),
        ("port I/O of 3 bytes", sub::IO, [3, 0, 0x60, 0], ALL),
        ("port past 0xffff", sub::IO, [1, 0, 0x1_0000, 0], ALL),
        ("port I/O of 8 bytes", sub::IO, [8, 0, 0x60, 0], ALL),
        ("MSR over 32 bits", sub::RDMSR, [1 << 32, 0, 0, 0], ALL),
        (
            "event vector below 32",
            sub::SETUP_EVENT_NOTIFY,
            [31, 0, 0, 0],
            ALL,
        ),
        ("unknown leaf", 0x10005, [0; 4], ALL),
    ];
    for (error, cases) in [
        (ghci::ALIGN_ERROR, &misaligned[..]),
        (ghci::INVALID_OPERAND, &invalid[..]),
    ] {
        for &(what, leaf, args, exposed) in cases {
            assert_eq!(p(leaf, args, exposed), Err(error), "{what}");
        }
    }
    assert_eq!(
        p(sub::MMIO, [8, 1, 0xfee0_0000, 5], ALL),
        Ok(Vmcall::Mmio {
            size: 8,
            write: true,
            gpa: 0xfee0_0000,
            value: 5
        })
    );
    let hv = Regs {
        rcx: expose::R10 | expose::RDX | expose::R8,
        r10: 0x5c,
        rdx: 0x1000,
        r8: 0x2000,
        ..Regs::default()
    };
    assert_eq!(
        Vmcall::parse(&hv),
        Ok(Vmcall::HvHypercall {
            control: 0x5c,
            input: 0x1000,
            output: 0x2000
        })
    );
    let hidden = Regs {
        rcx: expose::R10,
        ..hv
    };
    assert_eq!(Vmcall::parse(&hidden), Err(ghci::INVALID_OPERAND));
}

#[test]
fn map_gpa_retry_must_progress_inside_the_request() {
    let r = |r10, r11| {
        map_gpa_reply(
            &Regs {
                r10,
                r11,
                ..Regs::default()
            },
            0x10_000,
            0x4000,
        )
    };
    assert_eq!(r(ghci::SUCCESS, 0), Ok(MapGpaReply::Done));
    assert_eq!(
        r(ghci::RETRY, 0x11_000),
        Ok(MapGpaReply::Retry { from: 0x11_000 })
    );
    for bad in [0x10_000, 0x14_000, 0x11_001, 0, u64::MAX] {
        assert_eq!(r(ghci::RETRY, bad), Err(HostLied), "{bad:#x}");
    }
    assert_eq!(
        r(ghci::GPA_INUSE, 0),
        Ok(MapGpaReply::Refused(ghci::GPA_INUSE))
    );
    assert_eq!(r(5, 0), Err(HostLied));
}

fn vmcalls() -> impl Strategy<Value = Vmcall> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(leaf, subleaf)| Vmcall::Cpuid { leaf, subleaf }),
        any::<bool>().prop_map(|irqs_blocked| Vmcall::Hlt { irqs_blocked }),
        (
            prop_oneof![Just(1u8), Just(2), Just(4)],
            any::<bool>(),
            any::<u16>(),
            any::<u32>()
        )
            .prop_map(|(size, write, port, value)| Vmcall::Io {
                size,
                write,
                port,
                value
            }),
        any::<u32>().prop_map(|index| Vmcall::Rdmsr { index }),
        (any::<u32>(), any::<u64>()).prop_map(|(index, value)| Vmcall::Wrmsr { index, value }),
        (0u64..1 << 40, 1u64..1 << 20).prop_map(|(g, s)| Vmcall::MapGpa {
            gpa: g << 12,
            size: s << 12
        }),
        any::<u64>().prop_map(|code| Vmcall::ReportFatalError { code }),
        (32u8..=255).prop_map(|vector| Vmcall::SetupEventNotify { vector }),
        (1u64.., any::<u64>(), any::<u64>()).prop_map(|(control, input, output)| {
            Vmcall::HvHypercall {
                control,
                input,
                output,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn vmcalls_round_trip(call in vmcalls()) {
        prop_assert_eq!(Vmcall::parse(&call.to_regs()), Ok(call));
    }

    #[test]
    fn vmcall_parse_accepts_any_registers(rcx in any::<u64>(), r10 in 0u64..2, r11 in prop_oneof![Just(sub::MAP_GPA), Just(sub::IO), Just(sub::MMIO), any::<u64>()], args in any::<[u64; 4]>()) {
        let mut r = std_regs(r11, args, rcx);
        r.r10 = r10;
        match Vmcall::parse(&r) {
            Ok(Vmcall::MapGpa { gpa, size }) => prop_assert!(gpa % 4096 == 0 && size % 4096 == 0 && size > 0),
            Ok(_) => prop_assert!(rcx & expose::FORBIDDEN == 0),
            Err(s) => prop_assert!(s == ghci::INVALID_OPERAND || s == ghci::ALIGN_ERROR),
        }
    }

    #[test]
    fn exit_decode_accepts_any_registers(rax in any::<u64>(), rcx in any::<u64>(), r8 in any::<u64>()) {
        let _ = decode(&exit_regs(rax, rcx, r8), &L2Gprs::default());
    }
}
