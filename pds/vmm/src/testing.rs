//! Fakes for driving the VMM in host tests and fuzz targets: guest RAM in a `Vec`,
//! peers that record every call and answer from a script, a VMM with a fixed clock,
//! and the state words of a flat or identity-mapped long-mode vCPU.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::Range;

use kernel_abi::vcpu::{segment, segment_word, Word};
use synic_pd::Instance;

use crate::cpuid::Presentation;
use crate::decode::{bits, GuestMemory, MemError};
use crate::exits::{Clock, Vmm};
use crate::loader::{GuestRamWrite, OutsideRam};
use crate::msr::EFER_SVME;
use crate::peers::{MsrOutcome, Peers};
use crate::platform::Platform;
use crate::state::WORDS;

/// Guest RAM at GPA 0. Behind a `RefCell` because the VMM writes through `&self`.
#[derive(Debug)]
pub struct Ram {
    bytes: RefCell<Vec<u8>>,
    /// Where the VMM may write; a write elsewhere panics (a fuzz oracle).
    writable: Option<Range<u64>>,
}

/// Where [`Ram::identity_mapped`] puts its PML4.
pub const PML4: u64 = 0x1000;

impl Ram {
    /// `size` zeroed bytes.
    pub fn new(size: usize) -> Self {
        Self::from_bytes(vec![0; size])
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes: RefCell::new(bytes),
            writable: None,
        }
    }

    /// `size` zeroed bytes whose first 2 MiB are identity mapped by one large page
    /// (see [`Ram::map_first_2mib`]).
    pub fn identity_mapped(size: usize) -> Self {
        let ram = Self::new(size);
        ram.map_first_2mib();
        ram
    }

    /// Identity maps the first 2 MiB with one user-accessible large page (so CPL 3
    /// code runs in it too), PML4 at [`PML4`]; overwrites 0x1000..0x3008.
    pub fn map_first_2mib(&self) {
        let flags = bits::PTE_P | bits::PTE_RW | bits::PTE_US;
        self.put(PML4, &(0x2000 | flags).to_le_bytes());
        self.put(0x2000, &(0x3000 | flags).to_le_bytes());
        self.put(0x3000, &(bits::PTE_PS | flags).to_le_bytes());
    }

    /// Panics on any write outside `range` instead of doing it.
    pub fn writable_only(mut self, range: Range<u64>) -> Self {
        self.writable = Some(range);
        self
    }

    /// Test set-up: panics outside RAM.
    pub fn put(&self, gpa: u64, bytes: &[u8]) {
        let at = gpa as usize;
        self.bytes.borrow_mut()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// A copy of `len` bytes at `gpa`; panics outside RAM.
    pub fn bytes(&self, gpa: u64, len: usize) -> Vec<u8> {
        let at = gpa as usize;
        self.bytes.borrow()[at..at + len].to_vec()
    }

    /// Writes a bitmap of `len` bytes at `gpa` with bits `set` set (and no others).
    pub fn put_bitmap(&self, gpa: u64, len: usize, set: impl IntoIterator<Item = usize>) {
        let mut map = vec![0u8; len];
        for bit in set {
            map[bit / 8] |= 1 << (bit % 8);
        }
        self.put(gpa, &map);
    }

    pub fn u64_at(&self, gpa: u64) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes(gpa, 8));
        u64::from_le_bytes(b)
    }
}

impl GuestMemory for Ram {
    fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let ram = self.bytes.borrow();
        let src = usize::try_from(gpa)
            .ok()
            .and_then(|s| ram.get(s..s.checked_add(buf.len())?))
            .ok_or(MemError { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl GuestRamWrite for Ram {
    fn size(&self) -> u64 {
        self.bytes.borrow().len() as u64
    }

    fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
        if let Some(range) = &self.writable {
            let end = gpa.checked_add(bytes.len() as u64);
            assert!(
                gpa >= range.start && end.is_some_and(|e| e <= range.end),
                "the VMM wrote guest RAM outside {range:#x?}: {gpa:#x}+{}",
                bytes.len()
            );
        }
        let outside = OutsideRam {
            gpa,
            len: bytes.len() as u64,
        };
        let mut ram = self.bytes.borrow_mut();
        let dst = usize::try_from(gpa)
            .ok()
            .and_then(|s| ram.get_mut(s..s.checked_add(bytes.len())?))
            .ok_or(outside)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

/// One request a [`FakePeers`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    HvCpuid(u32, u32),
    HvMsr(u32, Option<u64>),
    Synic(Instance, u32, Option<u64>),
    Hypercall(u64, u64, u64),
    IoapicMmio(u64, u8, Option<u64>),
    IoapicEoi(u8),
    IoapicLine(u8, bool),
}

/// Peers that record what they were asked and answer from the script.
#[derive(Debug)]
pub struct FakePeers {
    pub calls: Vec<Call>,
    pub cpuid: Option<[u32; 4]>,
    pub hv_msr: MsrOutcome,
    pub synic: MsrOutcome,
    pub hypercall: Option<u64>,
    pub ioapic: Option<u64>,
    /// Whether the IOAPIC takes a line change.
    pub line: bool,
}

impl Default for FakePeers {
    fn default() -> Self {
        Self {
            calls: Vec::new(),
            cpuid: None,
            hv_msr: MsrOutcome::NotMine,
            synic: MsrOutcome::NotMine,
            hypercall: None,
            ioapic: None,
            line: true,
        }
    }
}

impl Peers for FakePeers {
    fn hv_cpuid(&mut self, leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
        self.calls.push(Call::HvCpuid(leaf, subleaf));
        self.cpuid
    }
    fn hv_msr(&mut self, msr: u32, write: Option<u64>) -> MsrOutcome {
        self.calls.push(Call::HvMsr(msr, write));
        self.hv_msr
    }
    fn synic_msr(&mut self, instance: Instance, msr: u32, write: Option<u64>) -> MsrOutcome {
        self.calls.push(Call::Synic(instance, msr, write));
        self.synic
    }
    fn hypercall(&mut self, control: u64, rdx: u64, r8: u64) -> Option<u64> {
        self.calls.push(Call::Hypercall(control, rdx, r8));
        self.hypercall
    }
    fn ioapic_mmio(&mut self, gpa: u64, size: u8, write: Option<u64>) -> Option<u64> {
        self.calls.push(Call::IoapicMmio(gpa, size, write));
        self.ioapic
    }
    fn ioapic_eoi(&mut self, vector: u8) {
        self.calls.push(Call::IoapicEoi(vector));
    }
    fn ioapic_line(&mut self, line: u8, asserted: bool) -> bool {
        self.calls.push(Call::IoapicLine(line, asserted));
        self.line
    }
}

/// A VMM whose TSC and APIC timer run at the given rates.
pub fn vmm(
    presentation: Presentation,
    tsc_hz: u64,
    apic_hz: u64,
    host_cpuid: fn(u32, u32) -> [u32; 4],
) -> Vmm {
    Vmm::new(
        presentation,
        Clock { tsc_hz, apic_hz },
        Platform::new(tsc_hz, apic_hz, 0, 0),
        host_cpuid,
    )
}

/// How a vCPU from [`vcpu_words`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 32-bit protected mode, paging off, flat segments.
    Flat32,
    /// Long mode with 64-bit code, paging through the tables at [`PML4`].
    Long,
}

const CODE_SEGMENT: u16 = 0xb | (1 << 4) | (1 << 7);
const CS_L: u16 = 1 << 9;
const CS_D: u16 = 1 << 10;
const DATA_SEGMENT: u16 = 0x3 | (1 << 4) | (1 << 7);

pub use crate::decode::bits::{EFER_LMA, EFER_LME, EFER_NXE};

/// The state words of a vCPU in `mode` at CPL `cpl` about to run at `rip` (RFLAGS
/// holds only its fixed bit); everything else zero.
pub fn vcpu_words(mode: Mode, cpl: u16, rip: u64) -> [u64; WORDS] {
    let mut w = [0u64; WORDS];
    w[Word::RIP] = rip;
    w[Word::RFLAGS] = 2;
    let code = match mode {
        Mode::Flat32 => {
            w[Word::CR0] = bits::CR0_PE;
            w[Word::EFER] = EFER_SVME;
            CODE_SEGMENT | CS_D
        }
        Mode::Long => {
            w[Word::CR0] = bits::CR0_PE | bits::CR0_PG | bits::CR0_WP;
            w[Word::CR3] = PML4;
            w[Word::CR4] = bits::CR4_PAE;
            w[Word::EFER] = EFER_LME | EFER_LMA | EFER_NXE | EFER_SVME;
            w[Word::PAT] = 0x0007_0406_0007_0406;
            w[Word::XCR0] = 1;
            CODE_SEGMENT | CS_L
        }
    };
    w[Word::SEGMENTS + 2 * segment::CS] = segment_word(0x10 | cpl, code | (cpl << 5), !0);
    w[Word::SEGMENTS + 2 * segment::SS] = segment_word(0x18 | cpl, DATA_SEGMENT | (cpl << 5), !0);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_outside_ram_are_refused_and_inside_land() {
        let ram = Ram::new(0x2000);
        assert_eq!(ram.write_gpa(0x1ff8, &[1; 8]), Ok(()));
        assert_eq!(ram.u64_at(0x1ff8), 0x0101_0101_0101_0101);
        assert_eq!(
            ram.write_gpa(0x1ffc, &[1; 8]),
            Err(OutsideRam {
                gpa: 0x1ffc,
                len: 8
            })
        );
        assert_eq!(
            ram.write_gpa(u64::MAX, &[1]).map_err(|e| e.gpa),
            Err(u64::MAX)
        );
        let mut b = [0u8; 8];
        assert_eq!(ram.read_gpa(0x1ffc, &mut b), Err(MemError { gpa: 0x1ffc }));
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn a_write_outside_the_window_panics() {
        let ram = Ram::new(0x2000).writable_only(0x1000..0x2000);
        let _ = ram.write_gpa(0xfff, &[0; 2]);
    }
}
