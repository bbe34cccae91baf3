//! Lengths of the instructions behind the fixed intercepts (CPUID, RDMSR, ...), so
//! the VMM can step RIP past them without the CPU's next-RIP, after checking the
//! bytes really are that instruction.

use iced_x86::{Code, Mnemonic};

use super::mmio::{decode_one, MmioDecodeError};
use super::CodeMode;

/// The instruction an exit says the guest executed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FixedInstruction {
    Cpuid,
    Rdmsr,
    Wrmsr,
    Vmmcall,
    /// `rep vmmcall`: an SEV-ES/SNP guest's exit to the hypervisor (GHCB).
    Vmgexit,
    Hlt,
    Xsetbv,
    Rdtsc,
    Rdtscp,
    Rdpmc,
    Wbinvd,
    Invd,
    Pause,
    Monitor,
    Mwait,
    /// Any IN/OUT/INS/OUTS form (SVM gives the next RIP for IOIO, but under
    /// nested virtualization a cross-check is cheap).
    Io,
}

impl FixedInstruction {
    fn matches(self, code: Code) -> bool {
        use FixedInstruction as F;
        match self {
            F::Cpuid => code == Code::Cpuid,
            F::Rdmsr => code == Code::Rdmsr,
            F::Wrmsr => code == Code::Wrmsr,
            F::Vmmcall => code == Code::Vmmcall,
            F::Vmgexit => code == Code::Vmgexit,
            F::Hlt => code == Code::Hlt,
            F::Xsetbv => code == Code::Xsetbv,
            F::Rdtsc => code == Code::Rdtsc,
            F::Rdtscp => code == Code::Rdtscp,
            F::Rdpmc => code == Code::Rdpmc,
            F::Wbinvd => code == Code::Wbinvd,
            F::Invd => code == Code::Invd,
            F::Pause => code == Code::Pause,
            F::Monitor => matches!(code, Code::Monitorw | Code::Monitord | Code::Monitorq),
            F::Mwait => code == Code::Mwait,
            F::Io => matches!(
                code.mnemonic(),
                Mnemonic::In
                    | Mnemonic::Out
                    | Mnemonic::Insb
                    | Mnemonic::Insw
                    | Mnemonic::Insd
                    | Mnemonic::Outsb
                    | Mnemonic::Outsw
                    | Mnemonic::Outsd
            ),
        }
    }
}

/// Why the length could not be confirmed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LengthError {
    /// The bytes end mid-instruction (see [`super::InstructionBytes::tail_fault`]).
    Truncated,
    /// Not a valid instruction.
    Invalid,
    /// A valid instruction, but not the one the exit names: the code changed under
    /// the exit. The VMM re-enters without emulating (the guest re-executes
    /// whatever is there now) or reports it.
    Mismatch { len: u8 },
}

/// The length of the instruction at the start of `bytes`, if it is `expected`.
pub fn instruction_length(
    bytes: &[u8],
    mode: CodeMode,
    expected: FixedInstruction,
) -> Result<u8, LengthError> {
    let instr = decode_one(bytes, mode).map_err(|e| match e {
        MmioDecodeError::Truncated => LengthError::Truncated,
        _ => LengthError::Invalid,
    })?;
    let len = instr.len() as u8;
    if expected.matches(instr.code()) {
        Ok(len)
    } else {
        Err(LengthError::Mismatch { len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FixedInstruction as F;

    #[test]
    fn lengths_of_the_fixed_exits() {
        let m = CodeMode::Bits64;
        let cases: &[(&[u8], FixedInstruction, u8)] = &[
            (&[0x0f, 0xa2], F::Cpuid, 2),
            (&[0x0f, 0x32, 0x90], F::Rdmsr, 2),
            (&[0x0f, 0x30], F::Wrmsr, 2),
            (&[0x0f, 0x01, 0xd9], F::Vmmcall, 3),
            (&[0xf3, 0x0f, 0x01, 0xd9], F::Vmgexit, 4),
            (&[0xf4], F::Hlt, 1),
            (&[0x0f, 0x01, 0xd1], F::Xsetbv, 3),
            (&[0x0f, 0x31], F::Rdtsc, 2),
            (&[0x0f, 0x01, 0xf9], F::Rdtscp, 3),
            (&[0x0f, 0x33], F::Rdpmc, 2),
            (&[0x0f, 0x09], F::Wbinvd, 2),
            (&[0x0f, 0x08], F::Invd, 2),
            (&[0xf3, 0x90], F::Pause, 2),
            (&[0x0f, 0x01, 0xc8], F::Monitor, 3),
            (&[0x0f, 0x01, 0xc9], F::Mwait, 3),
            (&[0xe6, 0x80], F::Io, 2),
            (&[0xec], F::Io, 1),
            (&[0x66, 0xef], F::Io, 2),
            (&[0xf3, 0x6c], F::Io, 2),
            // Redundant prefixes count toward the length.
            (&[0x2e, 0x3e, 0x0f, 0xa2], F::Cpuid, 4),
            (&[0x48, 0x0f, 0x30], F::Wrmsr, 3),
        ];
        for &(bytes, expected, len) in cases {
            assert_eq!(
                instruction_length(bytes, m, expected),
                Ok(len),
                "{bytes:02x?}"
            );
        }
        assert_eq!(instruction_length(&[0xf4], CodeMode::Bits16, F::Hlt), Ok(1));
    }

    #[test]
    fn malformed_and_mismatched_bytes() {
        let m = CodeMode::Bits64;
        assert_eq!(
            instruction_length(&[], m, F::Cpuid),
            Err(LengthError::Truncated)
        );
        assert_eq!(
            instruction_length(&[0x0f], m, F::Cpuid),
            Err(LengthError::Truncated)
        );
        assert_eq!(
            instruction_length(&[0x0f, 0x01], m, F::Vmmcall),
            Err(LengthError::Truncated)
        );
        assert_eq!(
            instruction_length(&[0x90], m, F::Cpuid),
            Err(LengthError::Mismatch { len: 1 })
        );
        assert_eq!(
            instruction_length(&[0x0f, 0x30], m, F::Rdmsr),
            Err(LengthError::Mismatch { len: 2 })
        );
        // 15 prefixes then the opcode: over the 15-byte limit.
        let mut long = [0x66u8; 16];
        long[14] = 0x0f;
        long[15] = 0xa2;
        assert_eq!(
            instruction_length(&long, m, F::Cpuid),
            Err(LengthError::Invalid)
        );
        // LOCK on CPUID is #UD.
        assert_eq!(
            instruction_length(&[0xf0, 0x0f, 0xa2], m, F::Cpuid),
            Err(LengthError::Invalid)
        );
        // 0x06 (PUSH ES) is invalid in 64-bit mode. (Alone it reads as truncated: the
        // decoder wants the bytes an invalid opcode could span.)
        assert_eq!(
            instruction_length(&[0x06, 0x90], m, F::Cpuid),
            Err(LengthError::Invalid)
        );
    }
}
