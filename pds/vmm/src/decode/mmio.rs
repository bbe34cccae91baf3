//! What an instruction behind an MMIO nested page fault does.
//!
//! The exit gives the guest-physical address; this gives the rest: the instruction's
//! length, the access size and direction, the value a write stores, and where a
//! read's result goes. The set is what Linux's `readX`/`writeX` and compilers emit
//! for device registers: `mov` between memory and a register in every size (incl.
//! the `moffs` forms and AH/BH/CH/DH), `mov` of an immediate to memory, and the
//! `movzx`/`movsx`/`movsxd` loads. Anything else (string moves, read-modify-write
//! ALU ops, SSE) is [`MmioDecodeError::Unsupported`]: the VMM injects a fault rather
//! than guess.

use iced_x86::{Code, Decoder, DecoderError, DecoderOptions, Instruction, OpKind, Register};

use super::CodeMode;

/// How a read's value widens into its destination register.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Extension {
    Zero,
    Sign,
}

/// A general-purpose register slot an MMIO read writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReadTarget {
    /// 0..16 in x86 encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..).
    gpr: u8,
    /// Destination width in bytes: 1, 2, 4 or 8.
    width: u8,
    /// AH/CH/DH/BH: bits 8..16 of `gpr`.
    high_byte: bool,
    /// Bytes read from memory (1, 2, 4 or 8), before extension.
    from_size: u8,
    extension: Extension,
}

impl ReadTarget {
    pub fn gpr(&self) -> usize {
        usize::from(self.gpr & 15)
    }
    pub fn width(&self) -> u8 {
        self.width
    }
    pub fn high_byte(&self) -> bool {
        self.high_byte
    }
    pub fn extension(&self) -> Extension {
        self.extension
    }
}

/// The direction and data of an MMIO access.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MmioAccess {
    /// Store `value` (already truncated to the access size).
    Write { value: u64 },
    /// Load, then [`write_back`] the value into the target register.
    Read(ReadTarget),
}

/// A decoded MMIO instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MmioInstruction {
    /// Instruction length: advance RIP by this much after emulating.
    pub len: u8,
    /// Bytes accessed: 1, 2, 4 or 8.
    pub size: u8,
    pub access: MmioAccess,
}

/// Why the bytes are not an MMIO instruction we emulate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MmioDecodeError {
    /// The bytes end mid-instruction: if the fetch stopped at a page it could not
    /// translate, inject that fault; otherwise the guest's code is garbage (#UD).
    Truncated,
    /// Not a valid instruction in this mode: #UD.
    Invalid,
    /// A valid instruction we do not emulate on MMIO (or with no memory operand).
    Unsupported { len: u8 },
}

/// Register slot of a GPR operand: (index, width, high byte).
fn gpr_slot(reg: Register) -> Option<(u8, u8, bool)> {
    let r = reg as u32;
    let al = Register::AL as u32;
    let ax = Register::AX as u32;
    let eax = Register::EAX as u32;
    let rax = Register::RAX as u32;
    let ah = Register::AH as u32;
    let bh = Register::BH as u32;
    let slot = match r {
        _ if (ah..=bh).contains(&r) => (r - ah, 1, true),
        // AL..BL then SPL..R15L: the four high-byte registers sit between them.
        _ if (al..ah).contains(&r) => (r - al, 1, false),
        _ if (bh + 1..ax).contains(&r) => (r - al - 4, 1, false),
        _ if (ax..eax).contains(&r) => (r - ax, 2, false),
        _ if (eax..rax).contains(&r) => (r - eax, 4, false),
        _ if (rax..rax + 16).contains(&r) => (r - rax, 8, false),
        _ => return None,
    };
    Some((slot.0 as u8, slot.1, slot.2))
}

const fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

fn read_gpr(gprs: &[u64; 16], (index, width, high): (u8, u8, bool)) -> u64 {
    let v = gprs[usize::from(index & 15)];
    let v = if high { v >> 8 } else { v };
    v & size_mask(width)
}

enum Form {
    StoreReg(u8),
    StoreImm(u8),
    Load { size: u8, extension: Extension },
}

fn form(code: Code) -> Option<Form> {
    use Code::*;
    use Extension::{Sign, Zero};
    let load = |size, extension| Some(Form::Load { size, extension });
    match code {
        Mov_rm8_r8 | Mov_moffs8_AL => Some(Form::StoreReg(1)),
        Mov_rm16_r16 | Mov_moffs16_AX => Some(Form::StoreReg(2)),
        Mov_rm32_r32 | Mov_moffs32_EAX => Some(Form::StoreReg(4)),
        Mov_rm64_r64 | Mov_moffs64_RAX => Some(Form::StoreReg(8)),
        Mov_rm8_imm8 => Some(Form::StoreImm(1)),
        Mov_rm16_imm16 => Some(Form::StoreImm(2)),
        Mov_rm32_imm32 => Some(Form::StoreImm(4)),
        Mov_rm64_imm32 => Some(Form::StoreImm(8)),
        Mov_r8_rm8 | Mov_AL_moffs8 => load(1, Zero),
        Mov_r16_rm16 | Mov_AX_moffs16 => load(2, Zero),
        Mov_r32_rm32 | Mov_EAX_moffs32 => load(4, Zero),
        Mov_r64_rm64 | Mov_RAX_moffs64 => load(8, Zero),
        Movzx_r16_rm8 | Movzx_r32_rm8 | Movzx_r64_rm8 => load(1, Zero),
        Movzx_r16_rm16 | Movzx_r32_rm16 | Movzx_r64_rm16 => load(2, Zero),
        Movsx_r16_rm8 | Movsx_r32_rm8 | Movsx_r64_rm8 => load(1, Sign),
        Movsx_r16_rm16 | Movsx_r32_rm16 | Movsx_r64_rm16 => load(2, Sign),
        // MOVSXD with a 16/32-bit destination moves without extension.
        Movsxd_r16_rm16 => load(2, Zero),
        Movsxd_r32_rm32 => load(4, Zero),
        Movsxd_r64_rm32 => load(4, Sign),
        _ => None,
    }
}

/// Decodes one instruction from `bytes` (fetched at CS:RIP) as an MMIO access, with
/// the guest's registers for the value a store writes.
pub fn decode_mmio(
    bytes: &[u8],
    mode: CodeMode,
    gprs: &[u64; 16],
) -> Result<MmioInstruction, MmioDecodeError> {
    let instr = decode_one(bytes, mode)?;
    let len = instr.len() as u8;
    let unsupported = MmioDecodeError::Unsupported { len };
    let form = form(instr.code()).ok_or(unsupported)?;
    // The memory operand: op0 for stores, op1 for loads. A register-only encoding of
    // the same opcode (mod = 11) cannot have faulted on MMIO; the code changed.
    let mem_op = if matches!(form, Form::Load { .. }) {
        1
    } else {
        0
    };
    if instr.op_kind(mem_op) != OpKind::Memory {
        return Err(unsupported);
    }
    let (size, access) = match form {
        Form::StoreReg(size) => {
            let slot = gpr_slot(instr.op_register(1)).ok_or(unsupported)?;
            (
                size,
                MmioAccess::Write {
                    value: read_gpr(gprs, slot),
                },
            )
        }
        Form::StoreImm(size) => {
            // Sign-extended to 64 for MOV m64, imm32, as the CPU does.
            (
                size,
                MmioAccess::Write {
                    value: instr.immediate(1) & size_mask(size),
                },
            )
        }
        Form::Load { size, extension } => {
            let (gpr, width, high_byte) = gpr_slot(instr.op_register(0)).ok_or(unsupported)?;
            let target = ReadTarget {
                gpr,
                width,
                high_byte,
                from_size: size,
                extension,
            };
            (size, MmioAccess::Read(target))
        }
    };
    Ok(MmioInstruction { len, size, access })
}

/// Decodes one instruction, mapping the decoder's failure to ours.
pub(super) fn decode_one(bytes: &[u8], mode: CodeMode) -> Result<Instruction, MmioDecodeError> {
    let mut decoder = Decoder::try_new(mode.bitness(), bytes, DecoderOptions::NONE)
        .map_err(|_| MmioDecodeError::Invalid)?;
    let instr = decoder.decode();
    if instr.is_invalid() {
        return Err(match decoder.last_error() {
            DecoderError::NoMoreBytes => MmioDecodeError::Truncated,
            _ => MmioDecodeError::Invalid,
        });
    }
    Ok(instr)
}

/// Writes a value read from MMIO into its destination register as the CPU would:
/// extend from the access size, then a 32-bit destination zero-extends into the
/// whole register while 8- and 16-bit destinations merge into it.
pub fn write_back(gprs: &mut [u64; 16], target: ReadTarget, value: u64) {
    let raw = value & size_mask(target.from_size);
    let extended = match target.extension {
        Extension::Zero => raw,
        Extension::Sign => {
            let shift = 64 - 8 * u32::from(target.from_size.clamp(1, 8));
            (((raw << shift) as i64) >> shift) as u64
        }
    };
    let reg = &mut gprs[target.gpr()];
    *reg = match (target.width, target.high_byte) {
        (1, true) => (*reg & !0xff00) | ((extended & 0xff) << 8),
        (1, false) => (*reg & !0xff) | (extended & 0xff),
        (2, _) => (*reg & !0xffff) | (extended & 0xffff),
        (4, _) => extended & 0xffff_ffff,
        _ => extended,
    };
}

#[cfg(test)]
mod tests;
