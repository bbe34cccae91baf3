//! Fetching the guest's instruction bytes at CS:RIP.

use super::memory::GuestMemory;
use super::paging::{translate, Access, TranslateError};
use super::{CodeMode, CpuState};

/// The architectural maximum instruction length.
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// Up to 15 bytes from CS:RIP.
///
/// When the bytes cross into a page that does not translate, the fetch stops at the
/// boundary and keeps that page's fault: the CPU faults only if the instruction
/// really extends there, which only the decoder can tell. A decode that reports
/// truncation then means "inject [`tail_fault`](Self::tail_fault)".
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InstructionBytes {
    bytes: [u8; MAX_INSTRUCTION_LEN],
    len: u8,
    tail_fault: Option<TranslateError>,
}

impl InstructionBytes {
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Why fewer than 15 bytes were fetched, if the second page failed.
    pub fn tail_fault(&self) -> Option<TranslateError> {
        self.tail_fault
    }
}

/// The linear address of CS:RIP (CS base applies outside 64-bit mode).
pub fn code_linear_address(state: &CpuState) -> u64 {
    match state.code_mode() {
        CodeMode::Bits64 => state.rip,
        CodeMode::Bits32 => state.cs_base.wrapping_add(state.rip & 0xffff_ffff) & 0xffff_ffff,
        CodeMode::Bits16 => state.cs_base.wrapping_add(state.rip & 0xffff) & 0xffff_ffff,
    }
}

/// The RIP after an instruction of `len` bytes, wrapped as the mode wraps it.
pub fn next_rip(state: &CpuState, len: u8) -> u64 {
    let rip = state.rip.wrapping_add(u64::from(len));
    match state.code_mode() {
        CodeMode::Bits64 => rip,
        CodeMode::Bits32 => rip & 0xffff_ffff,
        CodeMode::Bits16 => rip & 0xffff,
    }
}

/// Reads up to [`MAX_INSTRUCTION_LEN`] bytes at CS:RIP through the guest's page
/// tables (as an instruction fetch at the guest's CPL). Fails only if the first byte
/// cannot be fetched: then the guest takes that fault before anything else.
pub fn fetch_instruction<M: GuestMemory + ?Sized>(
    mem: &M,
    state: &CpuState,
) -> Result<InstructionBytes, TranslateError> {
    let paging = state.paging();
    fetch_with(mem, state, &paging)
}

/// [`fetch_instruction`] with an explicit [`Paging`](super::Paging) (for the
/// guest's MAXPHYADDR).
pub fn fetch_with<M: GuestMemory + ?Sized>(
    mem: &M,
    state: &CpuState,
    paging: &super::Paging,
) -> Result<InstructionBytes, TranslateError> {
    let access = Access::fetch(state.cpl);
    let linear = code_linear_address(state);
    let mut out = InstructionBytes {
        bytes: [0; MAX_INSTRUCTION_LEN],
        len: 0,
        tail_fault: None,
    };
    let mut done = 0usize;
    while done < MAX_INSTRUCTION_LEN {
        let va = linear.wrapping_add(done as u64);
        let va = if state.code_mode() == CodeMode::Bits64 {
            va
        } else {
            va & 0xffff_ffff
        };
        let in_page = 0x1000 - (va & 0xfff) as usize;
        let chunk = in_page.min(MAX_INSTRUCTION_LEN - done);
        let gpa = match translate(mem, paging, va, access) {
            Ok(gpa) => gpa,
            Err(e) if done == 0 => return Err(e),
            Err(e) => {
                out.tail_fault = Some(e);
                break;
            }
        };
        let Some(dst) = out.bytes.get_mut(done..done + chunk) else {
            break;
        };
        if let Err(e) = mem.read_gpa(gpa, dst) {
            if done == 0 {
                return Err(e.into());
            }
            out.tail_fault = Some(e.into());
            break;
        }
        done += chunk;
        out.len = done as u8;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::bits::*;
    use crate::decode::memory::FlatMemory;
    use crate::decode::paging::PageFault;
    use std::vec;

    fn state(rip: u64) -> CpuState {
        CpuState {
            rip,
            cr0: CR0_PE | CR0_PG,
            cr3: 0x1000,
            cr4: CR4_PAE,
            efer: EFER_LMA | EFER_NXE,
            cs_attrib: SEG_ATTR_L | 0x9b,
            ..CpuState::default()
        }
    }

    /// Identity-maps 0x7000 and 0x8000 as 4K pages (0x8000 only if `second`).
    fn ram(second: bool) -> std::vec::Vec<u8> {
        let mut r = vec![0u8; 0x10000];
        let mut set = |a: usize, v: u64| r[a..a + 8].copy_from_slice(&v.to_le_bytes());
        set(0x1000, 0x2003);
        set(0x2000, 0x3003);
        set(0x3000, 0x4003);
        set(0x4000 + 7 * 8, 0x7001);
        if second {
            set(0x4000 + 8 * 8, 0x8001);
        }
        for (i, b) in r[0x7ff8..0x8010].iter_mut().enumerate() {
            *b = i as u8;
        }
        r
    }

    #[test]
    fn fetch_crosses_pages() {
        let r = ram(true);
        let m = FlatMemory { base: 0, bytes: &r };
        let b = fetch_instruction(&m, &state(0x7ffa)).expect("first page maps");
        assert_eq!(
            b.as_slice(),
            &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        );
        assert_eq!(b.tail_fault(), None);
    }

    #[test]
    fn second_page_fault_is_kept_not_raised() {
        let r = ram(false);
        let m = FlatMemory { base: 0, bytes: &r };
        let b = fetch_instruction(&m, &state(0x7ffa)).expect("first page maps");
        assert_eq!(b.as_slice(), &[2, 3, 4, 5, 6, 7]);
        assert_eq!(
            b.tail_fault(),
            Some(TranslateError::PageFault(PageFault {
                address: 0x8000,
                error_code: PageFault::FETCH
            }))
        );
        // The first byte itself unmapped: the fetch faults outright.
        assert_eq!(
            fetch_instruction(&m, &state(0x8000)),
            Err(TranslateError::PageFault(PageFault {
                address: 0x8000,
                error_code: PageFault::FETCH
            }))
        );
    }

    #[test]
    fn non_canonical_rip_and_wraps() {
        let r = ram(true);
        let m = FlatMemory { base: 0, bytes: &r };
        assert_eq!(
            fetch_instruction(&m, &state(1 << 47)),
            Err(TranslateError::NonCanonical)
        );
        // 16-bit real mode: CS base + IP, paging off.
        let s = CpuState {
            rip: 0x1_fff8,
            cs_base: 0x7000,
            ..CpuState::default()
        };
        assert_eq!(code_linear_address(&s), 0x7000 + 0xfff8);
        assert_eq!(next_rip(&s, 9), 0x1);
        assert_eq!(next_rip(&state(u64::MAX), 1), 0);
    }
}
