//! Unit tests of the SynIC state machine against in-process guest memory.

use core::sync::atomic::{AtomicU64, Ordering};
use std::vec::Vec;

use hvdef::message::{HvMessage, HvMessageType, HV_MESSAGE_FLAG_PENDING, HV_MESSAGE_SIZE};
use hvdef::msr::*;
use hvdef::synic::{enable_writes, SimpSiefpRegister, SintRegister};
use hvdef::HvStatus;
use ipc::{Perms, Region};
use zerocopy::FromBytes;

use crate::synic::*;
use crate::GuestMemory;

const RAM_GPA: u64 = 0x10_0000;
const RAM_PAGES: usize = 8;
const PV: Instance = Instance::PARAVISOR;
const HV: Instance = Instance::HYPERVISOR;
const DEPTH: usize = 3;

type TestSynic = Synic<4, DEPTH>;

struct Guest {
    words: Vec<AtomicU64>,
}

impl Guest {
    fn new() -> Self {
        Self {
            words: (0..RAM_PAGES * 512).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn mem(&self) -> GuestMemory<'_> {
        GuestMemory::private(RAM_GPA, Region::from_atomics(&self.words, Perms::RW)).unwrap()
    }

    fn region(&self) -> Region<'_> {
        Region::from_atomics(&self.words, Perms::RW)
    }

    fn gpn(page: usize) -> u64 {
        (RAM_GPA >> 12) + page as u64
    }

    fn slot(&self, page: usize, sint: u8) -> HvMessage {
        let mut buf = [0u8; HV_MESSAGE_SIZE];
        self.region()
            .read_bytes(page * 4096 + sint as usize * HV_MESSAGE_SIZE, &mut buf)
            .unwrap();
        HvMessage::read_from_bytes(&buf).unwrap()
    }

    /// What the guest does after reading a message: free the slot, then report
    /// whether it must write EOM.
    fn free_slot(&self, page: usize, sint: u8) -> bool {
        let off = page * 4096 + sint as usize * HV_MESSAGE_SIZE;
        self.region()
            .atomic_u32(off)
            .unwrap()
            .store(0, Ordering::SeqCst);
        let flags = self.region().read::<u8>(off + 5).unwrap();
        flags & HV_MESSAGE_FLAG_PENDING != 0
    }

    fn flag_byte(&self, page: usize, sint: u8, flag: u32) -> u8 {
        self.region()
            .read::<u8>(page * 4096 + sint as usize * 256 + flag as usize / 8)
            .unwrap()
    }

    fn page_is_zero(&self, page: usize) -> bool {
        let mut buf = [0u8; 4096];
        self.region().read_bytes(page * 4096, &mut buf).unwrap();
        buf.iter().all(|&b| b == 0)
    }

    fn scribble(&self, page: usize) {
        self.region().fill(page * 4096, 4096, 0xA5).unwrap();
    }
}

#[derive(Default)]
struct Irqs(Vec<InterruptRequest>);

impl InterruptSink for Irqs {
    fn request_interrupt(&mut self, request: InterruptRequest) {
        self.0.push(request);
    }
}

impl Irqs {
    fn take(&mut self) -> Vec<InterruptRequest> {
        core::mem::take(&mut self.0)
    }
}

struct Rig {
    guest: Guest,
    synic: std::boxed::Box<TestSynic>,
    irqs: Irqs,
}

impl Rig {
    fn new() -> Self {
        Self {
            guest: Guest::new(),
            synic: std::boxed::Box::new(TestSynic::new(2).unwrap()),
            irqs: Irqs::default(),
        }
    }

    fn wrmsr(&mut self, vp: u32, inst: Instance, msr: u32, v: u64) -> Result<(), MsrError> {
        let mem = self.guest.mem();
        self.synic.write_msr(&mem, &mut self.irqs, vp, inst, msr, v)
    }

    fn rdmsr(&self, vp: u32, inst: Instance, msr: u32) -> Result<u64, MsrError> {
        self.synic.read_msr(vp, inst, msr)
    }

    /// VP 0's paravisor SynIC enabled the way most tests want it: SIMP on page 0,
    /// SIEFP on page 1, SINT 2 at vector 0x50.
    fn enabled() -> Self {
        let mut r = Self::new();
        r.enable(0, PV, 0, 1, 2, 0x50);
        r
    }

    /// Linux's hv_synic_enable_regs: SIMP, SIEFP, one SINT, then SCONTROL.
    fn enable(
        &mut self,
        vp: u32,
        inst: Instance,
        simp_page: usize,
        siefp_page: usize,
        sint: u8,
        vector: u8,
    ) {
        let gpa = |page| Guest::gpn(page) << 12;
        for (msr, value) in enable_writes(gpa(simp_page), gpa(siefp_page), sint, vector) {
            self.wrmsr(vp, inst, msr, value).unwrap();
        }
    }

    fn post(
        &mut self,
        vp: u32,
        inst: Instance,
        sint: u8,
        payload: &[u8],
    ) -> Result<PostOutcome, HvStatus> {
        let msg = HvMessage::new(HvMessageType::VMBUS, 0x77, payload).unwrap();
        let mem = self.guest.mem();
        self.synic
            .post_message(&mem, &mut self.irqs, target(vp, inst, sint), &msg)
    }

    fn signal(&mut self, vp: u32, inst: Instance, sint: u8, flag: u32) -> Result<bool, HvStatus> {
        let mem = self.guest.mem();
        self.synic
            .signal_event(&mem, &mut self.irqs, target(vp, inst, sint), flag)
    }

    fn sint(&mut self, vp: u32, inst: Instance, sint: u8, reg: SintRegister) {
        self.wrmsr(vp, inst, HV_X64_MSR_SINT0 + u32::from(sint), reg.0)
            .unwrap();
    }

    fn eom(&mut self, vp: u32, inst: Instance) {
        self.wrmsr(vp, inst, HV_X64_MSR_EOM, 0).unwrap();
    }
}

fn target(vp: u32, instance: Instance, sint: u8) -> SintTarget {
    SintTarget { vp, instance, sint }
}

fn irq(vp: u32, vector: u8, inst: Instance, sint: u8) -> InterruptRequest {
    InterruptRequest {
        vp,
        vector,
        auto_eoi: false,
        instance: inst,
        sint,
    }
}

// ---- registers -------------------------------------------------------------------

#[test]
fn every_register_reads_its_reset_value_on_every_vp_and_instance() {
    let r = Rig::new();
    for vp in 0..2 {
        for inst in [PV, HV] {
            assert_eq!(r.rdmsr(vp, inst, HV_X64_MSR_SCONTROL), Ok(0));
            assert_eq!(r.rdmsr(vp, inst, HV_X64_MSR_SVERSION), Ok(1));
            assert_eq!(r.rdmsr(vp, inst, HV_X64_MSR_SIEFP), Ok(0));
            assert_eq!(r.rdmsr(vp, inst, HV_X64_MSR_SIMP), Ok(0));
            assert_eq!(r.rdmsr(vp, inst, HV_X64_MSR_EOM), Ok(0));
            for i in 0..16 {
                assert_eq!(r.rdmsr(vp, inst, HV_X64_MSR_SINT0 + i), Ok(0x1_0000));
            }
        }
    }
}

#[test]
fn sversion_is_read_only() {
    let mut r = Rig::new();
    assert_eq!(r.wrmsr(0, PV, HV_X64_MSR_SVERSION, 1), Err(MsrError::Gp));
    assert_eq!(r.rdmsr(0, PV, HV_X64_MSR_SVERSION), Ok(1));
}

#[test]
fn scontrol_round_trips_and_refuses_reserved_bits() {
    let mut r = Rig::new();
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 1).unwrap();
    assert_eq!(r.rdmsr(0, PV, HV_X64_MSR_SCONTROL), Ok(1));
    for bit in 1..64 {
        assert_eq!(
            r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 1 | 1 << bit),
            Err(MsrError::Gp),
            "bit {bit}"
        );
    }
    assert_eq!(
        r.rdmsr(0, PV, HV_X64_MSR_SCONTROL),
        Ok(1),
        "a refused write changes nothing"
    );
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 0).unwrap();
    assert_eq!(r.rdmsr(0, PV, HV_X64_MSR_SCONTROL), Ok(0));
}

#[test]
fn simp_and_siefp_check_reserved_bits_and_range() {
    let mut r = Rig::new();
    for msr in [HV_X64_MSR_SIMP, HV_X64_MSR_SIEFP] {
        for bit in 1..12 {
            let v = SimpSiefpRegister::new(true, Guest::gpn(0)).0 | 1 << bit;
            assert_eq!(
                r.wrmsr(0, PV, msr, v),
                Err(MsrError::Gp),
                "{msr:#x} bit {bit}"
            );
        }
        // Enabling a page outside guest RAM is refused; a disabled register may hold
        // any page number (guests park the GPA before enabling).
        let outside = SimpSiefpRegister::new(true, Guest::gpn(RAM_PAGES));
        assert_eq!(r.wrmsr(0, PV, msr, outside.0), Err(MsrError::Gp));
        let below = SimpSiefpRegister::new(true, Guest::gpn(0) - 1);
        assert_eq!(r.wrmsr(0, PV, msr, below.0), Err(MsrError::Gp));
        let parked = SimpSiefpRegister::new(false, 0xFFFF_FFFF);
        r.wrmsr(0, PV, msr, parked.0).unwrap();
        assert_eq!(r.rdmsr(0, PV, msr), Ok(parked.0));
        let good = SimpSiefpRegister::new(true, Guest::gpn(5));
        r.wrmsr(0, PV, msr, good.0).unwrap();
        assert_eq!(r.rdmsr(0, PV, msr), Ok(good.0));
    }
}

#[test]
fn enabling_or_moving_a_page_clears_it_but_rewriting_does_not() {
    let mut r = Rig::new();
    // In order: (page scribbled on, then named by this MSR with this enable bit,
    // whether the write cleared it, why)
    let steps = [
        (
            2,
            HV_X64_MSR_SIMP,
            true,
            true,
            "enabled: the page is cleared",
        ),
        (
            2,
            HV_X64_MSR_SIMP,
            true,
            false,
            "same page, still enabled: left alone",
        ),
        (
            3,
            HV_X64_MSR_SIMP,
            true,
            true,
            "moved: the new page is cleared",
        ),
        (
            4,
            HV_X64_MSR_SIEFP,
            false,
            false,
            "disabled registers touch nothing",
        ),
        (
            4,
            HV_X64_MSR_SIEFP,
            true,
            true,
            "enabled: the page is cleared",
        ),
    ];
    for (page, msr, enabled, cleared, why) in steps {
        r.guest.scribble(page);
        let value = SimpSiefpRegister::new(enabled, Guest::gpn(page)).0;
        r.wrmsr(0, PV, msr, value).unwrap();
        assert_eq!(r.guest.page_is_zero(page), cleared, "{why}");
    }
}

#[test]
fn sint_writes_check_vector_and_reserved_bits() {
    let mut r = Rig::new();
    let msr = HV_X64_MSR_SINT0 + 2;
    for vector in 0..16u8 {
        assert_eq!(
            r.wrmsr(0, PV, msr, vector as u64),
            Err(MsrError::Gp),
            "vector {vector}"
        );
    }
    // Parking a SINT (masked, vector 0) is what guests write at shutdown.
    r.wrmsr(0, PV, msr, SintRegister::AT_RESET.0).unwrap();
    for bit in (8..16).chain(19..64) {
        assert_eq!(
            r.wrmsr(0, PV, msr, 0x30 | 1 << bit),
            Err(MsrError::Gp),
            "bit {bit}"
        );
    }
    let v = SintRegister::new(0xF3)
        .with_auto_eoi(true)
        .with_polling(true)
        .0;
    r.wrmsr(0, PV, msr, v).unwrap();
    assert_eq!(r.rdmsr(0, PV, msr), Ok(v));
    assert_eq!(r.rdmsr(0, PV, msr + 1), Ok(0x1_0000), "neighbour untouched");
}

#[test]
fn eom_reads_zero_after_writes() {
    let mut r = Rig::new();
    r.wrmsr(0, PV, HV_X64_MSR_EOM, 0xFFFF).unwrap();
    assert_eq!(r.rdmsr(0, PV, HV_X64_MSR_EOM), Ok(0));
}

#[test]
fn non_synic_msrs_are_passed_back() {
    let mut r = Rig::new();
    for msr in [
        HV_X64_MSR_GUEST_OS_ID,
        HV_X64_MSR_HYPERCALL,
        0x4000_0085,
        0x4000_00A0,
        0x4000_008F,
        0x10,
    ] {
        assert_eq!(r.rdmsr(0, PV, msr), Err(MsrError::NotSynic), "{msr:#x}");
        assert_eq!(r.wrmsr(0, PV, msr, 0), Err(MsrError::NotSynic), "{msr:#x}");
    }
}

#[test]
fn vp_indices_beyond_the_configured_count_are_refused() {
    let mut r = Rig::new();
    assert_eq!(
        r.rdmsr(2, PV, HV_X64_MSR_SCONTROL),
        Err(MsrError::InvalidVp)
    );
    assert_eq!(
        r.wrmsr(2, PV, HV_X64_MSR_SCONTROL, 1),
        Err(MsrError::InvalidVp)
    );
    assert_eq!(r.post(2, PV, 2, b"x"), Err(HvStatus::INVALID_VP_INDEX));
    assert_eq!(r.signal(9, PV, 2, 0), Err(HvStatus::INVALID_VP_INDEX));
    assert!(matches!(
        TestSynic::new(0),
        Err(ConfigError::VpCount { .. })
    ));
    assert!(matches!(
        TestSynic::new(5),
        Err(ConfigError::VpCount {
            requested: 5,
            max: 4
        })
    ));
    assert!(TestSynic::new(4).is_ok());
}

#[test]
fn instance_numbers_beyond_two_do_not_exist() {
    assert_eq!(Instance::new(0), Some(PV));
    assert_eq!(Instance::new(1), Some(HV));
    assert_eq!(Instance::new(2), None);
}

// ---- messages --------------------------------------------------------------------

#[test]
fn a_post_lands_in_the_slot_and_raises_the_sint_vector() {
    let mut r = Rig::enabled();
    assert_eq!(r.post(0, PV, 2, b"hello"), Ok(PostOutcome::Delivered));
    let slot = r.guest.slot(0, 2);
    assert_eq!(slot.header.message_type, HvMessageType::VMBUS);
    assert_eq!(slot.header.payload_size, 5);
    assert_eq!(slot.header.flags, 0);
    assert_eq!(slot.header.sender, 0x77);
    assert_eq!(slot.payload(), b"hello");
    assert_eq!(r.irqs.take(), [irq(0, 0x50, PV, 2)]);
    for other in (0..16).filter(|&s| s != 2) {
        assert_eq!(
            r.guest.slot(0, other).header.message_type,
            HvMessageType::NONE
        );
    }
}

#[test]
fn a_busy_slot_queues_marks_pending_and_eom_delivers_the_next() {
    let mut r = Rig::enabled();
    assert_eq!(r.post(0, PV, 2, b"one"), Ok(PostOutcome::Delivered));
    assert_eq!(r.post(0, PV, 2, b"two"), Ok(PostOutcome::Queued));
    assert_eq!(r.post(0, PV, 2, b"three"), Ok(PostOutcome::Queued));
    assert_eq!(r.irqs.take().len(), 1, "queued posts raise nothing");
    let slot = r.guest.slot(0, 2);
    assert_eq!(slot.payload(), b"one");
    assert_eq!(
        slot.header.flags & HV_MESSAGE_FLAG_PENDING,
        HV_MESSAGE_FLAG_PENDING
    );

    // The guest frees the slot, sees the pending flag, writes EOM.
    assert!(r.guest.free_slot(0, 2));
    r.eom(0, PV);
    let slot = r.guest.slot(0, 2);
    assert_eq!(slot.payload(), b"two");
    assert_eq!(
        slot.header.flags & HV_MESSAGE_FLAG_PENDING,
        HV_MESSAGE_FLAG_PENDING,
        "one more is waiting"
    );
    assert_eq!(r.irqs.take(), [irq(0, 0x50, PV, 2)]);

    assert!(r.guest.free_slot(0, 2));
    r.eom(0, PV);
    let slot = r.guest.slot(0, 2);
    assert_eq!(slot.payload(), b"three");
    assert_eq!(slot.header.flags, 0, "queue empty: no EOM needed");
    assert_eq!(r.irqs.take().len(), 1);
    assert!(!r.guest.free_slot(0, 2));
    assert_eq!(r.synic.queued(target(0, PV, 2)), 0);
}

#[test]
fn eom_without_a_free_slot_delivers_nothing() {
    let mut r = Rig::enabled();
    r.post(0, PV, 2, b"one").unwrap();
    r.post(0, PV, 2, b"two").unwrap();
    r.irqs.take();
    r.eom(0, PV);
    assert_eq!(r.guest.slot(0, 2).payload(), b"one");
    assert!(r.irqs.take().is_empty());
    assert_eq!(r.synic.queued(target(0, PV, 2)), 1);
}

#[test]
fn a_full_queue_refuses_with_insufficient_buffers_until_eom_makes_room() {
    let mut r = Rig::enabled();
    assert_eq!(r.post(0, PV, 2, b"in slot"), Ok(PostOutcome::Delivered));
    for i in 0..DEPTH {
        assert_eq!(r.post(0, PV, 2, &[i as u8]), Ok(PostOutcome::Queued));
    }
    assert_eq!(
        r.post(0, PV, 2, b"overflow"),
        Err(HvStatus::INSUFFICIENT_BUFFERS)
    );
    assert_eq!(
        r.post(0, PV, 2, b"overflow"),
        Err(HvStatus::INSUFFICIENT_BUFFERS)
    );
    // Other SINTs have their own queues.
    r.wrmsr(0, PV, HV_X64_MSR_SINT0 + 3, 0x51).unwrap();
    assert_eq!(r.post(0, PV, 3, b"elsewhere"), Ok(PostOutcome::Delivered));
    r.guest.free_slot(0, 2);
    r.eom(0, PV);
    assert_eq!(r.post(0, PV, 2, b"fits again"), Ok(PostOutcome::Queued));
}

#[test]
fn a_slot_freed_without_eom_is_refilled_in_order_by_the_next_post() {
    let mut r = Rig::enabled();
    r.post(0, PV, 2, b"a").unwrap();
    r.post(0, PV, 2, b"b").unwrap();
    // The guest frees the slot but skips EOM (e.g. it raced with the flag).
    r.guest.free_slot(0, 2);
    assert_eq!(r.post(0, PV, 2, b"c"), Ok(PostOutcome::Queued));
    assert_eq!(
        r.guest.slot(0, 2).payload(),
        b"b",
        "FIFO: the older one first"
    );
}

#[test]
fn masked_sints_deliver_nothing_until_unmasked() {
    let mut r = Rig::enabled();
    r.sint(0, PV, 2, SintRegister::new(0x50).with_masked(true));
    assert_eq!(r.post(0, PV, 2, b"held"), Ok(PostOutcome::Queued));
    assert_eq!(r.signal(0, PV, 2, 5), Ok(false));
    assert_eq!(r.guest.slot(0, 2).header.message_type, HvMessageType::NONE);
    assert_eq!(r.guest.flag_byte(1, 2, 5), 0);
    assert!(r.irqs.take().is_empty());
    r.sint(0, PV, 2, SintRegister::new(0x50));
    assert_eq!(r.guest.slot(0, 2).payload(), b"held");
    assert_eq!(r.irqs.take(), [irq(0, 0x50, PV, 2)]);
}

#[test]
fn a_disabled_simp_or_scontrol_holds_messages_and_enabling_releases_them() {
    let mut r = Rig::new();
    r.wrmsr(0, PV, HV_X64_MSR_SINT0 + 2, 0x50).unwrap();
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 1).unwrap();
    assert_eq!(
        r.post(0, PV, 2, b"early"),
        Ok(PostOutcome::Queued),
        "no SIMP yet"
    );
    assert!(r.guest.page_is_zero(0));
    r.wrmsr(
        0,
        PV,
        HV_X64_MSR_SIMP,
        SimpSiefpRegister::new(true, Guest::gpn(0)).0,
    )
    .unwrap();
    assert_eq!(r.guest.slot(0, 2).payload(), b"early");
    assert_eq!(r.irqs.take().len(), 1);

    r.guest.free_slot(0, 2);
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 0).unwrap();
    assert_eq!(r.post(0, PV, 2, b"off"), Ok(PostOutcome::Queued));
    assert_eq!(r.guest.slot(0, 2).header.message_type, HvMessageType::NONE);
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 1).unwrap();
    assert_eq!(r.guest.slot(0, 2).payload(), b"off");
}

#[test]
fn polling_sints_get_messages_and_flags_without_interrupts() {
    let mut r = Rig::enabled();
    r.sint(0, PV, 2, SintRegister::new(0x50).with_polling(true));
    assert_eq!(r.post(0, PV, 2, b"p"), Ok(PostOutcome::Delivered));
    assert_eq!(r.signal(0, PV, 2, 1), Ok(true));
    assert_eq!(r.guest.slot(0, 2).payload(), b"p");
    assert_eq!(r.guest.flag_byte(1, 2, 1), 2);
    assert!(r.irqs.take().is_empty());
}

#[test]
fn auto_eoi_is_passed_to_the_vcpu() {
    let mut r = Rig::enabled();
    r.sint(0, PV, 2, SintRegister::new(0x50).with_auto_eoi(true));
    r.post(0, PV, 2, b"x").unwrap();
    let got = r.irqs.take();
    assert_eq!(got.len(), 1);
    assert!(got[0].auto_eoi);
}

#[test]
fn malformed_posts_are_invalid_parameters() {
    let mut r = Rig::enabled();
    let mem = r.guest.mem();
    let target = target(0, PV, 2);
    let mut msg = HvMessage::new(HvMessageType::VMBUS, 0, b"x").unwrap();
    msg.header.message_type = HvMessageType::NONE;
    assert_eq!(
        r.synic.post_message(&mem, &mut r.irqs, target, &msg),
        Err(HvStatus::INVALID_PARAMETER)
    );
    msg.header.message_type = HvMessageType::VMBUS;
    msg.header.payload_size = 241;
    assert_eq!(
        r.synic.post_message(&mem, &mut r.irqs, target, &msg),
        Err(HvStatus::INVALID_PARAMETER)
    );
    msg.header.payload_size = 1;
    let bad_sint = SintTarget { sint: 16, ..target };
    assert_eq!(
        r.synic.post_message(&mem, &mut r.irqs, bad_sint, &msg),
        Err(HvStatus::INVALID_PARAMETER)
    );
    // Caller-supplied flags never reach the guest.
    msg.header.flags = 0xFF;
    r.synic
        .post_message(&mem, &mut r.irqs, target, &msg)
        .unwrap();
    assert_eq!(r.guest.slot(0, 2).header.flags, 0);
}

// ---- events ----------------------------------------------------------------------

#[test]
fn events_set_the_bit_and_interrupt_only_on_a_zero_to_one_transition() {
    let mut r = Rig::enabled();
    assert_eq!(r.signal(0, PV, 2, 13), Ok(true));
    assert_eq!(r.guest.flag_byte(1, 2, 13), 1 << 5);
    assert_eq!(r.irqs.take(), [irq(0, 0x50, PV, 2)]);
    assert_eq!(r.signal(0, PV, 2, 13), Ok(false));
    assert!(r.irqs.take().is_empty(), "already set: no second interrupt");
    assert_eq!(
        r.signal(0, PV, 2, 12),
        Ok(true),
        "a neighbour in the same byte"
    );
    assert_eq!(r.guest.flag_byte(1, 2, 13), 0b11 << 4);
    r.irqs.take();
    // The guest consumes the flags (Linux: sync_test_and_clear_bit).
    r.guest.region().fill(4096 + 2 * 256, 256, 0).unwrap();
    assert_eq!(r.signal(0, PV, 2, 13), Ok(true));
    assert_eq!(r.irqs.take().len(), 1);
}

#[test]
fn event_flag_numbers_cover_exactly_2048_per_sint() {
    let mut r = Rig::enabled();
    assert_eq!(r.signal(0, PV, 2, 2047), Ok(true));
    assert_eq!(r.guest.flag_byte(1, 2, 2047), 0x80);
    assert_eq!(r.guest.flag_byte(1, 3, 0), 0, "does not spill into SINT3");
    assert_eq!(r.signal(0, PV, 2, 2048), Err(HvStatus::INVALID_PARAMETER));
    assert_eq!(
        r.signal(0, PV, 2, u32::MAX),
        Err(HvStatus::INVALID_PARAMETER)
    );
    assert_eq!(r.signal(0, PV, 16, 0), Err(HvStatus::INVALID_PARAMETER));
}

#[test]
fn events_on_a_closed_path_write_nothing() {
    let mut r = Rig::new();
    r.wrmsr(0, PV, HV_X64_MSR_SINT0 + 2, 0x50).unwrap();
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 1).unwrap();
    assert_eq!(r.signal(0, PV, 2, 1), Ok(false), "SIEFP disabled");
    r.wrmsr(
        0,
        PV,
        HV_X64_MSR_SIEFP,
        SimpSiefpRegister::new(true, Guest::gpn(1)).0,
    )
    .unwrap();
    r.wrmsr(0, PV, HV_X64_MSR_SCONTROL, 0).unwrap();
    assert_eq!(r.signal(0, PV, 2, 1), Ok(false), "SynIC disabled");
    assert!(r.guest.page_is_zero(1));
    assert!(r.irqs.take().is_empty());
}

// ---- two instances, several VPs --------------------------------------------------

#[test]
fn the_two_instances_are_independent_and_traffic_lands_only_where_addressed() {
    let mut r = Rig::enabled();
    r.enable(0, HV, 2, 3, 2, 0x60);
    assert_eq!(
        r.rdmsr(0, PV, HV_X64_MSR_SIMP),
        Ok(SimpSiefpRegister::new(true, Guest::gpn(0)).0)
    );
    assert_eq!(
        r.rdmsr(0, HV, HV_X64_MSR_SIMP),
        Ok(SimpSiefpRegister::new(true, Guest::gpn(2)).0)
    );

    r.post(0, PV, 2, b"paravisor").unwrap();
    assert_eq!(r.guest.slot(0, 2).payload(), b"paravisor");
    assert!(r.guest.page_is_zero(2), "hypervisor SIMP untouched");
    assert_eq!(r.irqs.take(), [irq(0, 0x50, PV, 2)]);

    r.post(0, HV, 2, b"host").unwrap();
    assert_eq!(r.guest.slot(2, 2).payload(), b"host");
    assert_eq!(r.guest.slot(0, 2).payload(), b"paravisor");
    assert_eq!(r.irqs.take(), [irq(0, 0x60, HV, 2)]);

    r.signal(0, HV, 2, 9).unwrap();
    assert_eq!(r.guest.flag_byte(3, 2, 9), 2);
    assert!(r.guest.page_is_zero(1), "paravisor SIEFP untouched");
    assert_eq!(r.irqs.take(), [irq(0, 0x60, HV, 2)]);

    // EOM on one instance does not drain the other's queue.
    r.post(0, PV, 2, b"queued").unwrap();
    r.guest.free_slot(0, 2);
    r.eom(0, HV);
    assert_eq!(r.synic.queued(target(0, PV, 2)), 1);
    r.eom(0, PV);
    assert_eq!(r.guest.slot(0, 2).payload(), b"queued");

    // Masking one instance's SINT leaves the other's alone.
    r.wrmsr(0, HV, HV_X64_MSR_SINT0 + 2, SintRegister::AT_RESET.0)
        .unwrap();
    assert_eq!(r.rdmsr(0, PV, HV_X64_MSR_SINT0 + 2), Ok(0x50));
}

#[test]
fn vps_are_independent() {
    let mut r = Rig::enabled();
    r.enable(1, PV, 4, 5, 2, 0x51);
    r.post(1, PV, 2, b"vp1").unwrap();
    assert_eq!(r.guest.slot(4, 2).payload(), b"vp1");
    assert!(r.guest.page_is_zero(0));
    assert_eq!(r.irqs.take(), [irq(1, 0x51, PV, 2)]);
    r.signal(0, PV, 2, 0).unwrap();
    assert!(r.guest.page_is_zero(5));
    assert_eq!(r.irqs.take(), [irq(0, 0x50, PV, 2)]);
}

// ---- malformed sequences ---------------------------------------------------------

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Wrmsr {
            vp: u32,
            inst: u8,
            msr: u32,
            value: u64,
        },
        Rdmsr {
            vp: u32,
            inst: u8,
            msr: u32,
        },
        Post {
            vp: u32,
            inst: u8,
            sint: u8,
            size: u8,
        },
        Signal {
            vp: u32,
            inst: u8,
            sint: u8,
            flag: u32,
        },
        GuestFree {
            page: u8,
            sint: u8,
        },
        GuestScribble {
            page: u8,
            offset: u16,
            value: u32,
        },
    }

    fn msr() -> impl Strategy<Value = u32> {
        prop_oneof![0x4000_0080u32..=0x4000_00A0, any::<u32>()]
    }

    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            (0..RAM_PAGES as u64 + 2, any::<bool>()).prop_map(|(p, e)| SimpSiefpRegister::new(
                e,
                Guest::gpn(0) + p
            )
            .0),
            (any::<u8>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(v, m, a, p)| {
                SintRegister::new(v)
                    .with_masked(m)
                    .with_auto_eoi(a)
                    .with_polling(p)
                    .0
            }),
            Just(1u64),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u32, 0..3u8, msr(), value()).prop_map(|(vp, inst, msr, value)| Op::Wrmsr {
                vp,
                inst,
                msr,
                value
            }),
            (0..3u32, 0..3u8, msr()).prop_map(|(vp, inst, msr)| Op::Rdmsr { vp, inst, msr }),
            (0..3u32, 0..3u8, 0..17u8, any::<u8>()).prop_map(|(vp, inst, sint, size)| Op::Post {
                vp,
                inst,
                sint,
                size
            }),
            (
                0..3u32,
                0..3u8,
                0..17u8,
                prop_oneof![0..2100u32, any::<u32>()]
            )
                .prop_map(|(vp, inst, sint, flag)| Op::Signal {
                    vp,
                    inst,
                    sint,
                    flag
                }),
            (0..RAM_PAGES as u8, 0..16u8).prop_map(|(page, sint)| Op::GuestFree { page, sint }),
            (0..RAM_PAGES as u8, 0..1024u16, any::<u32>()).prop_map(|(page, offset, value)| {
                Op::GuestScribble {
                    page,
                    offset,
                    value,
                }
            }),
        ]
    }

    proptest! {
        /// Whatever the guest and the peers throw at it: no panic, queues stay bounded,
        /// posts only fail with the documented statuses, and every interrupt names a
        /// real vector of an unmasked, non-polling SINT.
        #[test]
        fn random_traffic_keeps_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
            let mut r = Rig::new();
            for op in ops {
                match op {
                    Op::Wrmsr { vp, inst, msr, value } => {
                        if let Some(inst) = Instance::new(inst) {
                            let _ = r.wrmsr(vp, inst, msr, value);
                        }
                    }
                    Op::Rdmsr { vp, inst, msr } => {
                        if let Some(inst) = Instance::new(inst) {
                            let _ = r.rdmsr(vp, inst, msr);
                        }
                    }
                    Op::Post { vp, inst, sint, size } => {
                        let Some(inst) = Instance::new(inst) else { continue };
                        let mut msg = HvMessage::new(HvMessageType::VMBUS, 1, &[]).unwrap();
                        msg.header.payload_size = size;
                        let mem = r.guest.mem();
                        let res = r.synic.post_message(&mem, &mut r.irqs,
                            SintTarget { vp, instance: inst, sint }, &msg);
                        if let Err(e) = res {
                            prop_assert!([HvStatus::INVALID_PARAMETER, HvStatus::INVALID_VP_INDEX,
                                HvStatus::INSUFFICIENT_BUFFERS].contains(&e), "{e:?}");
                        }
                    }
                    Op::Signal { vp, inst, sint, flag } => {
                        let Some(inst) = Instance::new(inst) else { continue };
                        let res = r.signal(vp, inst, sint, flag);
                        if let Err(e) = res {
                            prop_assert!([HvStatus::INVALID_PARAMETER, HvStatus::INVALID_VP_INDEX]
                                .contains(&e), "{e:?}");
                        }
                    }
                    Op::GuestFree { page, sint } => {
                        r.guest.free_slot(page as usize, sint);
                    }
                    Op::GuestScribble { page, offset, value } => {
                        let _ = r.guest.region().write(page as usize * 4096 + offset as usize * 4, &value);
                    }
                }
                for vp in 0..2 {
                    for inst in [PV, HV] {
                        for sint in 0..16 {
                            let target = SintTarget { vp, instance: inst, sint };
                            prop_assert!(r.synic.queued(target) <= DEPTH);
                        }
                    }
                }
                for req in r.irqs.take() {
                    prop_assert!(req.vector >= 16);
                    prop_assert!(req.vp < 2);
                    let sint = r.rdmsr(req.vp, req.instance, HV_X64_MSR_SINT0 + req.sint as u32).unwrap();
                    let sint = SintRegister(sint);
                    prop_assert!(!sint.masked() && !sint.polling());
                    prop_assert_eq!(sint.vector(), req.vector);
                }
            }
        }
    }
}
