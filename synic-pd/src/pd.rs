//! synic-pd as an `ipc` protection domain.
//!
//! What system.xml must grant (names are the `setvar_vaddr`/`setvar` names):
//! - region [`GUEST_RAM`] (rw) and variable [`GUEST_RAM_GPA`]: guest RAM holding the
//!   SIM/SIEF pages; optionally [`GUEST_SHARED`] + [`GUEST_SHARED_GPA`], the shared
//!   (host-visible) alias where the hypervisor-relay instance's pages live on SNP;
//! - region [`IRQ_QUEUE`] (rw): an `ipc::queue` of [`IrqEntry`] with
//!   [`IRQ_QUEUE_CAPACITY`] entries, consumed by the vCPU PD;
//! - variables [`VP_COUNT`], [`VCPU_CHANNEL`] (the channel to notify the vCPU PD on)
//!   and three channel bitmasks saying who may do what: [`MSR_CHANNELS`] (RDMSR/WRMSR,
//!   the vCPU PD), [`DELIVER_PV_CHANNELS`] and [`DELIVER_HV_CHANNELS`] (post/signal
//!   into the paravisor or the hypervisor-relay instance). Optionally two more narrow
//!   the kind of delivery: [`POST_CHANNELS`] (messages) and [`SIGNAL_CHANNELS`]
//!   (event flags); without them every deliverer may do both. A peer calling outside
//!   its role is refused, so e.g. a VSP cannot rewrite the guest's SINTs or post
//!   into its message slots.
//!
//! - optionally [`GRANT_CHANNEL`] (vmbus-server) and [`VSP_CHANNEL_VARS`]: the
//!   channel of VSP slot `i` as vmbus-server numbers its VSPs. A VSP channel may set
//!   only the event flags vmbus-server granted it for its open channels
//!   ([`vsp_api::ChannelGrants`]); anything else is answered ACCESS_DENIED, from
//!   the first call on, before vmbus-server has granted anything.
//!
//! A post refused with INSUFFICIENT_BUFFERS (the SINT's queue is full) earns the
//! poster a notification on its channel once the guest writes a SynIC MSR again
//! (EOM frees queue room), where the system grants synic-pd that notify right.

use hvdef::HvStatus;
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, HandlerReply, Init, InitError, InitExt, Kernel,
    MessageInfo, MessageRegisters, PpCall, Producer, QueueError, TryEnqueueError,
};

use synic_api::{DeliveryReply, GrantStatus, MsrReply, SintTarget};

use crate::api::{IrqEntry, Request};
use vsp_api::{ChannelGrants, GrantError, VspChannels};

use crate::synic::{Instance, InterruptRequest, InterruptSink, MsrError, PostOutcome, Synic};
use isolation::{GpaClass, GuestMemory};

pub use ipc::guest_names::*;
pub const IRQ_QUEUE: &str = "irq_queue";
pub use synic_api::IRQ_QUEUE_CAPACITY;
pub const VCPU_CHANNEL: &str = "vcpu_channel";
pub const MSR_CHANNELS: &str = "msr_channels";
pub const DELIVER_PV_CHANNELS: &str = "deliver_pv_channels";
pub const DELIVER_HV_CHANNELS: &str = "deliver_hv_channels";
pub const POST_CHANNELS: &str = "post_channels";
pub const SIGNAL_CHANNELS: &str = "signal_channels";
pub use vsp_api::{GRANT_CHANNEL, VSP_CHANNEL_VARS};

/// Interrupt requests that did not fit in the queue, coalesced per (VP, vector):
/// interrupts are edge-triggered, so two pending requests for one vector are one.
struct Overflow<const VPS: usize> {
    pending: [[u64; 4]; VPS],
    auto_eoi: [[u64; 4]; VPS],
    any: bool,
}

impl<const VPS: usize> Overflow<VPS> {
    fn new() -> Self {
        Self {
            pending: [[0; 4]; VPS],
            auto_eoi: [[0; 4]; VPS],
            any: false,
        }
    }

    fn add(&mut self, e: IrqEntry) {
        let (w, b) = ((e.vector / 64) as usize, e.vector % 64);
        if let (Some(p), Some(a)) = (
            self.pending.get_mut(e.vp as usize),
            self.auto_eoi.get_mut(e.vp as usize),
        ) {
            p[w] |= 1 << b;
            if e.auto_eoi() {
                a[w] |= 1 << b;
            } else {
                a[w] &= !(1 << b);
            }
            self.any = true;
        }
    }
}

/// The interrupt output: queue first, coalescing overflow when the vCPU PD lags.
struct IrqOut<'q, const VPS: usize> {
    queue: &'q mut Producer<'static, IrqEntry>,
    overflow: &'q mut Overflow<VPS>,
    error: Option<QueueError>,
}

impl<const VPS: usize> InterruptSink for IrqOut<'_, VPS> {
    fn request_interrupt(&mut self, request: InterruptRequest) {
        let entry = IrqEntry::from(request);
        if self.overflow.any {
            // Keep order simple: once anything overflowed, new requests join it
            // until the backlog drains.
            self.overflow.add(entry);
            return;
        }
        match self.queue.try_enqueue(entry) {
            Ok(()) => {}
            Err(TryEnqueueError::Full(e)) => {
                self.overflow.add(e);
                // The vCPU PD notifies us once it has made room.
                self.queue.request_signal();
            }
            Err(TryEnqueueError::Queue(e)) => self.error = Some(e),
        }
    }
}

pub struct SynicPd<const VPS: usize, const DEPTH: usize> {
    synic: Synic<VPS, DEPTH>,
    mem: GuestMemory<'static>,
    irq_queue: Producer<'static, IrqEntry>,
    overflow: Overflow<VPS>,
    vcpu: Channel,
    msr_channels: ChannelSet,
    deliver: [ChannelSet; Instance::COUNT],
    post_channels: ChannelSet,
    signal_channels: ChannelSet,
    /// Posters refused with INSUFFICIENT_BUFFERS since the guest last wrote a SynIC
    /// MSR. They are notified on the next write (EOM frees a queue entry), so a
    /// poster that queues its message and waits never waits for ever.
    refused: ChannelSet,
    /// Which channel is which VSP slot; vmbus-server alone grants.
    vsps: VspChannels,
    /// The event flag (and its target) each VSP channel was granted; a flag on a
    /// SINT belongs to one channel.
    grants: ChannelGrants<(SintTarget, u32)>,
}

ipc::debug_fields!(SynicPd<VPS, DEPTH>: synic, vcpu, msr_channels, deliver, ..);

/// An optional role mask: absent means every channel.
fn optional_set(init: &dyn Init, name: &'static str) -> Result<ChannelSet, InitError> {
    Ok(init
        .optional(init.channel_set(name))?
        .unwrap_or(ChannelSet::from_bits(u64::MAX)))
}

impl<const VPS: usize, const DEPTH: usize> SynicPd<VPS, DEPTH> {
    pub fn init(init: &dyn Init) -> Result<Self, InitError> {
        let vp_count = init.variable(VP_COUNT)?;
        let synic = u32::try_from(vp_count)
            .ok()
            .and_then(|n| Synic::new(n).ok())
            .ok_or(InitError::InvalidVariable {
                name: VP_COUNT,
                value: vp_count,
            })?;

        let mut mem = GuestMemory::new();
        let windows = init.guest_windows()?;
        let shared = windows.shared.map(|w| (w, GpaClass::Shared));
        for (window, class) in core::iter::once((windows.ram, GpaClass::Private)).chain(shared) {
            mem.add(window.gpa, window.region, class)
                .map_err(|_| window.refused())?;
        }

        Ok(Self {
            synic,
            mem,
            irq_queue: init.queue(IRQ_QUEUE, IRQ_QUEUE_CAPACITY)?,
            overflow: Overflow::new(),
            vcpu: init.channel(VCPU_CHANNEL)?,
            msr_channels: init.channel_set(MSR_CHANNELS)?,
            deliver: [
                init.channel_set(DELIVER_PV_CHANNELS)?,
                init.channel_set(DELIVER_HV_CHANNELS)?,
            ],
            post_channels: optional_set(init, POST_CHANNELS)?,
            signal_channels: optional_set(init, SIGNAL_CHANNELS)?,
            refused: ChannelSet::EMPTY,
            vsps: VspChannels::init(init)?,
            grants: ChannelGrants::new(|(a, fa), (b, fb)| {
                (a.instance, a.sint, fa) == (b.instance, b.sint, fb)
            }),
        })
    }

    /// The state machine, for in-process harnesses and benchmarks.
    pub fn synic(&self) -> &Synic<VPS, DEPTH> {
        &self.synic
    }

    /// GRANT_EVENT/REVOKE_EVENT, answered with a [`GrantStatus`] label.
    fn grant(&mut self, ch: Channel, req: &Request) -> GrantStatus {
        if !self.vsps.is_authority(ch) {
            return GrantStatus::NotPermitted;
        }
        match *req {
            Request::GrantEvent {
                vsp,
                relid,
                target,
                flag,
            } => {
                let vsp_known = self.vsps.channel(vsp).is_some();
                let target_ok = target.vp < self.synic.vp_count()
                    && (target.sint as usize) < hvdef::message::NUM_SINTS
                    && flag < hvdef::message::SINT_EVENT_FLAGS;
                if !(vsp_known && target_ok) {
                    return GrantStatus::Invalid;
                }
                match self.grants.grant(vsp, relid, (target, flag)) {
                    Ok(()) => GrantStatus::Ok,
                    Err(GrantError::Full) => GrantStatus::Full,
                    Err(GrantError::Taken | GrantError::NotFound) => GrantStatus::Invalid,
                }
            }
            Request::RevokeEvent { vsp, relid } => match self.grants.revoke(vsp, relid) {
                Ok(_) => GrantStatus::Ok,
                Err(_) => GrantStatus::Invalid,
            },
            _ => GrantStatus::Invalid,
        }
    }

    /// A VSP's signal outside what vmbus-server granted its channels.
    fn signal_denied(&self, ch: Channel, req: &Request) -> bool {
        match (req, self.vsps.slot_of(ch)) {
            (Request::SignalEvent { target, flag }, Some(vsp)) => !self
                .grants
                .holds(vsp, |&granted| granted == (*target, *flag)),
            _ => false,
        }
    }

    fn allowed(&self, ch: Channel, req: &Request) -> bool {
        match req {
            Request::GrantEvent { .. } | Request::RevokeEvent { .. } => true,
            Request::ReadMsr { .. } | Request::WriteMsr { .. } => self.msr_channels.contains(ch),
            Request::PostMessage { target, .. } | Request::SignalEvent { target, .. } => {
                let kind = if matches!(req, Request::PostMessage { .. }) {
                    self.post_channels
                } else {
                    self.signal_channels
                };
                kind.contains(ch)
                    && self
                        .deliver
                        .get(target.instance.get() as usize)
                        .is_some_and(|set| set.contains(ch))
            }
        }
    }

    /// Moves coalesced requests into the queue as far as it has room.
    fn drain_overflow(&mut self) -> Result<(), QueueError> {
        if !self.overflow.any {
            return Ok(());
        }
        for vp in 0..VPS {
            for w in 0..4 {
                while self.overflow.pending[vp][w] != 0 {
                    let b = self.overflow.pending[vp][w].trailing_zeros();
                    let auto = self.overflow.auto_eoi[vp][w] & (1 << b) != 0;
                    let entry = IrqEntry {
                        vp: vp as u32,
                        vector: (w as u32 * 64 + b) as u8,
                        flags: if auto { IrqEntry::FLAG_AUTO_EOI } else { 0 },
                        instance: IrqEntry::UNKNOWN,
                        sint: IrqEntry::UNKNOWN,
                    };
                    match self.irq_queue.try_enqueue(entry) {
                        Ok(()) => self.overflow.pending[vp][w] &= !(1 << b),
                        Err(TryEnqueueError::Full(_)) => {
                            self.irq_queue.request_signal();
                            return Ok(());
                        }
                        Err(TryEnqueueError::Queue(e)) => return Err(e),
                    }
                }
            }
        }
        self.overflow.any = false;
        Ok(())
    }

    /// Tells refused posters to try again. A poster whose channel grants synic-pd
    /// no notify right gets nothing and retries on its own schedule (hvcall-pd:
    /// the guest retries its HvPostMessage).
    fn wake_refused(&mut self, kernel: &mut dyn Kernel) {
        for ch in core::mem::take(&mut self.refused).iter() {
            let _ = ch.notify(kernel);
        }
    }

    fn kick_vcpu(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        if self.irq_queue.take_signal_request() {
            self.vcpu.notify(kernel)?;
        }
        Ok(())
    }

    fn queue_error(&self, e: QueueError) -> HandlerError {
        match e {
            QueueError::Region(r) => HandlerError::Region(r),
            _ => HandlerError::PeerMisbehaved(self.vcpu),
        }
    }
}

impl<const VPS: usize, const DEPTH: usize> Handler for SynicPd<VPS, DEPTH> {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        channels.only_from(|ch| ch == self.vcpu)?;
        // The vCPU PD made room in the interrupt queue.
        self.drain_overflow().map_err(|e| self.queue_error(e))?;
        self.kick_vcpu(kernel)
    }

    fn protected(&mut self, kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        let req = Request::decode(call.msg, call.mrs).map_err(|_| call.bad_request())?;
        if !self.allowed(call.ch, &req) {
            return Err(call.unexpected());
        }
        let PpCall { ch, msg, mrs } = call;
        if matches!(
            req,
            Request::GrantEvent { .. } | Request::RevokeEvent { .. }
        ) {
            return Ok(self.grant(ch, &req).encode(mrs));
        }
        if self.signal_denied(ch, &req) {
            return Ok(DeliveryReply::from_result(Err(HvStatus::ACCESS_DENIED)).encode(mrs));
        }
        let (is_post, is_msr_write) = (
            matches!(req, Request::PostMessage { .. }),
            matches!(req, Request::WriteMsr { .. }),
        );
        let Self {
            synic,
            mem,
            irq_queue,
            overflow,
            ..
        } = self;
        let mut out = IrqOut {
            queue: irq_queue,
            overflow,
            error: None,
        };
        let reply = dispatch(synic, mem, ch, msg.label(), req, mrs, &mut out);
        if let Some(e) = out.error {
            return Err(self.queue_error(e));
        }
        let refused = |info: &MessageInfo| {
            DeliveryReply::decode(*info, mrs)
                .is_ok_and(|r| r.status == HvStatus::INSUFFICIENT_BUFFERS)
        };
        if is_post && reply.as_ref().is_ok_and(refused) {
            self.refused.insert(ch);
        }
        if is_msr_write && reply.is_ok() {
            self.wake_refused(kernel);
        }
        self.kick_vcpu(kernel)?;
        reply
    }
}

/// Handles one decoded request; the reply goes into `mrs`.
fn dispatch<const VPS: usize, const DEPTH: usize>(
    synic: &mut Synic<VPS, DEPTH>,
    mem: &GuestMemory<'_>,
    ch: Channel,
    label: u64,
    req: Request,
    mrs: &mut MessageRegisters,
    out: &mut IrqOut<'_, VPS>,
) -> Result<MessageInfo, HandlerError> {
    let bad = HandlerError::BadRequest { channel: ch, label };
    let msr_reply = |r: Result<u64, MsrError>, mrs: &mut MessageRegisters| match r {
        Ok(value) => Ok(MsrReply::Ok { value }.encode(mrs)),
        Err(MsrError::Gp) => Ok(MsrReply::Gp.encode(mrs)),
        Err(MsrError::NotSynic) => Ok(MsrReply::NotSynic.encode(mrs)),
        Err(MsrError::InvalidVp) => Err(bad),
    };
    match req {
        Request::ReadMsr { vp, instance, msr } => msr_reply(synic.read_msr(vp, instance, msr), mrs),
        Request::WriteMsr {
            vp,
            instance,
            msr,
            value,
        } => {
            let r = synic
                .write_msr(mem, out, vp, instance, msr, value)
                .map(|()| 0);
            msr_reply(r, mrs)
        }
        Request::PostMessage { target, message } => {
            let r = synic.post_message(mem, out, target, &message);
            Ok(DeliveryReply::from_result(r.map(|o| o == PostOutcome::Queued)).encode(mrs))
        }
        Request::SignalEvent { target, flag } => {
            let r = synic.signal_event(mem, out, target, flag);
            Ok(DeliveryReply::from_result(r).encode(mrs))
        }
        // Answered before dispatch.
        Request::GrantEvent { .. } | Request::RevokeEvent { .. } => Err(bad),
    }
}
