//! The guest's side of its two SynICs: enabling them through synic-pd's MSRs, and
//! taking what arrives, as Linux's `vmbus_isr` does: an interrupt request from
//! synic-pd's queue says which instance fired; the guest then collects that
//! instance's event flags and its message slot, frees the slot and writes EOM when
//! another message is pending. Nothing is read from a page without an interrupt for
//! it, so a delivery that forgets to interrupt shows up as a timeout.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use hvdef::message::{HvMessage, HV_MESSAGE_FLAG_PENDING, HV_MESSAGE_SIZE, SINT_EVENT_FLAGS_BYTES};
use hvdef::msr::{
    HV_X64_MSR_EOM, HV_X64_MSR_SCONTROL, HV_X64_MSR_SIEFP, HV_X64_MSR_SIMP, HV_X64_MSR_SINT0,
};
use hvdef::synic::{SimpSiefpRegister, SintRegister};
use ipc::{Consumer, Kernel, Region};
use synic_pd::api::{self as syapi, IrqEntry, MsrStatus};
use synic_pd::Instance;

use crate::config::{SIEFP, SIMP, SYNIC, VECTOR};
use crate::{fail, Failure, Result};

/// The SINT VMBus uses for messages and channel events.
pub const SINT: u8 = vmbus_protocol::MESSAGE_SINT;
pub const INSTANCES: [Instance; 2] = [Instance::PARAVISOR, Instance::HYPERVISOR];

pub fn instance_name(i: Instance) -> &'static str {
    if i == Instance::PARAVISOR {
        "paravisor"
    } else {
        "hypervisor-relay"
    }
}

/// What arrived per instance, for the report and the checks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub interrupts: u64,
    pub messages: u64,
    pub events: u64,
}

pub struct GuestSynic {
    ram: Region<'static>,
    irqs: Consumer<'static, IrqEntry>,
    enabled: [bool; 2],
    /// An interrupt arrived and its pages have not been looked at yet.
    pending: [bool; 2],
    messages: VecDeque<(Instance, Vec<u8>)>,
    /// Event flags seen set, per (instance, flag), not yet taken.
    events: BTreeMap<(u8, u32), u64>,
    pub counts: [Counts; 2],
    /// Interrupt requests for a vector or instance nobody enabled.
    pub stray_interrupts: u64,
}

impl core::fmt::Debug for GuestSynic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuestSynic")
            .field("enabled", &self.enabled)
            .field("counts", &self.counts)
            .field("queued_messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

impl GuestSynic {
    pub fn new(ram: Region<'static>, irqs: Consumer<'static, IrqEntry>) -> Self {
        Self {
            ram,
            irqs,
            enabled: [false; 2],
            pending: [false; 2],
            messages: VecDeque::new(),
            events: BTreeMap::new(),
            counts: [Counts::default(); 2],
            stray_interrupts: 0,
        }
    }

    pub fn write_msr(
        &self,
        k: &mut dyn Kernel,
        instance: Instance,
        msr: u32,
        value: u64,
    ) -> Result<()> {
        match syapi::write_msr(k, SYNIC, 0, instance, msr, value) {
            Ok(MsrStatus::Ok) => Ok(()),
            other => fail(format!(
                "wrmsr {msr:#x} on the {} SynIC: {other:?}",
                instance_name(instance)
            )),
        }
    }

    /// `hv_synic_enable_regs` for one instance: message page, event page, the VMBus
    /// SINT, then SCONTROL.
    pub fn enable(&mut self, k: &mut dyn Kernel, instance: Instance) -> Result<()> {
        let i = usize::from(instance.get());
        for (msr, value) in [
            (
                HV_X64_MSR_SIMP,
                SimpSiefpRegister::new(true, SIMP[i] >> 12).0,
            ),
            (
                HV_X64_MSR_SIEFP,
                SimpSiefpRegister::new(true, SIEFP[i] >> 12).0,
            ),
            (
                HV_X64_MSR_SINT0 + u32::from(SINT),
                SintRegister::new(VECTOR[i]).0,
            ),
            (HV_X64_MSR_SCONTROL, 1),
        ] {
            self.write_msr(k, instance, msr, value)?;
        }
        self.enabled[i] = true;
        Ok(())
    }

    /// Takes interrupt requests, then looks at the pages of every instance that
    /// fired. Returns whether anything new arrived.
    pub fn service(&mut self, k: &mut dyn Kernel) -> Result<bool> {
        let mut any = false;
        while let Some(e) = self
            .irqs
            .dequeue()
            .map_err(|e| Failure(format!("interrupt queue: {e}")))?
        {
            let i = usize::from(e.instance);
            let ours = e.vp == 0
                && self.enabled.get(i).copied().unwrap_or(false)
                && VECTOR.get(i) == Some(&e.vector)
                && e.sint == SINT;
            if !ours {
                self.stray_interrupts += 1;
                continue;
            }
            self.counts[i].interrupts += 1;
            self.pending[i] = true;
        }
        // synic-pd asks for a kick when it had to hold requests back.
        if self.irqs.take_signal_request() {
            SYNIC
                .notify(k)
                .map_err(|e| Failure(format!("notifying synic-pd: {e}")))?;
        }
        for instance in INSTANCES {
            let i = usize::from(instance.get());
            if !core::mem::take(&mut self.pending[i]) {
                continue;
            }
            any |= self.take_events(instance)?;
            any |= self.take_message(k, instance)?;
        }
        Ok(any)
    }

    /// Linux's `vmbus_chan_sched`: swap each flag word to zero, note the set bits.
    fn take_events(&mut self, instance: Instance) -> Result<bool> {
        let i = usize::from(instance.get());
        let base = SIEFP[i] as usize + usize::from(SINT) * SINT_EVENT_FLAGS_BYTES;
        let mut any = false;
        for word in 0..SINT_EVENT_FLAGS_BYTES / 4 {
            let flags = self
                .ram
                .atomic_u32(base + word * 4)
                .map_err(|e| Failure(format!("event page: {e}")))?
                .swap(0, Ordering::AcqRel);
            let mut rest = flags;
            while rest != 0 {
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                *self
                    .events
                    .entry((instance.get(), word as u32 * 32 + bit))
                    .or_default() += 1;
                self.counts[i].events += 1;
                any = true;
            }
        }
        Ok(any)
    }

    /// Linux's `vmbus_on_msg_dpc`: copy the slot, free it, EOM if more is pending.
    fn take_message(&mut self, k: &mut dyn Kernel, instance: Instance) -> Result<bool> {
        let i = usize::from(instance.get());
        let slot = SIMP[i] as usize + usize::from(SINT) * HV_MESSAGE_SIZE;
        let message: HvMessage = self
            .ram
            .read(slot)
            .map_err(|e| Failure(format!("message page: {e}")))?;
        if message.header.message_type.0 == 0 {
            return Ok(false);
        }
        let len = usize::from(message.header.payload_size).min(message.payload.len());
        self.messages
            .push_back((instance, message.payload[..len].to_vec()));
        self.counts[i].messages += 1;
        self.ram
            .atomic_u32(slot)
            .map_err(|e| Failure(format!("message page: {e}")))?
            .store(0, Ordering::SeqCst);
        let flags: u8 = self
            .ram
            .read(slot + 5)
            .map_err(|e| Failure(format!("message page: {e}")))?;
        if flags & HV_MESSAGE_FLAG_PENDING != 0 {
            self.write_msr(k, instance, HV_X64_MSR_EOM, 0)?;
        }
        Ok(true)
    }

    pub fn next_message(&mut self) -> Option<(Instance, Vec<u8>)> {
        self.messages.pop_front()
    }

    /// Takes the flag `flag` of `instance` if it was seen set.
    pub fn take_event(&mut self, instance: Instance, flag: u32) -> bool {
        self.events.remove(&(instance.get(), flag)).is_some()
    }

    /// Before halting: asks synic-pd to notify on its next interrupt request;
    /// `false` when one came meanwhile (service again instead).
    pub fn prepare_to_sleep(&mut self) -> Result<bool> {
        self.irqs
            .prepare_to_sleep()
            .map_err(|e| Failure(format!("interrupt queue: {e}")))
    }

    pub fn has_message(&self) -> bool {
        !self.messages.is_empty()
    }
}
