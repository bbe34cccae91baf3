//! The VMM PD on the bare-metal runtime (linux.xml): loads the guest payload into
//! guest RAM, then runs vCPU 0 of its `virtual_machine` with `VM_ENTER` until the
//! guest powers off, and halts the machine with the outcome (0 = powered off).
//!
//! Channels (linux.xml): 0 hvcall (calls), 1 synic (calls; interrupt queue
//! notifications both ways), 2 ioapic (calls; interrupt queue notifications both
//! ways), 3 ioapic (the lines of the devices this VMM emulates), 4 tpm (calls:
//! the guest's faulting accesses to the vTPM's CRB pages).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;

use ipc::{Channel, Consumer, Init, InitError, InitExt, Kernel, Perms, Region};
use kernel_abi::vcpu::{StateWords, Word};
use metal_pds::Never;
use pd_rt::vcpu::{Vcpu, VmEvent};
use system_constants::channel::vmm as described;
use system_constants::metal_linux::region_size;
use vmm::decode::{GuestMemory, MemError};
use vmm::devices::tpm_crb::{TpmDevice, LOG_GPA};
use vmm::exits::{Clock, Stop, Vmm};
use vmm::loader::{GuestRamWrite, OutsideRam};
use vmm::peers::Channels;
use vmm::platform::Platform;
use vmm::run::{Entered, Entry, ForwardedIrq, SvmCpu, VpIndex, Wiring};

// The payload is copied out of its region once, to parse it as one slice: the
// region's 48 MiB (linux.xml) and the VMM's own allocations.
pd_rt::global_heap!(64 * 1024 * 1024);

/// The hvcall, synic and tpm ids are linux.xml's (generated); the two ioapic
/// channels have no generated names (one peer, two channels), so they are written
/// here.
const CHANNELS: Channels = Channels {
    hvcall: described::HVCALL,
    synic: described::SYNIC,
    ioapic: Some(Channel::new(2)),
    ioapic_lines: Some(Channel::new(3)),
    tpm: Some(described::TPM),
};

/// COM2's line (linux.xml `<irq irq="3" id="5">`): the guest drives the UART
/// itself (its ports are the VM's `<ioport>` grant), the VMM only passes its
/// interrupt on as ISA IRQ 3.
const SERIAL: ForwardedIrq = ForwardedIrq {
    channel: Channel::new(5),
    line: 3,
};

/// The vTPM linux.xml gives the guest: the tpm PD on channel 4, and its TCG2
/// event log in `tpm_log`, which linux.xml maps into the VM read-only at
/// [`LOG_GPA`] (the TPM2 table's LASA; LAML the region's size). Without an
/// engine the tpm PD leaves it zero, which Linux reads as no log.
const TPM: TpmDevice = TpmDevice {
    log: Some((LOG_GPA, region_size::TPM_LOG as u32)),
};

/// What the RTC reads at boot: 2026-01-01T00:00:00Z (there is no wall clock here).
const WALL_CLOCK: i64 = 1_767_225_600;

/// The local APIC timer's input clock the guest is told (HV_X64_MSR_APIC_FREQUENCY).
const APIC_HZ: u64 = 1_000_000_000;

struct Ram(Region<'static>);

impl GuestMemory for Ram {
    fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let offset = usize::try_from(gpa).map_err(|_| MemError { gpa })?;
        self.0.read_bytes(offset, buf).map_err(|_| MemError { gpa })
    }
}

impl GuestRamWrite for Ram {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
        let outside = OutsideRam {
            gpa,
            len: bytes.len() as u64,
        };
        let offset = usize::try_from(gpa).map_err(|_| outside)?;
        self.0.write_bytes(offset, bytes).map_err(|_| outside)
    }
}

/// pd-rt's vCPU behind the VMM's loop.
struct RtVcpu(Vcpu);

impl SvmCpu for RtVcpu {
    type Error = ipc::IpcError;

    fn vmrun(
        &mut self,
        _: VpIndex,
        words: &mut StateWords,
        entry: Entry,
    ) -> Result<Entered, ipc::IpcError> {
        // The VMM's words go in as they are and the exit's come back the same way.
        core::mem::swap(self.0.state_mut(), words);
        let event = self.0.enter(entry.flags(), entry.deadline_word());
        core::mem::swap(self.0.state_mut(), words);
        Ok(match event? {
            VmEvent::Exit(_) => Entered::Exit,
            VmEvent::Notification(chs) => Entered::Notified(chs),
        })
    }

    fn now(&self) -> u64 {
        pd_rt::sys::rdtsc()
    }
}

fn queue<T>(
    init: &dyn Init,
    name: &'static str,
    capacity: u32,
) -> Result<Consumer<'static, T>, InitError>
where
    T: ipc::QueueEntry,
{
    let region = init.region_with(name, Perms::RW)?;
    Consumer::new(region, capacity).map_err(|_| InitError::RegionTooSmall {
        name,
        needed: ipc::Queue::<T>::layout_size(capacity).unwrap_or(usize::MAX),
        granted: region.len(),
    })
}

fn start(init: &dyn Init, kernel: &mut dyn Kernel) -> Result<Never, InitError> {
    let ram = Ram(init.region_with("guest_ram", Perms::RW)?);
    let payload_region = init.region_with("guest_payload", Perms::R)?;
    let mut wiring = Wiring {
        channels: CHANNELS,
        synic: queue(init, "irq_queue", synic_pd::pd::IRQ_QUEUE_CAPACITY)?,
        ioapic: Some(queue(init, "ioapic_queue", ioapic::pd::IRQ_QUEUE_CAPACITY)?),
        forwarded: Some(SERIAL),
        dropped: 0,
    };
    let mut payload = vec![0u8; payload_region.len()];
    if payload_region.read_bytes(0, &mut payload).is_err() {
        pd_rt::println!("vmm: cannot read the guest payload region");
        pd_rt::sys::debug_halt(2);
    }
    let loaded = match vmm::loader::load_with(&payload, &ram, 1, Some(&TPM)) {
        Ok(l) => l,
        Err(e) => {
            pd_rt::println!("vmm: cannot load the guest: {e}");
            pd_rt::sys::debug_halt(2);
        }
    };
    drop(payload);
    let mut state = loaded.state;
    let mut vcpu = RtVcpu(Vcpu::new(0));
    // A first entry that runs nothing (halted, deadline already passed) loads the
    // boot state and brings back the kernel's TSC rate, which the timers need.
    let probe = vcpu.vmrun(
        vmm::run::VP,
        state.words_mut(),
        Entry {
            halted: true,
            deadline: Some(1),
        },
    );
    let tsc_hz = state.get(Word::TSC_HZ);
    if probe.is_err() || tsc_hz == 0 {
        pd_rt::println!("vmm: the kernel refused vCPU 0 ({probe:?}) or gave no TSC rate");
        pd_rt::sys::debug_halt(2);
    }
    pd_rt::println!("vmm: {}; TSC {} kHz", loaded.summary, tsc_hz / 1000);
    let started = pd_rt::sys::rdtsc();
    let clock = Clock {
        tsc_hz,
        apic_hz: APIC_HZ,
    };
    let platform = Platform::new(tsc_hz, APIC_HZ, WALL_CLOCK, started);
    let mut machine = Vmm::new(loaded.presentation, clock, platform, vmm::cpuid::host);
    let stop = vmm::run::run(
        &mut machine,
        &mut state,
        &mut vcpu,
        &ram,
        kernel,
        &mut wiring,
        &mut |bytes| pd_rt::sys::debug_puts(bytes),
    );
    let elapsed = pd_rt::sys::rdtsc().wrapping_sub(started);
    pd_rt::println!(
        "vmm: guest ran {} ms; {}",
        elapsed / (tsc_hz / 1000).max(1),
        machine.stats.summary()
    );
    pd_rt::println!("vmm: {}", machine.stats.msr_breakdown(12));
    pd_rt::println!("vmm: {}", machine.stats.port_breakdown(12));
    if wiring.dropped != 0 {
        pd_rt::println!(
            "vmm: {} interrupt requests named another vCPU or made no sense; dropped",
            wiring.dropped
        );
    }
    let odd = machine.stats.oddities();
    if !odd.is_empty() {
        pd_rt::println!("vmm: {odd}");
    }
    let status = match stop {
        Stop::PowerOff => {
            pd_rt::println!("vmm: the guest powered off");
            0
        }
        Stop::TripleFault { rip } => {
            pd_rt::println!(
                "vmm: the guest triple-faulted at rip {rip:#x}; the paravisor keeps running"
            );
            3
        }
        Stop::Fatal { what, code, rip } => {
            pd_rt::println!("vmm: stopped: {what} (exit {code:#x} at rip {rip:#x})");
            4
        }
    };
    pd_rt::sys::debug_halt(status)
}

pd_rt::entry!(start);
