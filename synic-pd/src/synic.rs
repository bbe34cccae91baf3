//! The SynIC state machine: per-VP, per-instance registers, message slots with the
//! pending-flag/EOM protocol, and event flags. Sans-IO: guest memory comes in as
//! [`GuestMemory`] and interrupts go out through an [`InterruptSink`].
//!
//! The message page is shared with a running guest, so every slot update is ordered
//! the way the guest's reader expects (Linux `vmbus_on_msg_dpc`): the body is written
//! first and the type last with release semantics, and the guest frees a slot by
//! storing `HVMSG_NONE` and then reading the pending flag. Setting the pending flag
//! is the mirror image: store the flag, full fence, re-read the type. Whichever side
//! is second sees the other's store, so a queued message is never stranded.

use core::sync::atomic::{fence, Ordering};

use heapless::Deque;
use hvdef::message::{
    HvMessage, HvMessageHeader, HvMessageType, HV_MESSAGE_FLAG_PENDING, HV_MESSAGE_SIZE, NUM_SINTS,
    SINT_EVENT_FLAGS, SINT_EVENT_FLAGS_BYTES,
};
use hvdef::msr::{
    sint_index, HV_X64_MSR_EOM, HV_X64_MSR_SCONTROL, HV_X64_MSR_SIEFP, HV_X64_MSR_SIMP,
    HV_X64_MSR_SVERSION,
};
use hvdef::synic::{ScontrolRegister, SimpSiefpRegister, SintRegister, SYNIC_VERSION};
use hvdef::HvStatus;
use ipc::Region;
use zerocopy::IntoBytes;

use synic_api::IrqEntry;
pub use synic_api::{Instance, PostOutcome, SintTarget};

use isolation::GuestMemory;

/// SIM and SIEF pages are whole 4 KiB guest pages (their base GPAs are aligned).
const PAGE: usize = hvdef::HV_PAGE_SIZE as usize;

/// A request for the vCPU PD to raise `vector` on `vp`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct InterruptRequest {
    pub vp: u32,
    pub vector: u8,
    /// The SINT is auto-EOI: the vCPU PD must not wait for an EOI from the guest.
    pub auto_eoi: bool,
    pub instance: Instance,
    pub sint: u8,
}

impl From<InterruptRequest> for IrqEntry {
    fn from(r: InterruptRequest) -> Self {
        Self {
            vp: r.vp,
            vector: r.vector,
            flags: if r.auto_eoi { Self::FLAG_AUTO_EOI } else { 0 },
            instance: r.instance.get(),
            sint: r.sint,
        }
    }
}

/// Where interrupt requests go; the PD backs it with a queue to the vCPU PD.
pub trait InterruptSink {
    fn request_interrupt(&mut self, request: InterruptRequest);
}

/// Why an MSR access did not complete.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MsrError {
    /// Not a SynIC MSR; the vCPU PD must look elsewhere.
    NotSynic,
    /// The access is architecturally invalid: inject #GP into the guest.
    Gp,
    /// The VP index is beyond the configured VP count (a peer bug, not a guest one).
    InvalidVp,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// The configured VP count is zero or exceeds the compiled-in maximum.
    VpCount { requested: u32, max: usize },
}

/// One SynIC instance of one VP.
struct SynicState<const DEPTH: usize> {
    scontrol: ScontrolRegister,
    simp: SimpSiefpRegister,
    siefp: SimpSiefpRegister,
    sints: [SintRegister; NUM_SINTS],
    queues: [Deque<HvMessage, DEPTH>; NUM_SINTS],
}

impl<const DEPTH: usize> SynicState<DEPTH> {
    fn at_reset() -> Self {
        Self {
            scontrol: ScontrolRegister::AT_RESET,
            simp: SimpSiefpRegister::AT_RESET,
            siefp: SimpSiefpRegister::AT_RESET,
            sints: [SintRegister::AT_RESET; NUM_SINTS],
            queues: core::array::from_fn(|_| Deque::new()),
        }
    }

    /// Whether messages for `sint` can be written now (they stay queued otherwise).
    fn message_path_open(&self, sint: usize) -> bool {
        self.scontrol.enabled() && self.simp.enabled() && !self.sints[sint].masked()
    }

    fn event_path_open(&self, sint: usize) -> bool {
        self.scontrol.enabled() && self.siefp.enabled() && !self.sints[sint].masked()
    }
}

/// The SynICs of up to `VPS` VPs, each with a `DEPTH`-message queue per SINT.
pub struct Synic<const VPS: usize, const DEPTH: usize> {
    vp_count: u32,
    vps: [[SynicState<DEPTH>; Instance::COUNT]; VPS],
}

impl<const VPS: usize, const DEPTH: usize> core::fmt::Debug for Synic<VPS, DEPTH> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Synic")
            .field("vp_count", &self.vp_count)
            .field("queue_depth", &DEPTH)
            .finish_non_exhaustive()
    }
}

impl<const VPS: usize, const DEPTH: usize> Synic<VPS, DEPTH> {
    pub fn new(vp_count: u32) -> Result<Self, ConfigError> {
        if vp_count == 0 || vp_count as usize > VPS {
            return Err(ConfigError::VpCount {
                requested: vp_count,
                max: VPS,
            });
        }
        Ok(Self {
            vp_count,
            vps: core::array::from_fn(|_| core::array::from_fn(|_| SynicState::at_reset())),
        })
    }

    pub fn vp_count(&self) -> u32 {
        self.vp_count
    }

    fn state(&self, vp: u32, instance: Instance) -> Option<&SynicState<DEPTH>> {
        if vp >= self.vp_count {
            return None;
        }
        self.vps.get(vp as usize)?.get(instance.index())
    }

    fn state_mut(&mut self, vp: u32, instance: Instance) -> Option<&mut SynicState<DEPTH>> {
        if vp >= self.vp_count {
            return None;
        }
        self.vps.get_mut(vp as usize)?.get_mut(instance.index())
    }

    /// Messages waiting in a SINT's queue (for tests and diagnostics).
    pub fn queued(&self, target: SintTarget) -> usize {
        self.state(target.vp, target.instance)
            .and_then(|s| s.queues.get(target.sint as usize))
            .map_or(0, |q| q.len())
    }

    pub fn read_msr(&self, vp: u32, instance: Instance, msr: u32) -> Result<u64, MsrError> {
        if !hvdef::msr::is_synic_msr(msr) {
            return Err(MsrError::NotSynic);
        }
        let s = self.state(vp, instance).ok_or(MsrError::InvalidVp)?;
        Ok(match msr {
            HV_X64_MSR_SCONTROL => s.scontrol.0,
            HV_X64_MSR_SVERSION => SYNIC_VERSION,
            HV_X64_MSR_SIEFP => s.siefp.0,
            HV_X64_MSR_SIMP => s.simp.0,
            // EOM is a write-only doorbell.
            HV_X64_MSR_EOM => 0,
            _ => match sint_index(msr) {
                Some(i) => s.sints[i as usize].0,
                None => return Err(MsrError::NotSynic),
            },
        })
    }

    pub fn write_msr(
        &mut self,
        mem: &GuestMemory<'_>,
        irq: &mut dyn InterruptSink,
        vp: u32,
        instance: Instance,
        msr: u32,
        value: u64,
    ) -> Result<(), MsrError> {
        if !hvdef::msr::is_synic_msr(msr) {
            return Err(MsrError::NotSynic);
        }
        let s = self.state_mut(vp, instance).ok_or(MsrError::InvalidVp)?;
        match msr {
            HV_X64_MSR_SVERSION => return Err(MsrError::Gp),
            HV_X64_MSR_SCONTROL => {
                let v = ScontrolRegister(value);
                if value & ScontrolRegister::RESERVED_MASK != 0 {
                    return Err(MsrError::Gp);
                }
                s.scontrol = v;
            }
            HV_X64_MSR_SIMP | HV_X64_MSR_SIEFP => {
                let v = SimpSiefpRegister(value);
                if value & SimpSiefpRegister::RESERVED_MASK != 0 {
                    return Err(MsrError::Gp);
                }
                let old = if msr == HV_X64_MSR_SIMP {
                    s.simp
                } else {
                    s.siefp
                };
                if v.enabled() {
                    // An overlay page must be real guest RAM this PD can reach.
                    let page = mem.range(v.base_gpa(), PAGE).ok_or(MsrError::Gp)?;
                    // A freshly enabled or moved page starts empty: no stale slots
                    // or flags from whatever the guest kept there.
                    if !old.enabled() || old.base_gpa() != v.base_gpa() {
                        page.fill(0, page.len(), 0).map_err(|_| MsrError::Gp)?;
                    }
                }
                if msr == HV_X64_MSR_SIMP {
                    s.simp = v;
                } else {
                    s.siefp = v;
                }
            }
            HV_X64_MSR_EOM => {}
            _ => {
                let i = sint_index(msr).ok_or(MsrError::NotSynic)? as usize;
                let v = SintRegister(value);
                if !v.is_valid_write() {
                    return Err(MsrError::Gp);
                }
                s.sints[i] = v;
            }
        }
        // Every write that can open a path (or EOM, which frees a slot) retries the
        // queued messages, so nothing waits for a later, unrelated post.
        for sint in 0..NUM_SINTS as u8 {
            self.pump(mem, irq, SintTarget { vp, instance, sint });
        }
        Ok(())
    }

    /// Posts `message` to `target`. Flags in the caller's header are ignored.
    pub fn post_message(
        &mut self,
        mem: &GuestMemory<'_>,
        irq: &mut dyn InterruptSink,
        target: SintTarget,
        message: &HvMessage,
    ) -> Result<PostOutcome, HvStatus> {
        if message.header.message_type == HvMessageType::NONE
            || message.header.payload_size as usize > message.payload.len()
        {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        let sint = target.sint as usize;
        let s = self
            .state(target.vp, target.instance)
            .ok_or(HvStatus::INVALID_VP_INDEX)?;
        if sint >= NUM_SINTS {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        // Drain first so a queue that the guest has meanwhile made room for does not
        // refuse the post.
        if !s.queues[sint].is_empty() {
            self.pump(mem, irq, target);
        }
        let mut msg = *message;
        msg.header.flags = 0;
        msg.header.reserved = 0;
        let queue = self
            .state_mut(target.vp, target.instance)
            .and_then(|s| s.queues.get_mut(sint))
            .ok_or(HvStatus::INVALID_VP_INDEX)?;
        queue
            .push_back(msg)
            .map_err(|_| HvStatus::INSUFFICIENT_BUFFERS)?;
        self.pump(mem, irq, target);
        // FIFO with this message at the back: it is out only if all are.
        if self.queued(target) == 0 {
            Ok(PostOutcome::Delivered)
        } else {
            Ok(PostOutcome::Queued)
        }
    }

    /// Sets event flag `flag` of `target`. `Ok(true)` if it went from 0 to 1 (and an
    /// interrupt was requested unless the SINT polls).
    pub fn signal_event(
        &mut self,
        mem: &GuestMemory<'_>,
        irq: &mut dyn InterruptSink,
        target: SintTarget,
        flag: u32,
    ) -> Result<bool, HvStatus> {
        if flag >= SINT_EVENT_FLAGS || target.sint as usize >= NUM_SINTS {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        let s = self
            .state(target.vp, target.instance)
            .ok_or(HvStatus::INVALID_VP_INDEX)?;
        let sint = target.sint as usize;
        if !s.event_path_open(sint) {
            return Ok(false);
        }
        let Some(page) = mem.range(s.siefp.base_gpa(), PAGE) else {
            return Ok(false);
        };
        let byte = sint * SINT_EVENT_FLAGS_BYTES + (flag / 8) as usize;
        let word_offset = byte & !3;
        let bit = 1u32 << ((byte & 3) * 8 + (flag % 8) as usize);
        let Ok(word) = page.atomic_u32(word_offset) else {
            return Ok(false);
        };
        // AcqRel: the guest's read of the flags after the interrupt sees this bit,
        // and everything the signaller wrote before signalling.
        if word.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Ok(false);
        }
        raise(irq, target, s.sints[sint]);
        Ok(true)
    }

    /// Moves queued messages of `target` into its slot while the slot is free.
    fn pump(&mut self, mem: &GuestMemory<'_>, irq: &mut dyn InterruptSink, target: SintTarget) {
        let sint = target.sint as usize;
        let Some(s) = self.state_mut(target.vp, target.instance) else {
            return;
        };
        if sint >= NUM_SINTS || s.queues[sint].is_empty() || !s.message_path_open(sint) {
            return;
        }
        let Some(page) = mem.range(s.simp.base_gpa(), PAGE) else {
            return;
        };
        let Ok(slot) = page.subregion(sint * HV_MESSAGE_SIZE, HV_MESSAGE_SIZE) else {
            return;
        };
        let sint_reg = s.sints[sint];
        let queue = &mut s.queues[sint];
        while !queue.is_empty() {
            match slot_is_free(slot) {
                Some(true) => {}
                Some(false) => return,
                None => return,
            }
            let Some(mut msg) = queue.pop_front() else {
                return;
            };
            if !queue.is_empty() {
                // More are waiting: ask the guest to EOM once it has read this one.
                msg.header.flags |= HV_MESSAGE_FLAG_PENDING;
            }
            if write_slot(slot, &msg).is_err() {
                return;
            }
            raise(irq, target, sint_reg);
        }
    }
}

fn raise(irq: &mut dyn InterruptSink, target: SintTarget, sint: SintRegister) {
    if sint.masked() || sint.polling() {
        return;
    }
    irq.request_interrupt(InterruptRequest {
        vp: target.vp,
        vector: sint.vector(),
        auto_eoi: sint.auto_eoi(),
        instance: target.instance,
        sint: target.sint,
    });
}

/// `Some(true)` if the slot is empty. If it is busy, marks it pending so the guest
/// writes EOM after freeing it, then re-checks in case the guest freed it first.
fn slot_is_free(slot: Region<'_>) -> Option<bool> {
    let ty = slot.atomic_u32(HvMessageHeader::TYPE_OFFSET).ok()?;
    if ty.load(Ordering::Acquire) == HvMessageType::NONE.0 {
        return Some(true);
    }
    let flags = slot
        .atomic_u32(HvMessageHeader::SIZE_FLAGS_WORD_OFFSET)
        .ok()?;
    flags.fetch_or(
        (HV_MESSAGE_FLAG_PENDING as u32) << HvMessageHeader::FLAGS_SHIFT_IN_WORD,
        Ordering::Relaxed,
    );
    fence(Ordering::SeqCst);
    Some(ty.load(Ordering::Acquire) == HvMessageType::NONE.0)
}

/// Writes `msg` into a free slot: body first, type last with release ordering, so a
/// guest that sees the type sees the whole message.
fn write_slot(slot: Region<'_>, msg: &HvMessage) -> Result<(), ipc::RegionError> {
    let bytes = msg.as_bytes();
    slot.write_bytes(4, &bytes[4..])?;
    let ty = slot.atomic_u32(HvMessageHeader::TYPE_OFFSET)?;
    ty.store(msg.header.message_type.0, Ordering::Release);
    Ok(())
}
