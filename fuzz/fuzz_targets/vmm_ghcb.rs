//! vmm GHCB: any GHCB page, GHCB MSR value, RAM size and peer answers through
//! `Ghcb::vmgexit` must never panic; the VMM writes only inside the registered
//! page; an MSR that names another page is refused; SEV_INFO is always answered.
//!
//! Input: a 24-byte header (RAM size, peer answers, instance, how the MSR is set,
//! repeats, MSR value, peer value), then the page's bytes.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use synic_pd::Instance;
use vmm::decode::{GuestMemory, MemError};
use vmm::ghcb::{self, Ghcb, Outcome, PAGE, PAGE_GPA};
use vmm::loader::{GuestRamWrite, OutsideRam};
use vmm::peers::{MsrOutcome, Peers};

struct Ram(RefCell<Vec<u8>>);

impl GuestMemory for Ram {
    fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let ram = self.0.borrow();
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
        self.0.borrow().len() as u64
    }

    fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
        let end = gpa.checked_add(bytes.len() as u64);
        assert!(
            gpa >= PAGE_GPA && end.is_some_and(|e| e <= PAGE_GPA + PAGE),
            "write outside the GHCB page: {gpa:#x}+{}",
            bytes.len()
        );
        let outside = OutsideRam {
            gpa,
            len: bytes.len() as u64,
        };
        let mut ram = self.0.borrow_mut();
        let dst = usize::try_from(gpa)
            .ok()
            .and_then(|s| ram.get_mut(s..s.checked_add(bytes.len())?))
            .ok_or(outside)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

struct FuzzPeers {
    synic: MsrOutcome,
    hypercall: Option<u64>,
}

impl Peers for FuzzPeers {
    fn hv_cpuid(&mut self, _: u32, _: u32) -> Option<[u32; 4]> {
        panic!("the GHCB asks hvcall-pd for CPUID")
    }
    fn hv_msr(&mut self, _: u32, _: Option<u64>) -> MsrOutcome {
        panic!("the GHCB reaches hvcall-pd's MSRs")
    }
    fn synic_msr(&mut self, _: Instance, _: u32, _: Option<u64>) -> MsrOutcome {
        self.synic
    }
    fn hypercall(&mut self, _: u64, _: u64, _: u64) -> Option<u64> {
        self.hypercall
    }
    fn ioapic_mmio(&mut self, _: u64, _: u8, _: Option<u64>) -> Option<u64> {
        panic!("the GHCB reaches the IOAPIC")
    }
    fn ioapic_eoi(&mut self, _: u8) {}
    fn ioapic_line(&mut self, _: u8, _: bool) -> bool {
        panic!("the GHCB drives an IOAPIC line")
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, page)) = data.split_first_chunk::<24>() else {
        return;
    };
    let msr_value = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let value = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    // Mostly RAM that holds the page, sometimes RAM that ends inside or before it.
    let ram_size = match head[0] % 4 {
        0 => PAGE_GPA as usize - usize::from(head[1]) * 64,
        1 => PAGE_GPA as usize + usize::from(head[1]) * 16,
        _ => (PAGE_GPA + PAGE) as usize,
    };
    let mut bytes = vec![0u8; ram_size];
    let at = PAGE_GPA as usize;
    if let Some(dst) = bytes.get_mut(at..) {
        let n = dst.len().min(page.len());
        dst[..n].copy_from_slice(&page[..n]);
    }
    let ram = Ram(RefCell::new(bytes));
    let mut peers = FuzzPeers {
        synic: match head[2] % 4 {
            0 => MsrOutcome::Done(value),
            1 => MsrOutcome::Gp,
            2 => MsrOutcome::NotMine,
            _ => MsrOutcome::Failed,
        },
        hypercall: (head[3] & 1 != 0).then_some(value.rotate_left(13)),
    };
    let instance = if head[4] & 1 != 0 {
        Instance::HYPERVISOR
    } else {
        Instance::PARAVISOR
    };
    let mut g = Ghcb::new(PAGE_GPA);
    let msr = match head[5] % 4 {
        0 => PAGE_GPA,
        1 => PAGE_GPA | (msr_value & ghcb::info::MASK),
        2 => msr_value & !ghcb::info::MASK,
        _ => msr_value,
    };
    g.write_msr(msr);
    for _ in 0..=head[6] % 3 {
        let before = g.read_msr();
        let request = before & ghcb::info::MASK;
        let outcome = g.vmgexit(&ram, &mut peers, instance);
        match request {
            ghcb::info::SEV_INFO_REQ => {
                assert_eq!(outcome, Outcome::Done);
                assert_eq!(g.read_msr() & ghcb::info::MASK, ghcb::info::SEV_INFO_RESP);
            }
            ghcb::info::TERM_REQ => assert!(matches!(outcome, Outcome::Terminate { .. })),
            0 if before != PAGE_GPA => assert!(matches!(outcome, Outcome::Failed(_))),
            _ => {}
        }
        if !matches!(outcome, Outcome::Done) {
            break;
        }
    }
});
