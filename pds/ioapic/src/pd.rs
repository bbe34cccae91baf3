//! The ioapic PD: the [`Ioapic`] core behind the `ipc` runtime.
//!
//! What system configuration must grant (names are the `setvar_vaddr`/`setvar`
//! names, or constants an entry point supplies):
//! - region [`IRQ_QUEUE`] (rw): an `ipc::queue` of [`IrqEntry`] with
//!   [`IRQ_QUEUE_CAPACITY`] entries, consumed by the vCPU PD;
//! - variable [`VCPU_CHANNEL`]: the channel to the vCPU PD. Only it may access the
//!   registers or send EOIs; this PD notifies it when the queue gains entries (if it
//!   asked), and it notifies this PD when it frees room (if this PD asked);
//! - variables [`LINE_GRANTS`]`[id]` (optional, one per channel id): the bit mask of
//!   input lines the peer on that channel may drive. A channel without one drives
//!   nothing;
//! - optional [`IOAPIC_ID`] (default 0) and [`IOAPIC_VERSION`] (0x11, the default,
//!   or 0x20 with the EOI register).
//!
//! An interrupt request that does not fit in the queue stays pending in the core
//! (delivery status 1, visible to the guest) and is retried on every later event;
//! this PD asks the vCPU PD to signal when it frees room, so one comes.

use ipc::{
    Channel, ChannelSet, Handler, HandlerError, Init, InitError, InitExt, Kernel, MessageInfo,
    MessageRegisters, Perms, PpCall, Producer, Queue, QueueError, TryEnqueueError,
};

use crate::api::{IrqEntry, LineAction, Request, Status};
use crate::{
    InterruptRequest, InterruptSink, Ioapic, SinkFull, NUM_PINS, VERSION_82093AA, VERSION_WITH_EOI,
};
use mmio_device_api::Answer;

pub const IRQ_QUEUE: &str = "irq_queue";
/// Each pin has at most one level request outstanding (remote IRR), so this only
/// bounds how many edges a lagging vCPU PD can owe before they coalesce.
pub const IRQ_QUEUE_CAPACITY: u32 = 64;
pub const VCPU_CHANNEL: &str = "vcpu_channel";
pub const IOAPIC_ID: &str = "ioapic_id";
pub const IOAPIC_VERSION: &str = "ioapic_version";

const CHANNELS: usize = Channel::MAX_ID as usize + 1;

macro_rules! line_grant_names {
    ($($id:literal)*) => { [$(concat!("lines_", stringify!($id))),*] };
}

/// `LINE_GRANTS[id]` names the variable holding channel `id`'s line mask.
pub const LINE_GRANTS: [&str; CHANNELS] = line_grant_names!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
    31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58
    59 60 61
);

/// The variable naming `ch`'s line mask.
pub fn line_grant_variable(ch: Channel) -> &'static str {
    LINE_GRANTS
        .get(usize::from(ch.index()))
        .copied()
        .unwrap_or("lines_?")
}

/// Per-channel refusals logged before only powers of two are.
const LOG_FIRST_REFUSALS: u32 = 8;

/// Counters for logs and tests.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PdStats {
    /// Requests answered with an error status.
    pub refused: u64,
    /// Events on which the interrupt queue was found corrupt.
    pub queue_errors: u64,
    /// Notifications sent to the vCPU PD.
    pub notifications: u64,
}

/// The interrupt output: the queue, asking the vCPU PD for room when it is full.
struct QueueSink<'a> {
    queue: &'a mut Producer<'static, IrqEntry>,
    error: &'a mut Option<QueueError>,
}

impl InterruptSink for QueueSink<'_> {
    fn deliver(&mut self, request: InterruptRequest) -> Result<(), SinkFull> {
        if self.error.is_some() {
            return Err(SinkFull);
        }
        let entry = IrqEntry::from(request);
        // Twice at most: once, and once more if room appeared while we asked for a
        // signal (the re-check that keeps the wake-up from being lost).
        for _ in 0..2 {
            match self.queue.try_enqueue(entry) {
                Ok(()) => return Ok(()),
                Err(TryEnqueueError::Full(_)) => match self.queue.prepare_to_sleep() {
                    Ok(true) => return Err(SinkFull),
                    Ok(false) => {}
                    Err(e) => {
                        *self.error = Some(e);
                        return Err(SinkFull);
                    }
                },
                Err(TryEnqueueError::Queue(e)) => {
                    *self.error = Some(e);
                    return Err(SinkFull);
                }
            }
        }
        Err(SinkFull)
    }
}

pub struct IoapicPd {
    ioapic: Ioapic,
    queue: Producer<'static, IrqEntry>,
    vcpu: Channel,
    /// Lines each channel may drive.
    granted: [u32; CHANNELS],
    /// Lines each channel drives now; a pin's level is the OR over channels, so a
    /// line shared by two devices stays asserted until both let go.
    driven: [u32; CHANNELS],
    refusals: [u32; CHANNELS],
    queue_error_events: u32,
    stats: PdStats,
}

ipc::debug_fields!(IoapicPd: ioapic, vcpu, stats, ..);

impl IoapicPd {
    pub fn init(init: &dyn Init) -> Result<Self, InitError> {
        let vcpu = init.channel(VCPU_CHANNEL)?;
        let id = init.optional(init.variable(IOAPIC_ID))?.unwrap_or(0);
        if id > 0x0f {
            return Err(InitError::InvalidVariable {
                name: IOAPIC_ID,
                value: id,
            });
        }
        let version = init
            .optional(init.variable(IOAPIC_VERSION))?
            .unwrap_or(u64::from(VERSION_82093AA));
        if version != u64::from(VERSION_82093AA) && version != u64::from(VERSION_WITH_EOI) {
            return Err(InitError::InvalidVariable {
                name: IOAPIC_VERSION,
                value: version,
            });
        }

        let mut granted = [0u32; CHANNELS];
        for (slot, &name) in granted.iter_mut().zip(LINE_GRANTS.iter()) {
            if let Some(mask) = init.optional(init.variable(name))? {
                *slot = u32::try_from(mask)
                    .ok()
                    .filter(|m| m >> NUM_PINS == 0)
                    .ok_or(InitError::InvalidVariable { name, value: mask })?;
            }
        }

        let region = init.region_with(IRQ_QUEUE, Perms::RW)?;
        let queue = Producer::new(region, IRQ_QUEUE_CAPACITY).map_err(|e| match e {
            // The runtime hands out zero-filled regions; impossible indices at
            // attach mean the consumer scribbled on it before we started.
            QueueError::PeerMisbehaved { peer_index, .. } => InitError::InvalidVariable {
                name: IRQ_QUEUE,
                value: u64::from(peer_index),
            },
            _ => InitError::RegionTooSmall {
                name: IRQ_QUEUE,
                needed: Queue::<IrqEntry>::layout_size(IRQ_QUEUE_CAPACITY).unwrap_or(usize::MAX),
                granted: region.len(),
            },
        })?;

        Ok(Self {
            ioapic: Ioapic::new(id as u8, version as u8),
            queue,
            vcpu,
            granted,
            driven: [0; CHANNELS],
            refusals: [0; CHANNELS],
            queue_error_events: 0,
            stats: PdStats::default(),
        })
    }

    /// The core state, for tests and harnesses.
    pub fn ioapic(&self) -> &Ioapic {
        &self.ioapic
    }

    pub fn stats(&self) -> PdStats {
        self.stats
    }

    /// The lines `ch` may drive.
    pub fn granted_lines(&self, ch: Channel) -> u32 {
        self.granted
            .get(usize::from(ch.index()))
            .copied()
            .unwrap_or(0)
    }

    /// Runs `f` on the core with the queue as its sink; returns the queue error the
    /// sink met, if any.
    fn with_sink<R>(
        &mut self,
        f: impl FnOnce(&mut Ioapic, &mut QueueSink<'_>) -> R,
    ) -> (R, Option<QueueError>) {
        let mut error = None;
        let mut sink = QueueSink {
            queue: &mut self.queue,
            error: &mut error,
        };
        let r = f(&mut self.ioapic, &mut sink);
        (r, error)
    }

    /// After an event: wake the vCPU PD if it asked, and report a broken queue.
    fn finish(
        &mut self,
        kernel: &mut dyn Kernel,
        error: Option<QueueError>,
    ) -> Result<(), HandlerError> {
        if let Some(e) = error {
            self.stats.queue_errors += 1;
            self.queue_error_events = self.queue_error_events.saturating_add(1);
            let n = self.queue_error_events;
            if n <= LOG_FIRST_REFUSALS || n.is_power_of_two() {
                log(
                    kernel,
                    format_args!(
                        "interrupt queue to the vCPU PD on {} is broken ({e}); requests stay pending [event {n}]",
                        self.vcpu
                    ),
                );
            }
        }
        if self.queue.take_signal_request() {
            self.stats.notifications += 1;
            self.vcpu.notify(kernel)?;
        }
        match error {
            Some(QueueError::Region(r)) => Err(HandlerError::Region(r)),
            Some(_) => Err(HandlerError::PeerMisbehaved(self.vcpu)),
            None => Ok(()),
        }
    }

    /// Serves one decoded request from `ch`; `Ok(value)` or the status to refuse with.
    fn serve(
        &mut self,
        ch: Channel,
        request: Request,
    ) -> (Result<u64, Status>, Option<QueueError>) {
        let vcpu_only = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Status::NOT_PERMITTED)
            }
        };
        match request {
            Request::MmioRead(access) => match vcpu_only(ch == self.vcpu) {
                Ok(()) => (
                    Ok(self.ioapic.mmio_read(access.offset(), access.size())),
                    None,
                ),
                Err(s) => (Err(s), None),
            },
            Request::MmioWrite(access, value) => match vcpu_only(ch == self.vcpu) {
                Ok(()) => {
                    let ((), e) = self.with_sink(|io, sink| {
                        io.mmio_write(access.offset(), access.size(), value, sink)
                    });
                    (Ok(0), e)
                }
                Err(s) => (Err(s), None),
            },
            Request::Eoi { vector } => match vcpu_only(ch == self.vcpu) {
                Ok(()) => {
                    let ((), e) = self.with_sink(|io, sink| io.eoi(vector, sink));
                    (Ok(0), e)
                }
                Err(s) => (Err(s), None),
            },
            Request::SetLine { line, action } => {
                let bit = 1u32 << line;
                if self.granted_lines(ch) & bit == 0 {
                    return (Err(Status::NOT_PERMITTED), None);
                }
                let Some(mine) = self.driven.get_mut(usize::from(ch.index())) else {
                    return (Err(Status::NOT_PERMITTED), None);
                };
                match action {
                    LineAction::ASSERT | LineAction::PULSE => *mine |= bit,
                    _ => *mine &= !bit,
                }
                let level = self.line_level(line);
                let ((), mut error) =
                    self.with_sink(|io, sink| io.set_irq(usize::from(line), level, sink));
                if action == LineAction::PULSE {
                    if let Some(mine) = self.driven.get_mut(usize::from(ch.index())) {
                        *mine &= !bit;
                    }
                    let level = self.line_level(line);
                    let ((), e) =
                        self.with_sink(|io, sink| io.set_irq(usize::from(line), level, sink));
                    error = error.or(e);
                }
                (Ok(0), error)
            }
        }
    }

    /// Whether any channel drives `line`.
    fn line_level(&self, line: u8) -> bool {
        let bit = 1u32 << line;
        self.driven.iter().any(|d| d & bit != 0)
    }

    /// Logs a refused call, rate-limited per channel so a flooding peer cannot
    /// flood the log too.
    fn log_refusal(
        &mut self,
        kernel: &mut dyn Kernel,
        ch: Channel,
        msg: MessageInfo,
        mrs: &MessageRegisters,
        request: Option<Request>,
        status: Status,
    ) {
        self.stats.refused += 1;
        let Some(count) = self.refusals.get_mut(usize::from(ch.index())) else {
            return;
        };
        *count = count.saturating_add(1);
        let n = *count;
        if n > LOG_FIRST_REFUSALS && !n.is_power_of_two() {
            return;
        }
        let granted = self.granted_lines(ch);
        match request {
            Some(Request::SetLine { line, action }) => log(
                kernel,
                format_args!(
                    "refused {} of line {line} from {ch}: not granted (lines granted: {granted:#x}) [refusal {n}]",
                    action.name()
                ),
            ),
            Some(other) => log(
                kernel,
                format_args!(
                    "refused label {:#x} from {ch}: only the vCPU PD ({}) may access registers or EOI [refusal {n}]",
                    other.label(),
                    self.vcpu
                ),
            ),
            None => log(
                kernel,
                format_args!(
                    "refused label {:#x} from {ch}: {status} (mr0={:#x} mr1={:#x} count={}) [refusal {n}]",
                    msg.label(),
                    mrs.get(0),
                    mrs.get(1),
                    msg.count()
                ),
            ),
        }
    }
}

fn log(kernel: &mut dyn Kernel, args: core::fmt::Arguments<'_>) {
    mmio_device_api::log(kernel, "ioapic", args);
}

impl Handler for IoapicPd {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        // The vCPU PD freed room (or anything else happened): retry what is pending.
        let ((), error) = self.with_sink(|io, sink| io.retry_pending(sink));
        self.finish(kernel, error)?;
        channels.only_from(|ch| ch == self.vcpu)
    }

    mmio_device_api::protected!();
}

impl IoapicPd {
    /// One call from `ch`: MMIO and EOI from the vCPU PD, lines from the devices
    /// granted them; a refusal is logged.
    fn call(&mut self, kernel: &mut dyn Kernel, call: &PpCall<'_>) -> Answer<Status> {
        let PpCall { ch, msg, ref mrs } = *call;
        // Requests refused earlier go first, so they keep their place.
        let ((), mut error) = self.with_sink(|io, sink| io.retry_pending(sink));
        let request = Request::decode(msg, mrs);
        let result = match request {
            Ok(req) => {
                let (result, e) = self.serve(ch, req);
                error = error.or(e);
                result
            }
            Err(status) => Err(status),
        };
        if let Err(status) = result {
            self.log_refusal(kernel, ch, msg, mrs, request.ok(), status);
        }
        // A broken queue is the vCPU PD's doing, not the caller's: it is logged
        // and the caller still gets its answer.
        match self.finish(kernel, error) {
            Ok(()) | Err(HandlerError::PeerMisbehaved(_) | HandlerError::Region(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(result)
    }
}
