//! The vTPM as the guest finds it: a TPM 2.0 CRB interface (tpm-crb) whose
//! registers and command processing live in the tpm PD. The VMM owns no TPM
//! state — it describes the device in ACPI ([`TpmDevice`], the TPM2 table and
//! `MSFT0101` in the DSDT) and forwards the guest's faulting accesses to the
//! locality pages to the tpm PD over its channel ([`crate::peers::Peers::tpm_mmio`]).
//!
//! Locality 0's register page is mapped read-only into the VM (so reads, including
//! Linux's `memcpy_fromio`, cost no exit) and the command/response buffer page
//! read-write; what faults here is register writes and any access to localities
//! 1-4, which the tpm PD refuses.

use tpm_crb::api::{BUFFER_GPA, BUFFER_SIZE, CRB_BASE};
use tpm_crb::regs;

pub use tpm_crb::api::{in_window, LOG_GPA};

/// A TPM the VMM presents to the guest.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TpmDevice {
    /// The TCG2 event log area the tpm PD fills (guest-physical address,
    /// length), when it measures the boot; `None` leaves LASA/LAML zero.
    pub log: Option<(u64, u32)>,
}

impl TpmDevice {
    /// The memory `_CRS` reports: the locality pages and the buffer page after
    /// them, one window, so Linux maps the buffer with the registers (and, in a
    /// vTOM guest, as the same private MMIO).
    pub fn window(&self) -> (u32, u32) {
        (
            CRB_BASE as u32,
            (BUFFER_GPA + u64::from(BUFFER_SIZE) - CRB_BASE) as u32,
        )
    }

    /// The TPM2 table's control area address: locality 0's CTRL_REQ, right after
    /// the locality registers Linux's tpm_crb expects at the window's start.
    pub fn control_area(&self) -> u64 {
        CRB_BASE + regs::CTRL_REQ
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use kernel_abi::vcpu::{exit, Word};
    use synic_pd::Instance;

    use super::*;
    use crate::cpuid::Presentation;
    use crate::exits::Action;
    use crate::peers::{MsrOutcome, Peers};
    use crate::state::VcpuState;
    use crate::testing::{self, FakePeers, Mode, Ram};

    const CODE: u64 = 0x8000;

    /// FakePeers plus a tpm PD that answers reads with `tpm` and records calls.
    #[derive(Default)]
    struct WithTpm {
        inner: FakePeers,
        tpm: Option<u64>,
        calls: Vec<(u64, u8, Option<u64>)>,
    }

    impl Peers for WithTpm {
        fn hv_cpuid(&mut self, leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
            self.inner.hv_cpuid(leaf, subleaf)
        }
        fn hv_msr(&mut self, msr: u32, write: Option<u64>) -> MsrOutcome {
            self.inner.hv_msr(msr, write)
        }
        fn synic_msr(&mut self, i: Instance, msr: u32, write: Option<u64>) -> MsrOutcome {
            self.inner.synic_msr(i, msr, write)
        }
        fn hypercall(&mut self, control: u64, rdx: u64, r8: u64) -> Option<u64> {
            self.inner.hypercall(control, rdx, r8)
        }
        fn ioapic_mmio(&mut self, gpa: u64, size: u8, write: Option<u64>) -> Option<u64> {
            self.inner.ioapic_mmio(gpa, size, write)
        }
        fn ioapic_eoi(&mut self, vector: u8) {
            self.inner.ioapic_eoi(vector)
        }
        fn ioapic_line(&mut self, line: u8, asserted: bool) -> bool {
            self.inner.ioapic_line(line, asserted)
        }
        fn tpm_mmio(&mut self, gpa: u64, size: u8, write: Option<u64>) -> Option<u64> {
            self.calls.push((gpa, size, write));
            self.tpm
        }
    }

    /// A nested page fault at `gpa` for the instruction `code` (operand via rbx).
    fn npf(ram: &Ram, gpa: u64, code: &[u8], write: bool) -> VcpuState {
        ram.put(CODE, code);
        let mut w = testing::vcpu_words(Mode::Long, 0, CODE);
        w[Word::EXIT_CODE] = exit::NPF;
        w[Word::EXIT_INFO1] = if write { 3 } else { 1 };
        w[Word::EXIT_INFO2] = gpa;
        let mut st = VcpuState::new();
        st.load_exit(&w);
        st.set_gpr(3, gpa);
        st
    }

    #[test]
    fn faults_on_the_locality_pages_reach_the_tpm_pd_and_nothing_else_does() {
        let ram = Ram::identity_mapped(0x20_0000);
        let mut v = testing::vmm(Presentation::Plain, 2_000_000_000, 1_000_000_000, |_, _| {
            [0; 4]
        });
        let mut p = WithTpm {
            tpm: Some(0x1234_5678),
            ..WithTpm::default()
        };
        // mov [rbx], ecx: Linux's iowrite32 of START.
        let mut st = npf(&ram, CRB_BASE + regs::CTRL_START, &[0x89, 0x0b], true);
        st.set_gpr(1, 1);
        assert_eq!(v.handle_exit(&mut st, &ram, &mut p, 1), Action::Run);
        assert_eq!(p.calls, [(CRB_BASE + regs::CTRL_START, 4, Some(1))]);
        assert_eq!(st.rip(), CODE + 2);
        // mov eax, [rbx] on locality 1's page: the PD's answer, or all ones.
        for (answer, want) in [(Some(0x1234_5678), 0x1234_5678), (None, 0xffff_ffff)] {
            p.tpm = answer;
            p.calls.clear();
            let mut st = npf(&ram, CRB_BASE + 0x1000, &[0x8b, 0x03], false);
            v.handle_exit(&mut st, &ram, &mut p, 1);
            assert_eq!(p.calls, [(CRB_BASE + 0x1000, 4, None)]);
            assert_eq!(st.gpr(0), want);
        }
        // The buffer page and the log are memory, not the CRB: a fault there is a hole.
        for gpa in [BUFFER_GPA, CRB_BASE - 4] {
            p.calls.clear();
            let mut st = npf(&ram, gpa, &[0x8b, 0x03], false);
            v.handle_exit(&mut st, &ram, &mut p, 1);
            assert!(p.calls.is_empty(), "{gpa:#x}");
        }
    }
}
