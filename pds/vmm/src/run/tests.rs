//! The main loop and the interrupt-queue drain against a scripted vCPU, queues in
//! leaked regions and a kernel that records notifications.

use core::sync::atomic::Ordering;
use std::boxed::Box;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use ipc::testing::{leaked_region, RecordingKernel, RoutingKernel};
use ipc::{Channel, IpcError, PpCall, PpReply, Producer, Queue, Region};
use kernel_abi::vcpu::{exit, pseudo_exit, StateWords, Word};
use synic_pd::api::IrqEntry as SynicEntry;

use super::*;
use crate::cpuid::Presentation;
use crate::loader::GuestRamWrite;
use crate::state::{event, RFLAGS_IF, WORDS};
use crate::testing::{self, Mode, Ram};

const CAPACITY: u32 = 8;
const CODE: u64 = 0x1000;
const TSC_HZ: u64 = 1_000_000_000;

fn queue_region<T: ipc::QueueEntry>() -> Region<'static> {
    leaked_region(Queue::<T>::layout_size(CAPACITY).unwrap())
}

const CHANNELS: Channels = Channels {
    hvcall: Channel::new(0),
    synic: Channel::new(1),
    ioapic: Some(Channel::new(2)),
    ioapic_lines: Some(Channel::new(3)),
    tpm: None,
};

const SERIAL: ForwardedIrq = ForwardedIrq {
    channel: Channel::new(5),
    line: 3,
};

fn vmm() -> Vmm {
    testing::vmm(Presentation::Plain, TSC_HZ, TSC_HZ, |_, _| [0; 4])
}

struct Queues {
    synic: Producer<'static, SynicEntry>,
    synic_region: Region<'static>,
    ioapic: Producer<'static, ioapic::api::IrqEntry>,
}

fn wiring() -> (Wiring<'static>, Queues) {
    let synic_region = queue_region::<SynicEntry>();
    let ioapic_region = queue_region::<ioapic::api::IrqEntry>();
    let wiring = Wiring {
        channels: CHANNELS,
        synic: Consumer::new(synic_region, CAPACITY).unwrap(),
        ioapic: Some(Consumer::new(ioapic_region, CAPACITY).unwrap()),
        forwarded: Some(SERIAL),
        dropped: 0,
    };
    let queues = Queues {
        synic: Producer::new(synic_region, CAPACITY).unwrap(),
        synic_region,
        ioapic: Producer::new(ioapic_region, CAPACITY).unwrap(),
    };
    (wiring, queues)
}

fn synic_entry(vp: u32, vector: u8) -> SynicEntry {
    SynicEntry {
        vp,
        vector,
        flags: 0,
        instance: 0,
        sint: 2,
    }
}

fn ioapic_entry(vector: u8, flags: u8, reserved: u8) -> ioapic::api::IrqEntry {
    ioapic::api::IrqEntry {
        vector,
        delivery_mode: 0,
        flags,
        destination: 0,
        pin: 4,
        reserved: [reserved, 0, 0],
    }
}

/// Fills the queues with `fill`, then drains them into a fresh VMM, which must
/// find them intact.
fn drained(fill: impl FnOnce(&mut Queues)) -> (Wiring<'static>, Vmm, RecordingKernel, Queues) {
    let (mut w, mut q) = wiring();
    let mut v = vmm();
    let mut k = RecordingKernel::default();
    fill(&mut q);
    assert_eq!(w.drain(&mut v, &mut k), Ok(()));
    (w, v, k, q)
}

#[test]
fn drain_delivers_vp0_requests_and_drops_the_rest() {
    let (w, v, k, mut q) = drained(|q| {
        for e in [
            synic_entry(0, 0x40),
            synic_entry(1, 0x41),
            synic_entry(0, 5),
            synic_entry(u32::MAX, 0x42),
        ] {
            q.synic.try_enqueue(e).unwrap();
        }
    });
    let irr = v.platform.lapic.irr();
    assert!(irr.contains(0x40));
    assert!(!irr.contains(0x41) && !irr.contains(0x42) && !irr.contains(5));
    assert_eq!(w.dropped, 3);
    assert!(k.notified.is_empty(), "nobody asked for a signal");
    assert_eq!(q.synic.free_slots(), Ok(CAPACITY));
}

#[test]
fn drain_tells_a_waiting_producer_there_is_room() {
    let (_, _, k, _) = drained(|q| {
        q.synic.try_enqueue(synic_entry(0, 0x40)).unwrap();
        q.synic.request_signal();
        q.ioapic.try_enqueue(ioapic_entry(0x50, 0, 0)).unwrap();
        q.ioapic.request_signal();
    });
    assert_eq!(k.notified, [CHANNELS.synic, CHANNELS.ioapic.unwrap()]);
}

#[test]
fn drain_takes_ioapic_requests_with_their_trigger_mode() {
    let (w, v, _, _) = drained(|q| {
        for e in [
            ioapic_entry(0x50, ioapic::api::IrqEntry::FLAG_LEVEL, 0),
            ioapic_entry(0x51, 0, 0),
            // Malformed (reserved bytes, unknown flags) and illegal vectors: dropped.
            ioapic_entry(0x52, 0, 1),
            ioapic_entry(0x53, 0x80, 0),
            ioapic_entry(3, 0, 0),
        ] {
            q.ioapic.try_enqueue(e).unwrap();
        }
    });
    let lapic = &v.platform.lapic;
    assert!(lapic.irr().contains(0x50) && lapic.tmr().contains(0x50));
    assert!(lapic.irr().contains(0x51) && !lapic.tmr().contains(0x51));
    assert!(!lapic.irr().contains(0x52) && !lapic.irr().contains(0x53));
    assert_eq!(w.dropped, 3);
}

#[test]
fn a_corrupt_queue_stops_the_vm() {
    let (mut w, q) = wiring();
    let mut v = vmm();
    let mut k = RecordingKernel::default();
    // The producer claims more entries than the queue holds.
    q.synic_region
        .atomic_u32(0)
        .unwrap()
        .store(CAPACITY * 3, Ordering::Release);
    match w.drain(&mut v, &mut k) {
        Err(Stop::Fatal { what, .. }) => assert!(what.contains("synic")),
        other => panic!("{other:?}"),
    }
}

type NoPeers = fn(PpCall<'_>) -> PpReply;

/// One scripted `VM_ENTER`: edits the kernel's words (the exit) and the clock.
type Step = Box<dyn FnOnce(&mut [u64; WORDS], &mut u64) -> Result<Entered, IpcError>>;

/// What one entry asked of the kernel: its flags and deadline words, and the
/// event it injected.
#[derive(Debug, PartialEq, Eq)]
struct Entered_ {
    flags: u64,
    deadline: u64,
    inject: u64,
}

const fn entered(flags: u64, deadline: u64, inject: u64) -> Entered_ {
    Entered_ {
        flags,
        deadline,
        inject,
    }
}

/// A kernel vCPU: keeps the words the VMM handed in, consumes an injection the way
/// VMRUN does, and comes back with the next scripted exit.
struct ScriptedVcpu {
    words: [u64; WORDS],
    now: u64,
    script: VecDeque<Step>,
    entries: Vec<Entered_>,
}

impl SvmCpu for ScriptedVcpu {
    type Error = IpcError;

    fn vmrun(
        &mut self,
        _: VpIndex,
        st: &mut StateWords,
        entry: Entry,
    ) -> Result<Entered, IpcError> {
        let words = st.take_entry();
        let dirty = words[Word::DIRTY];
        for (i, &w) in words.iter().enumerate() {
            if i != Word::DIRTY && dirty & (1 << i) != 0 {
                self.words[i] = w;
            }
        }
        self.entries.push(entered(
            entry.flags(),
            entry.deadline_word(),
            self.words[Word::EVENT_INJECT],
        ));
        self.words[Word::EVENT_INJECT] = 0;
        let step = self.script.pop_front().ok_or(IpcError::Transport)?;
        let result = step(&mut self.words, &mut self.now);
        st.load_exit(&self.words);
        result
    }

    fn now(&self) -> u64 {
        self.now
    }
}

/// 32-bit protected mode, paging off, flat CS, interrupts on, at [`CODE`].
fn boot_words() -> [u64; WORDS] {
    let mut w = testing::vcpu_words(Mode::Flat32, 0, CODE);
    w[Word::RFLAGS] |= RFLAGS_IF;
    w
}

/// The VMM's peers are not wired in these tests: a protected call fails the test.
fn no_peers(call: PpCall<'_>) -> PpReply {
    panic!("a protected call on {:?}", call.ch)
}

/// What [`run_script`] leaves behind.
struct Ran {
    stop: Stop,
    vcpu: ScriptedVcpu,
    st: VcpuState,
    console: Vec<u8>,
}

/// Runs the VMM from `words` through the scripted exits until it stops.
fn run_script(
    v: &mut Vmm,
    ram: &Ram,
    w: &mut Wiring<'static>,
    words: [u64; WORDS],
    script: Vec<Step>,
) -> Ran {
    let mut vcpu = ScriptedVcpu {
        words,
        now: 0,
        script: script.into(),
        entries: Vec::new(),
    };
    let mut st = VcpuState::new();
    st.load_exit(&words);
    let mut kernel = RoutingKernel::new(no_peers as NoPeers);
    let mut console = Vec::new();
    let stop = run(v, &mut st, &mut vcpu, ram, &mut kernel, w, &mut |b| {
        console.extend_from_slice(b)
    });
    Ran {
        stop,
        vcpu,
        st,
        console,
    }
}

fn out_exit(port: u16, value: u64, len: u64) -> Step {
    Box::new(move |w, _| {
        w[Word::EXIT_CODE] = exit::IOIO;
        w[Word::EXIT_INFO1] = (u64::from(port) << 16) | (1 << 4);
        w[Word::EXIT_INFO2] = w[Word::RIP] + len;
        w[Word::RAX] = value;
        Ok(Entered::Exit)
    })
}

#[test]
fn halt_sleep_until_the_timer_then_power_off() {
    // hlt; out dx, al (the guest's timer handler runs in between, unseen).
    let ram = Ram::new(0x10_0000);
    ram.write_gpa(CODE, &[0xf4, 0xee, 0xee]).unwrap();
    let mut v = vmm();
    // Software-enabled APIC, TSC-deadline timer on vector 0xec due at 1000.
    v.platform.lapic.write_msr(0x80f, 0x1ff, 0).unwrap();
    v.platform
        .lapic
        .write_msr(0x832, 0xec | (2 << 17), 0)
        .unwrap();
    v.platform.lapic.write_msr(0x6e0, 1000, 0).unwrap();

    let script: Vec<Step> = vec![
        Box::new(|w, now| {
            *now = 10;
            w[Word::EXIT_CODE] = exit::HLT;
            Ok(Entered::Exit)
        }),
        // The halted vCPU sleeps until the deadline the VMM passed.
        Box::new(|w, now| {
            *now = 1000;
            w[Word::EXIT_CODE] = pseudo_exit::DEADLINE;
            Ok(Entered::Exit)
        }),
        out_exit(0x3f8, u64::from(b'A'), 1),
        out_exit(crate::acpi::SLEEP_CONTROL_PORT, 0x34, 1),
    ];
    let (mut w, _q) = wiring();
    let Ran {
        stop,
        vcpu,
        st,
        console,
    } = run_script(&mut v, &ram, &mut w, boot_words(), script);
    assert_eq!(stop, Stop::PowerOff);
    assert_eq!(
        vcpu.entries,
        [
            entered(0, 1000, 0),
            entered(kernel_abi::vcpu::flags::HALTED, 1000, 0),
            entered(0, 0, event::VALID | 0xec),
            entered(0, 0, 0),
        ]
    );
    // Past the HLT and both OUTs (the last one not entered again).
    assert_eq!(vcpu.words[Word::RIP], CODE + 2);
    assert_eq!(st.rip(), CODE + 3);
    assert_eq!(console, b"A", "flushed at the end");
    assert!(v.platform.lapic.isr().contains(0xec));
    assert_eq!(v.stats.of(isolation::ExitKind::Deadline), 1);
}

#[test]
fn a_notification_is_not_an_exit_and_a_refused_entry_stops() {
    let ram = Ram::new(0x2000);
    let mut v = vmm();
    let script: Vec<Step> = vec![
        // A notification with a leftover exit code: nothing is handled.
        Box::new(|w, _| {
            w[Word::EXIT_CODE] = exit::SHUTDOWN;
            Ok(Entered::Notified(ipc::ChannelSet::from_bits(2)))
        }),
        Box::new(|_, _| Err(IpcError::Transport)),
    ];
    let (mut w, _q) = wiring();
    let Ran { stop, vcpu, .. } = run_script(&mut v, &ram, &mut w, boot_words(), script);
    assert!(
        matches!(stop, Stop::Fatal { what, .. } if what.contains("VM_ENTER")),
        "{stop:?}"
    );
    assert_eq!(vcpu.entries.len(), 2);
    assert_eq!(v.stats.total(), 0);
}

#[test]
fn queued_interrupts_are_injected_before_the_next_entry_and_corruption_stops_the_run() {
    let ram = Ram::new(0x2000);
    let mut v = vmm();
    v.platform.lapic.write_msr(0x80f, 0x1ff, 0).unwrap();
    let (mut w, mut q) = wiring();
    q.synic.try_enqueue(synic_entry(0, 0x33)).unwrap();
    let region = q.synic_region;
    let script: Vec<Step> = vec![Box::new(move |w, _| {
        w[Word::EXIT_CODE] = exit::VINTR;
        // synic-pd goes bad while the guest runs.
        region
            .atomic_u32(0)
            .unwrap()
            .store(CAPACITY * 4, Ordering::Release);
        Ok(Entered::Exit)
    })];
    let Ran { stop, vcpu, .. } = run_script(&mut v, &ram, &mut w, boot_words(), script);
    assert!(matches!(stop, Stop::Fatal { what, .. } if what.contains("corrupt")));
    assert_eq!(vcpu.entries, [entered(0, 0, event::VALID | 0x33)]);
}

#[test]
fn a_guest_halted_with_interrupts_masked_stays_asleep() {
    // cli; hlt with an interrupt already pending: the VMM sleeps, never spins.
    let ram = Ram::new(0x2000);
    ram.write_gpa(CODE, &[0xf4]).unwrap();
    let mut v = vmm();
    v.platform.lapic.write_msr(0x80f, 0x1ff, 0).unwrap();
    v.deliver(0x40, false);
    let mut words = boot_words();
    words[Word::RFLAGS] = 2;
    let script: Vec<Step> = vec![
        Box::new(|w, _| {
            w[Word::EXIT_CODE] = exit::HLT;
            Ok(Entered::Exit)
        }),
        Box::new(|_, _| Ok(Entered::Notified(ipc::ChannelSet::from_bits(2)))),
        Box::new(|w, _| {
            w[Word::EXIT_CODE] = pseudo_exit::DEADLINE;
            Ok(Entered::Exit)
        }),
    ];
    let (mut w, _q) = wiring();
    let Ran { stop, vcpu, .. } = run_script(&mut v, &ram, &mut w, words, script);
    assert!(matches!(stop, Stop::Fatal { .. }), "the script ran out");
    let flags: Vec<u64> = vcpu.entries.iter().map(|e| e.flags).collect();
    let halted = kernel_abi::vcpu::flags::HALTED;
    assert_eq!(flags, [0, halted, halted, halted]);
    assert!(vcpu.entries.iter().all(|e| e.inject == 0));
    assert!(v.platform.lapic.irr().contains(0x40));
}

#[test]
fn drain_honours_ioapic_destination_and_delivery_mode() {
    let with = |vector, mode: u8, flags, destination| ioapic::api::IrqEntry {
        delivery_mode: mode,
        destination,
        ..ioapic_entry(vector, flags, 0)
    };
    let logical = ioapic::api::IrqEntry::FLAG_LOGICAL;
    let entries = [
        with(0x60, 0, 0, 0),          // fixed, physical APIC 0: ours
        with(0x61, 0, 0, 0xff),       // physical broadcast: ours
        with(0x62, 1, logical, 0x01), // lowest priority, logical set with CPU 0
        with(0x63, 0, 0, 1),          // physical APIC 1: nobody here
        with(0x64, 0, logical, 0x02), // logical set without CPU 0
        with(0x65, 5, 0, 0),          // INIT: nothing behind it
        with(0x00, 4, 0, 0),          // NMI
    ];
    let (w, mut v, _, _) = drained(|q| {
        for e in entries {
            q.ioapic.try_enqueue(e).unwrap();
        }
    });
    let irr = v.platform.lapic.irr();
    for (vector, want) in [
        (0x60, true),
        (0x61, true),
        (0x62, true),
        (0x63, false),
        (0x64, false),
        (0x65, false),
    ] {
        assert_eq!(irr.contains(vector), want, "vector {vector:#x}");
    }
    assert_eq!(w.dropped, 3);
    // The NMI goes out ahead of the pending interrupts, as an NMI event.
    let mut st = VcpuState::new();
    st.set(Word::RFLAGS, RFLAGS_IF | 2);
    v.before_entry(&mut st, 0);
    assert_eq!(
        st.get(Word::EVENT_INJECT),
        event::VALID | event::TYPE_NMI | 2
    );
    v.before_entry(&mut st, 0);
    assert_eq!(
        st.get(Word::EVENT_INJECT),
        event::VALID | event::TYPE_NMI | 2,
        "the slot stays taken until delivered"
    );
}

/// What `forward` did for one notification at TSC 0: the protected calls it made
/// (channel, first two words), the irqs acknowledged, and the VMM.
fn forwarded(chs: &[Channel]) -> (Vec<(Channel, u64, u64)>, Vec<Channel>, Vmm) {
    let (mut w, _) = wiring();
    let mut v = vmm();
    let mut calls = Vec::new();
    let mut k = RoutingKernel::new(|call: PpCall<'_>| {
        calls.push((call.ch, call.mrs.get(0), call.mrs.get(1)));
        Err(IpcError::NotGranted(call.ch))
    });
    w.forward(&mut v, &mut k, chs.iter().copied().collect(), 0);
    let acked = k.record.acked.clone();
    drop(k);
    (calls, acked, v)
}

#[test]
fn a_forwarded_irq_is_an_edge_on_the_guests_line_held_until_handled() {
    let (calls, acked, v) = forwarded(&[Channel::new(1), SERIAL.channel]);
    let lines = CHANNELS.ioapic_lines.unwrap();
    let pulse = ioapic::api::LineAction::PULSE.0;
    assert_eq!(calls, vec![(lines, 3, pulse)]);
    assert!(
        acked.is_empty(),
        "the host line stays masked while the guest handles it"
    );
    assert_eq!(v.forward.held_since, Some(0));
    assert_eq!(v.stats.forwarded_irqs, 1);
    // The ioapic PD refused (this kernel grants no calls): counted.
    assert_eq!(v.stats.uart_line_refused, 1);
}

#[test]
fn other_notifications_forward_nothing() {
    let (calls, acked, v) = forwarded(&[Channel::new(1), Channel::new(2)]);
    assert!(calls.is_empty() && acked.is_empty());
    assert_eq!(v.stats.forwarded_irqs, 0);
    assert_eq!(v.forward.held_since, None);
}

/// The acknowledgements `release` makes for one held line whose interrupt the
/// guest's IOAPIC delivered on vector 0x33: (EOI vector written, TSC, acked).
#[test]
fn the_held_line_is_released_by_its_eoi_or_after_a_millisecond() {
    let table = [
        (Some(0x33), 10, true),
        (Some(0x34), 10, false),
        (None, 10, false),
        (None, TSC_HZ / 1000, true),
        (Some(0x34), TSC_HZ / 1000 + 5, true),
    ];
    for (eoi, now, released) in table {
        let (mut w, _) = wiring();
        let mut v = vmm();
        v.forward.held_since = Some(0);
        v.forward.vector = Some(0x33);
        let mut k = RecordingKernel::default();
        w.release(&mut v, &mut k, eoi, now);
        let want = if released {
            vec![SERIAL.channel]
        } else {
            vec![]
        };
        assert_eq!(k.acked, want, "{eoi:?} at {now}");
        assert_eq!(v.forward.held_since.is_none(), released);
        assert_eq!(w.release_deadline(&v), (!released).then_some(TSC_HZ / 1000));
    }
}

#[test]
fn the_ioapic_delivery_of_the_forwarded_line_names_its_vector() {
    let (_, v, _, _) = drained(|q| {
        let mut e = ioapic_entry(0x33, 0, 0);
        e.pin = 3;
        q.ioapic.try_enqueue(e).unwrap();
        q.ioapic.try_enqueue(ioapic_entry(0x44, 0, 0)).unwrap();
    });
    assert_eq!(v.forward.vector, Some(0x33));
}

#[test]
fn a_synic_auto_eoi_request_is_delivered_without_entering_service() {
    let (_, mut v, _, _) = drained(|q| {
        let auto = SynicEntry {
            flags: SynicEntry::FLAG_AUTO_EOI,
            ..synic_entry(0, 0x41)
        };
        q.synic.try_enqueue(auto).unwrap();
        q.synic.try_enqueue(synic_entry(0, 0x40)).unwrap();
    });
    v.platform.lapic_acknowledge(0x41);
    v.platform.lapic_acknowledge(0x40);
    let isr = v.platform.lapic.isr();
    assert!(!isr.contains(0x41) && isr.contains(0x40));
}
