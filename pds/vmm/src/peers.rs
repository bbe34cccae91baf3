//! The PDs the VMM hands exits to, behind one trait so the exit handling is
//! tested against fakes: hvcall-pd (hypervisor CPUID leaves, hypercall MSRs,
//! hypercalls), synic-pd (SynIC MSRs of either instance), the ioapic PD (its MMIO
//! page, EOI broadcasts and the input lines of the devices the VMM emulates) and
//! the tpm PD (the vTPM's CRB registers).

use hvcall_pd::api as hvapi;
use hvcall_pd::{HypercallRequest, Outcome};
use hvdef::{Control, HvStatus, Vtl};
use ipc::{Channel, Kernel};
use synic_pd::api as syapi;
use synic_pd::Instance;

/// What an MSR access handed to a peer came to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MsrOutcome {
    /// Done; the value read (0 for writes).
    Done(u64),
    /// The architectural answer is #GP.
    Gp,
    /// Not this peer's MSR.
    NotMine,
    /// The peer could not be reached or answered nonsense.
    Failed,
}

pub trait Peers {
    /// hvcall-pd's answer for a hypervisor leaf.
    fn hv_cpuid(&mut self, leaf: u32, subleaf: u32) -> Option<[u32; 4]>;
    /// A hypercall-interface MSR (guest OS id, hypercall page, VP index).
    fn hv_msr(&mut self, msr: u32, write: Option<u64>) -> MsrOutcome;
    fn synic_msr(&mut self, instance: Instance, msr: u32, write: Option<u64>) -> MsrOutcome;
    /// The RAX result of a hypercall, `None` when hvcall-pd is unreachable.
    fn hypercall(&mut self, control: u64, rdx: u64, r8: u64) -> Option<u64>;
    /// An IOAPIC register access; `None` if it was refused.
    fn ioapic_mmio(&mut self, gpa: u64, size: u8, write: Option<u64>) -> Option<u64>;
    fn ioapic_eoi(&mut self, vector: u8);
    /// Drives an input line of the ioapic PD; `false` if the call failed.
    fn ioapic_line(&mut self, line: u8, asserted: bool) -> bool;
    /// One edge on an input line (assert, then deassert).
    fn ioapic_pulse(&mut self, line: u8) -> bool {
        self.ioapic_line(line, true) && self.ioapic_line(line, false)
    }
    /// A guest access to the vTPM's locality pages that faulted, for the tpm PD;
    /// `None` if it was refused or there is no TPM.
    fn tpm_mmio(&mut self, _gpa: u64, _size: u8, _write: Option<u64>) -> Option<u64> {
        None
    }
}

/// The channels of the VMM image (see `config`).
#[derive(Copy, Clone, Debug)]
pub struct Channels {
    pub hvcall: Channel,
    pub synic: Channel,
    pub ioapic: Option<Channel>,
    pub ioapic_lines: Option<Channel>,
    /// The tpm PD (its CRB registers), when the system has a vTPM.
    pub tpm: Option<Channel>,
}

/// [`Peers`] over protected calls.
#[derive(Debug)]
pub struct CallPeers<'k> {
    pub kernel: &'k mut dyn Kernel,
    pub channels: Channels,
    pub vp: u32,
}

/// HV_STATUS_INVALID_HYPERCALL_CODE in RAX: what a guest gets for a call that
/// would switch VTLs (this VM has no higher VTL).
const RESULT_INVALID_CODE: u64 = HvStatus::INVALID_HYPERCALL_CODE.0 as u64;

impl Peers for CallPeers<'_> {
    fn hv_cpuid(&mut self, leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
        hvapi::cpuid(self.kernel, self.channels.hvcall, self.vp, leaf, subleaf)
            .ok()
            .flatten()
    }

    fn hv_msr(&mut self, msr: u32, write: Option<u64>) -> MsrOutcome {
        let ch = self.channels.hvcall;
        let (reply, value) = match write {
            Some(v) => match hvapi::write_msr(self.kernel, ch, self.vp, Vtl::VTL0, msr, v) {
                Ok(r) => (r, 0),
                Err(_) => return MsrOutcome::Failed,
            },
            None => match hvapi::read_msr(self.kernel, ch, self.vp, Vtl::VTL0, msr) {
                Ok(r) => r,
                Err(_) => return MsrOutcome::Failed,
            },
        };
        match reply {
            Some(hvapi::MsrReply::Ok) => MsrOutcome::Done(value),
            Some(hvapi::MsrReply::Gp) => MsrOutcome::Gp,
            Some(hvapi::MsrReply::NotMine) => MsrOutcome::NotMine,
            None => MsrOutcome::Failed,
        }
    }

    fn synic_msr(&mut self, instance: Instance, msr: u32, write: Option<u64>) -> MsrOutcome {
        let ch = self.channels.synic;
        let result = match write {
            Some(v) => syapi::write_msr(self.kernel, ch, self.vp, instance, msr, v).map(|s| (s, 0)),
            None => syapi::read_msr(self.kernel, ch, self.vp, instance, msr),
        };
        match result {
            Ok((syapi::MsrStatus::Ok, v)) => MsrOutcome::Done(v),
            Ok((syapi::MsrStatus::Gp, _)) => MsrOutcome::Gp,
            Ok((syapi::MsrStatus::NotSynic, _)) => MsrOutcome::NotMine,
            Err(_) => MsrOutcome::Failed,
        }
    }

    fn hypercall(&mut self, control: u64, rdx: u64, r8: u64) -> Option<u64> {
        let req = HypercallRequest {
            vp: self.vp,
            vtl: Vtl::VTL0,
            control: Control(control),
            rdx,
            r8,
        };
        match hvapi::hypercall(self.kernel, self.channels.hvcall, &req) {
            Ok(Some(Outcome::Complete(r))) => Some(r.0),
            Ok(Some(Outcome::SwitchVtl(_))) => Some(RESULT_INVALID_CODE),
            _ => None,
        }
    }

    fn ioapic_mmio(&mut self, gpa: u64, size: u8, write: Option<u64>) -> Option<u64> {
        let ch = self.channels.ioapic?;
        mmio_device_api::forward(self.kernel, ch, gpa, u64::from(size), write).ok()
    }

    fn ioapic_eoi(&mut self, vector: u8) {
        if let Some(ch) = self.channels.ioapic {
            // A refused EOI leaves a level line's remote IRR set: the device's next
            // assertion is then lost, which the exit statistics cannot hide.
            let _ = ioapic::api::eoi(self.kernel, ch, vector);
        }
    }

    fn tpm_mmio(&mut self, gpa: u64, size: u8, write: Option<u64>) -> Option<u64> {
        let ch = self.channels.tpm?;
        mmio_device_api::forward(self.kernel, ch, gpa, u64::from(size), write).ok()
    }

    fn ioapic_line(&mut self, line: u8, asserted: bool) -> bool {
        let action = if asserted {
            ioapic::api::LineAction::ASSERT
        } else {
            ioapic::api::LineAction::DEASSERT
        };
        self.set_line(line, action)
    }

    fn ioapic_pulse(&mut self, line: u8) -> bool {
        self.set_line(line, ioapic::api::LineAction::PULSE)
    }
}

impl CallPeers<'_> {
    fn set_line(&mut self, line: u8, action: ioapic::api::LineAction) -> bool {
        let Some(ch) = self.channels.ioapic_lines else {
            return false;
        };
        ioapic::api::set_line(self.kernel, ch, u64::from(line), action).is_ok()
    }
}
