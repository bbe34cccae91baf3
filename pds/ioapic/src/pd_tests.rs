//! The PD adapter driven through `ipc::Handler` with `ipc::testing` fakes: init
//! checks, request decoding and its error statuses, who may do what, the interrupt
//! queue with signal avoidance, a full queue and a corrupt one.

use std::string::String;
use std::vec::Vec;

use ipc::testing::{leaked_region, FakeInit, RecordingKernel};
use ipc::{
    Channel, ChannelSet, Consumer, Handler, HandlerError, InitError, IpcError, Kernel, MessageInfo,
    MessageRegisters, Perms, PpCall, PpReply, Queue, Region,
};

use crate::api::{label, IrqEntry, LineAction, MmioAccess, Request, Status};
use crate::pd::*;
use crate::*;

const VCPU: Channel = Channel::new(0);
const SERIAL: Channel = Channel::new(1);
const SCI: Channel = Channel::new(2);
const STRANGER: Channel = Channel::new(3);

const SERIAL_LINES: u64 = (1 << 3) | (1 << 4);
const SCI_LINES: u64 = (1 << 9) | (1 << 4);

fn queue_region() -> Region<'static> {
    leaked_region(Queue::<IrqEntry>::layout_size(IRQ_QUEUE_CAPACITY).unwrap())
}

fn base_init(queue: Region<'static>) -> FakeInit {
    FakeInit::new("ioapic")
        .region(IRQ_QUEUE, queue)
        .variable(VCPU_CHANNEL, u64::from(VCPU.index()))
        .variable(line_grant_variable(SERIAL), SERIAL_LINES)
        .variable(line_grant_variable(SCI), SCI_LINES)
}

struct Env {
    pd: IoapicPd,
    k: RecordingKernel,
    q: Consumer<'static, IrqEntry>,
    region: Region<'static>,
}

impl Env {
    fn new() -> Self {
        Self::with(|i| i)
    }

    fn with(configure: impl FnOnce(FakeInit) -> FakeInit) -> Self {
        let region = queue_region();
        let pd = IoapicPd::init(&configure(base_init(region))).unwrap();
        Self {
            pd,
            k: RecordingKernel::default(),
            q: Consumer::new(region, IRQ_QUEUE_CAPACITY).unwrap(),
            region,
        }
    }

    /// A raw call: (reply status, mr0).
    fn call(&mut self, ch: Channel, label: u64, args: &[u64]) -> (Status, u64) {
        mmio_device_api::serve(&mut self.pd, &mut self.k, ch, label, args).unwrap()
    }

    fn read(&mut self, offset: u64, size: u64) -> (Status, u64) {
        self.call(VCPU, label::MMIO_READ, &[MMIO_BASE + offset, size])
    }

    fn write(&mut self, offset: u64, size: u64, value: u64) -> Status {
        self.call(VCPU, label::MMIO_WRITE, &[MMIO_BASE + offset, size, value])
            .0
    }

    fn write_reg(&mut self, index: u8, value: u32) {
        assert_eq!(self.write(IOREGSEL, 4, u64::from(index)), Status::OK);
        assert_eq!(self.write(IOWIN, 4, u64::from(value)), Status::OK);
    }

    fn read_reg(&mut self, index: u8) -> u32 {
        assert_eq!(self.write(IOREGSEL, 4, u64::from(index)), Status::OK);
        let (status, value) = self.read(IOWIN, 4);
        assert_eq!(status, Status::OK);
        value as u32
    }

    /// Programs `pin` unmasked, physical destination `dest`.
    fn program(&mut self, pin: u8, vector: u8, level: bool, dest: u8) {
        self.write_reg(REG_REDIR_BASE + 2 * pin + 1, u32::from(dest) << 24);
        let low = u32::from(vector) | if level { 1 << 15 } else { 0 };
        self.write_reg(REG_REDIR_BASE + 2 * pin, low);
    }

    fn line(&mut self, ch: Channel, line: u64, action: LineAction) -> Status {
        self.call(ch, label::SET_LINE, &[line, action.0]).0
    }

    fn eoi(&mut self, vector: u8) -> Status {
        self.call(VCPU, label::EOI, &[u64::from(vector)]).0
    }

    fn drain(&mut self) -> Vec<IrqEntry> {
        let mut out = Vec::new();
        while let Some(e) = self.q.dequeue().unwrap() {
            out.push(e);
        }
        out
    }

    fn vectors(&mut self) -> Vec<u8> {
        self.drain().iter().map(|e| e.vector).collect()
    }

    fn log(&self) -> &str {
        &self.k.console
    }

    /// The PD's console has a line containing `needle`.
    fn assert_logged(&self, needle: &str) {
        assert!(self.log().contains(needle), "{}", self.log());
    }
}

// ---- init -----------------------------------------------------------------

#[test]
fn init_defaults_to_an_82093aa_with_id_0() {
    let mut env = Env::new();
    assert_eq!(env.read_reg(REG_VERSION), 0x0017_0011);
    assert_eq!(env.read_reg(REG_ID), 0);
    assert_eq!(env.pd.granted_lines(SERIAL), SERIAL_LINES as u32);
    assert_eq!(env.pd.granted_lines(STRANGER), 0);

    let mut env = Env::with(|i| i.variable(IOAPIC_ID, 5).variable(IOAPIC_VERSION, 0x20));
    assert_eq!(env.read_reg(REG_VERSION), 0x0017_0020);
    assert_eq!(env.read_reg(REG_ID), 5 << 24);
}

#[test]
fn init_refuses_what_it_cannot_work_with() {
    let init_err = |init: FakeInit| IoapicPd::init(&init).unwrap_err();
    let region = queue_region();
    assert_eq!(
        init_err(FakeInit::new("ioapic").region(IRQ_QUEUE, region)),
        InitError::MissingVariable(VCPU_CHANNEL)
    );
    assert_eq!(
        init_err(base_init(region).variable(VCPU_CHANNEL, 62)),
        InitError::InvalidVariable {
            name: VCPU_CHANNEL,
            value: 62
        }
    );
    assert_eq!(
        init_err(FakeInit::new("ioapic").variable(VCPU_CHANNEL, 0)),
        InitError::MissingRegion(IRQ_QUEUE)
    );
    assert_eq!(
        init_err(base_init(region.restrict(Perms::R))),
        InitError::RegionPerms {
            name: IRQ_QUEUE,
            needed: Perms::RW
        }
    );
    let small = leaked_region(512);
    assert_eq!(
        init_err(base_init(small)),
        InitError::RegionTooSmall {
            name: IRQ_QUEUE,
            needed: 256 + 64 * 8,
            granted: 512
        }
    );
    // Line 24 does not exist; a grant naming it is a configuration error.
    assert_eq!(
        init_err(base_init(region).variable("lines_7", 1 << 24)),
        InitError::InvalidVariable {
            name: "lines_7",
            value: 1 << 24
        }
    );
    assert!(matches!(
        init_err(base_init(region).variable("lines_61", 1 << 40)),
        InitError::InvalidVariable {
            name: "lines_61",
            ..
        }
    ));
    for (name, value) in [(IOAPIC_ID, 16), (IOAPIC_VERSION, 0x12), (IOAPIC_VERSION, 0)] {
        assert_eq!(
            init_err(base_init(region).variable(name, value)),
            InitError::InvalidVariable { name, value }
        );
    }
    // A consumer that scribbled impossible indices before we attached.
    let dirty = queue_region();
    dirty
        .atomic_u32(0)
        .unwrap()
        .store(1000, core::sync::atomic::Ordering::Relaxed);
    assert!(matches!(
        init_err(base_init(dirty)),
        InitError::InvalidVariable {
            name: IRQ_QUEUE,
            ..
        }
    ));
}

#[test]
fn every_channel_has_its_own_grant_variable() {
    for id in 0..=Channel::MAX_ID {
        let name = line_grant_variable(Channel::new(id));
        assert_eq!(name, std::format!("lines_{id}"));
    }
}

// ---- decoding and MMIO ----------------------------------------------------

#[test]
fn mmio_accesses_must_lie_in_the_page_and_have_an_instruction_size() {
    type Case = (u64, u64, Result<(u64, u8), Status>);
    let cases: &[Case] = &[
        (MMIO_BASE, 4, Ok((0, 4))),
        (MMIO_BASE + 0x10, 1, Ok((0x10, 1))),
        (MMIO_BASE + 0xff8, 8, Ok((0xff8, 8))),
        (MMIO_BASE + 0xfff, 1, Ok((0xfff, 1))),
        (MMIO_BASE + 0xffe, 4, Err(Status::OUTSIDE_WINDOW)),
        (MMIO_BASE + 0x1000, 1, Err(Status::OUTSIDE_WINDOW)),
        (MMIO_BASE - 4, 4, Err(Status::OUTSIDE_WINDOW)),
        (0, 4, Err(Status::OUTSIDE_WINDOW)),
        (u64::MAX, 1, Err(Status::OUTSIDE_WINDOW)),
        (MMIO_BASE, 0, Err(Status::BAD_SIZE)),
        (MMIO_BASE, 3, Err(Status::BAD_SIZE)),
        (MMIO_BASE, 16, Err(Status::BAD_SIZE)),
        (MMIO_BASE, u64::MAX, Err(Status::BAD_SIZE)),
    ];
    for &(gpa, size, want) in cases {
        let got = MmioAccess::new(gpa, size).map(|a| (a.offset(), a.size()));
        assert_eq!(got, want, "gpa {gpa:#x} size {size}");
    }
}

#[test]
fn registers_round_trip_through_the_pd() {
    let mut env = Env::new();
    env.write_reg(REG_REDIR_BASE + 7, 0xab00_0000);
    env.write_reg(REG_REDIR_BASE + 6, 0x0001_8051);
    assert_eq!(env.read_reg(REG_REDIR_BASE + 7), 0xab00_0000);
    assert_eq!(env.read_reg(REG_REDIR_BASE + 6), 0x0001_8051);
    // A byte read of the version's max-entry field.
    assert_eq!(env.write(IOREGSEL, 1, u64::from(REG_VERSION)), Status::OK);
    assert_eq!(env.read(IOWIN + 2, 1), (Status::OK, 0x17));
    // An 8-byte access is a real instruction the IOAPIC does not decode: it reads
    // zero and counts as a bad access, it is not the caller's error.
    assert_eq!(env.read(IOWIN, 8), (Status::OK, 0));
    assert_eq!(env.ioapic_bad_accesses(), 1);
    assert!(env.drain().is_empty());
}

impl Env {
    fn ioapic_bad_accesses(&self) -> u64 {
        self.pd.ioapic().stats().bad_access
    }
}

#[test]
fn write_values_are_cut_to_the_access_size() {
    let mut env = Env::new();
    // A byte write to IOREGSEL whose register image has garbage above the byte.
    assert_eq!(env.write(IOREGSEL, 1, 0xffff_ff01), Status::OK);
    assert_eq!(env.read(IOREGSEL, 4), (Status::OK, 0x01));
    let decoded = Request::decode(
        MessageInfo::new(label::MMIO_WRITE, 3),
        &regs(&[MMIO_BASE + 0x10, 2, 0x1234_5678]),
    );
    assert!(matches!(decoded, Ok(Request::MmioWrite(_, 0x5678))));
}

fn regs(values: &[u64]) -> MessageRegisters {
    let mut mrs = MessageRegisters::new();
    for (i, &v) in values.iter().enumerate() {
        mrs.set(i, v);
    }
    mrs
}

#[test]
fn malformed_requests_get_an_error_status_and_a_log_line() {
    let mut env = Env::new();
    let cases: &[(Channel, u64, &[u64], Status)] = &[
        (VCPU, 0xdead, &[], Status::BAD_REQUEST),
        (VCPU, label::MMIO_READ, &[MMIO_BASE], Status::BAD_REQUEST),
        (
            VCPU,
            label::MMIO_WRITE,
            &[MMIO_BASE, 4],
            Status::BAD_REQUEST,
        ),
        (VCPU, label::EOI, &[], Status::BAD_REQUEST),
        (VCPU, label::EOI, &[0x100], Status::BAD_REQUEST),
        (SERIAL, label::SET_LINE, &[3], Status::BAD_REQUEST),
        (SERIAL, label::SET_LINE, &[3, 7], Status::BAD_REQUEST),
        (SERIAL, label::SET_LINE, &[24, 1], Status::BAD_LINE),
        (SERIAL, label::SET_LINE, &[1 << 40, 1], Status::BAD_LINE),
        (
            VCPU,
            label::MMIO_READ,
            &[MMIO_BASE + 0x1000, 4],
            Status::OUTSIDE_WINDOW,
        ),
        (VCPU, label::MMIO_READ, &[MMIO_BASE, 3], Status::BAD_SIZE),
        (
            VCPU,
            label::MMIO_WRITE,
            &[0xfee0_0000, 4, 0],
            Status::OUTSIDE_WINDOW,
        ),
    ];
    for (i, &(ch, label, args, want)) in cases.iter().enumerate() {
        let (status, value) = env.call(ch, label, args);
        assert_eq!(status, want, "case {i}: label {label:#x} {args:x?}");
        assert_eq!(value, 0);
    }
    assert_eq!(env.pd.stats().refused, cases.len() as u64);
    let lines: Vec<&str> = env.log().lines().collect();
    assert_eq!(lines.len(), cases.len(), "{lines:#?}");
    assert!(
        lines[0].starts_with("ioapic: refused label 0xdead from channel 0: bad request"),
        "{}",
        lines[0]
    );
    assert!(lines[7].contains("no such line (mr0=0x18"), "{}", lines[7]);
    assert!(lines[9].contains("outside the IOAPIC page"), "{}", lines[9]);
    assert!(lines[10].contains("bad access size"), "{}", lines[10]);
    // Nothing reached the core.
    assert!(env.drain().is_empty());
    assert_eq!(env.read_reg(REG_ID), 0);
}

#[test]
fn only_the_vcpu_pd_may_touch_registers_or_send_eoi() {
    let mut env = Env::new();
    let calls: [(u64, &[u64]); 3] = [
        (label::MMIO_READ, &[MMIO_BASE, 4]),
        (label::MMIO_WRITE, &[MMIO_BASE, 4, 1]),
        (label::EOI, &[0x30]),
    ];
    for ch in [SERIAL, SCI, STRANGER] {
        for (label, args) in calls {
            let (status, _) = env.call(ch, label, args);
            assert_eq!(status, Status::NOT_PERMITTED, "{label:#x} from {ch}");
        }
    }
    assert_eq!(env.read(IOREGSEL, 4), (Status::OK, 0), "IOREGSEL untouched");
    env.assert_logged("refused label 0x1a02 from channel 1: only the vCPU PD (channel 0)");
}

// ---- lines ----------------------------------------------------------------

#[test]
fn devices_drive_only_the_lines_granted_to_their_channel() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 1);
    env.program(9, 0x39, false, 1);
    // Line 9 belongs to the SCI device, the stranger has nothing.
    let (ok, refused) = (Status::OK, Status::NOT_PERMITTED);
    let cases = [
        (SERIAL, 3, LineAction::PULSE, ok),
        (SERIAL, 9, LineAction::ASSERT, refused),
        (STRANGER, 3, LineAction::ASSERT, refused),
        (VCPU, 3, LineAction::ASSERT, refused),
        (SCI, 3, LineAction::PULSE, refused),
        (SCI, 9, LineAction::PULSE, ok),
    ];
    for (ch, line, action, want) in cases {
        assert_eq!(env.line(ch, line, action), want, "line {line} from {ch}");
    }
    let got = env.drain();
    assert_eq!(
        got.iter().map(|e| (e.vector, e.pin)).collect::<Vec<_>>(),
        [(0x33, 3), (0x39, 9)]
    );
    assert_eq!(
        got[0].request(),
        Ok(InterruptRequest {
            vector: 0x33,
            delivery_mode: DeliveryMode::Fixed,
            destination_mode: DestinationMode::Physical,
            destination: 1,
            trigger: TriggerMode::Edge,
            pin: 3,
        })
    );
    assert_eq!(env.pd.stats().refused, 4);
    env.assert_logged("refused assert of line 9 from channel 1: not granted (lines granted: 0x18)");
    env.assert_logged("from channel 3: not granted (lines granted: 0x0)");
}

#[test]
fn level_lines_redeliver_after_eoi_while_asserted() {
    let mut env = Env::new();
    env.program(4, 0x44, true, 0);
    assert_eq!(env.line(SERIAL, 4, LineAction::ASSERT), Status::OK);
    let got = env.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].flags, IrqEntry::FLAG_LEVEL);
    assert_ne!(
        env.read_reg(REG_REDIR_BASE + 8) & (1 << 14),
        0,
        "remote IRR"
    );
    // Held high with remote IRR set: nothing more.
    assert_eq!(env.line(SERIAL, 4, LineAction::ASSERT), Status::OK);
    assert!(env.drain().is_empty());
    assert_eq!(env.eoi(0x44), Status::OK);
    assert_eq!(env.vectors(), [0x44]);
    assert_eq!(env.line(SERIAL, 4, LineAction::DEASSERT), Status::OK);
    assert_eq!(env.eoi(0x44), Status::OK);
    assert!(env.drain().is_empty());
    assert_eq!(env.read_reg(REG_REDIR_BASE + 8) & (1 << 14), 0);
}

#[test]
fn a_shared_line_stays_asserted_until_every_device_lets_go() {
    let mut env = Env::new();
    env.program(4, 0x44, true, 0);
    assert_eq!(env.line(SERIAL, 4, LineAction::ASSERT), Status::OK);
    assert_eq!(env.line(SCI, 4, LineAction::ASSERT), Status::OK);
    assert_eq!(env.line(SERIAL, 4, LineAction::DEASSERT), Status::OK);
    assert_eq!(env.vectors(), [0x44]);
    assert_eq!(env.eoi(0x44), Status::OK);
    assert_eq!(env.vectors(), [0x44], "the SCI device still asserts it");
    assert_eq!(env.line(SCI, 4, LineAction::DEASSERT), Status::OK);
    assert_eq!(env.eoi(0x44), Status::OK);
    assert!(env.drain().is_empty());
}

#[test]
fn a_pulse_is_one_edge_and_leaves_the_line_low() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 0);
    env.program(4, 0x44, true, 0);
    for _ in 0..3 {
        assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    }
    assert_eq!(env.vectors(), [0x33, 0x33, 0x33]);
    // On a level entry a pulse delivers once; the line is low again at EOI.
    assert_eq!(env.line(SERIAL, 4, LineAction::PULSE), Status::OK);
    assert_eq!(env.eoi(0x44), Status::OK);
    assert_eq!(env.vectors(), [0x44]);
    // A pulse on an edge line another device holds high is no edge.
    env.program(4, 0x45, false, 0);
    assert_eq!(env.line(SCI, 4, LineAction::ASSERT), Status::OK);
    assert_eq!(env.vectors(), [0x45]);
    assert_eq!(env.line(SERIAL, 4, LineAction::PULSE), Status::OK);
    assert!(env.drain().is_empty());
}

// ---- the queue ------------------------------------------------------------

#[test]
fn the_vcpu_pd_is_notified_only_when_it_asked() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 0);
    assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    assert!(env.k.take_notified().is_empty(), "consumer never asked");
    assert_eq!(env.vectors(), [0x33]);
    // The vCPU PD goes to sleep on an empty queue: the next request wakes it, once.
    assert!(env.q.prepare_to_sleep().unwrap());
    assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    assert_eq!(env.k.take_notified(), [VCPU]);
    assert_eq!(env.pd.stats().notifications, 1);
    assert_eq!(env.vectors(), [0x33, 0x33]);
}

#[test]
fn a_full_queue_keeps_requests_pending_until_the_vcpu_pd_makes_room() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 0);
    env.program(4, 0x44, true, 0);
    for _ in 0..IRQ_QUEUE_CAPACITY {
        assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    }
    // Full: the next edge and the level line stay pending, visibly to the guest.
    for _ in 0..5 {
        assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    }
    assert_eq!(env.line(SERIAL, 4, LineAction::ASSERT), Status::OK);
    assert_ne!(env.read_reg(REG_REDIR_BASE + 6) & (1 << 12), 0);
    assert_ne!(env.read_reg(REG_REDIR_BASE + 8) & (1 << 12), 0);
    assert_eq!(
        env.read_reg(REG_REDIR_BASE + 8) & (1 << 14),
        0,
        "no remote IRR yet"
    );

    // The vCPU PD drains and, as the protocol asks, notifies the producer.
    assert_eq!(env.drain().len(), IRQ_QUEUE_CAPACITY as usize);
    assert!(env.q.take_signal_request(), "the ioapic PD asked for room");
    env.pd
        .notified(&mut env.k, ChannelSet::from_iter([VCPU]))
        .unwrap();
    // The coalesced edge and the level request, in pin order.
    assert_eq!(env.vectors(), [0x33, 0x44]);
    assert_eq!(env.read_reg(REG_REDIR_BASE + 6) & (1 << 12), 0);
    assert_ne!(env.read_reg(REG_REDIR_BASE + 8) & (1 << 14), 0);
}

#[test]
fn pending_requests_are_retried_on_any_later_call() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 0);
    env.program(9, 0x39, false, 0);
    for _ in 0..=IRQ_QUEUE_CAPACITY {
        assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    }
    assert_eq!(env.drain().len(), IRQ_QUEUE_CAPACITY as usize);
    // No notification from the vCPU PD; a device's call is the next event, and
    // the older request keeps its place ahead of the new one.
    assert_eq!(env.line(SCI, 9, LineAction::PULSE), Status::OK);
    assert_eq!(env.vectors(), [0x33, 0x39]);
}

#[test]
fn a_corrupt_queue_is_logged_and_blamed_on_the_vcpu_pd_not_the_caller() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 0);
    for _ in 0..IRQ_QUEUE_CAPACITY {
        assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    }
    // Full, so the next request re-reads the head: the consumer has published one
    // far beyond the tail.
    let head = env.region.atomic_u32(64).unwrap();
    head.store(1000, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(env.line(SERIAL, 3, LineAction::PULSE), Status::OK);
    assert_eq!(env.pd.stats().queue_errors, 1);
    env.assert_logged("interrupt queue to the vCPU PD on channel 0 is broken");
    assert_eq!(
        env.pd.ioapic().entry(3).map(|e| e.delivery_status()),
        Some(true),
        "the request stays pending"
    );
    assert_eq!(
        env.pd.notified(&mut env.k, ChannelSet::from_iter([VCPU])),
        Err(HandlerError::PeerMisbehaved(VCPU))
    );
    assert_eq!(env.pd.stats().queue_errors, 2);
    // The vCPU PD comes to its senses (its dequeues store a true head): the next
    // event delivers the pending request.
    assert_eq!(env.drain().len(), IRQ_QUEUE_CAPACITY as usize);
    env.pd
        .notified(&mut env.k, ChannelSet::from_iter([VCPU]))
        .unwrap();
    assert_eq!(env.vectors(), [0x33]);
}

#[test]
fn notifications_from_anyone_but_the_vcpu_pd_are_unexpected() {
    let mut env = Env::new();
    assert_eq!(
        env.pd
            .notified(&mut env.k, ChannelSet::from_iter([VCPU, SERIAL])),
        Err(HandlerError::UnexpectedNotification(SERIAL))
    );
}

/// A kernel that grants nothing but the console.
#[derive(Default)]
struct NoNotify(String);

impl Kernel for NoNotify {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        Err(IpcError::NotifyNotPermitted(ch))
    }
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        Err(IpcError::NotGranted(call.ch))
    }
    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        Err(IpcError::NotGranted(ch))
    }
    fn debug_puts(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

#[test]
fn a_notification_the_runtime_refuses_is_a_handler_error() {
    let mut env = Env::new();
    env.program(3, 0x33, false, 0);
    assert!(env.q.prepare_to_sleep().unwrap());
    let mut k = NoNotify::default();
    let mut mrs = regs(&[3, LineAction::PULSE.0]);
    assert_eq!(
        env.pd.protected(
            &mut k,
            PpCall::new(SERIAL, MessageInfo::new(label::SET_LINE, 2), &mut mrs)
        ),
        Err(HandlerError::Ipc(IpcError::NotifyNotPermitted(VCPU)))
    );
}

#[test]
fn refusal_logs_are_rate_limited_per_channel() {
    let mut env = Env::new();
    for _ in 0..100 {
        env.line(STRANGER, 3, LineAction::ASSERT);
    }
    env.line(SERIAL, 9, LineAction::ASSERT);
    let lines: Vec<&str> = env.log().lines().collect();
    // Refusals 1..=8, then 16, 32 and 64, then the other channel's first.
    assert_eq!(lines.len(), 12, "{lines:#?}");
    assert!(lines[10].ends_with("[refusal 64]"));
    assert!(lines[11].contains("channel 1") && lines[11].ends_with("[refusal 1]"));
    assert_eq!(env.pd.stats().refused, 101);
}

// ---- queue entries --------------------------------------------------------

#[test]
fn queue_entries_round_trip_and_bad_ones_are_refused() {
    let r = InterruptRequest {
        vector: 0x51,
        delivery_mode: DeliveryMode::LowestPriority,
        destination_mode: DestinationMode::Logical,
        destination: 0x0f,
        trigger: TriggerMode::Level,
        pin: 23,
    };
    let e = IrqEntry::from(r);
    assert_eq!(e.flags, IrqEntry::FLAG_LOGICAL | IrqEntry::FLAG_LEVEL);
    assert_eq!(e.request(), Ok(r));
    for code in 0..=255u8 {
        let bad = IrqEntry {
            delivery_mode: code,
            ..e
        };
        assert_eq!(bad.request().is_ok(), matches!(code, 0 | 1 | 2 | 4 | 5 | 7));
    }
    assert!(IrqEntry { flags: 4, ..e }.request().is_err());
    assert!(IrqEntry { pin: 24, ..e }.request().is_err());
    assert!(IrqEntry {
        reserved: [0, 1, 0],
        ..e
    }
    .request()
    .is_err());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn call() -> impl Strategy<Value = (u8, u64, usize, [u64; 3])> {
        (
            0u8..5,
            prop_oneof![
                Just(label::MMIO_READ),
                Just(label::MMIO_WRITE),
                Just(label::EOI),
                Just(label::SET_LINE),
                any::<u64>(),
            ],
            0usize..5,
            (
                prop_oneof![
                    (MMIO_BASE..MMIO_BASE + 0x1010).boxed(),
                    (0u64..40).boxed(),
                    any::<u64>().boxed(),
                ],
                prop_oneof![(0u64..10).boxed(), any::<u64>().boxed()],
                any::<u64>(),
            )
                .prop_map(|(a, b, c)| [a, b, c]),
        )
    }

    proptest! {
        /// Any calls from any channel, with the consumer draining now and then:
        /// every reply is a known status, and every queued entry decodes.
        #[test]
        fn any_calls_get_a_known_status(
            calls in proptest::collection::vec((call(), any::<bool>()), 0..150)
        ) {
            let mut env = Env::new();
            for ((ch, label, count, args), drain) in calls {
                let ch = Channel::new(ch);
                let (status, _) = env.call(ch, label, &args[..count.min(3)]);
                prop_assert!(status.name().is_some(), "{status:?}");
                if drain {
                    for e in env.drain() {
                        prop_assert!(e.request().is_ok(), "{e:?}");
                    }
                    if env.q.take_signal_request() {
                        env.pd.notified(&mut env.k, ChannelSet::from_iter([VCPU])).unwrap();
                    }
                }
            }
            prop_assert_eq!(env.pd.stats().queue_errors, 0);
        }
    }
}
