//! A simulated guest and its vCPU PD in one, for the hvcall/synic system. Once the
//! port daemon says the connections exist, it does what a Linux guest's Hyper-V
//! code does (CPUID detection, guest OS id, hypercall page, SynIC enable on both
//! instances) and then posts messages and signals events through hvcall-pd, reading
//! the results from its own mapping of guest RAM and the interrupt requests from
//! synic-pd's queue. It prints what it checked and exits 0, or exits 1 naming the
//! first check that failed.
//!
//! With `HV_BENCH_SIGNALS=<n>` it instead times `n` HvSignalEvent round trips
//! (hypercall exit -> hvcall-pd -> synic-pd -> flag + interrupt request -> back) and
//! prints `guest: bench signal_event n=<n> ns_per_op=<x>`.
//!
//! Channels: 0 = hvcall-pd (exits), 1 = synic-pd (SynIC MSRs; interrupt
//! notifications), 2 = the port daemon (its "ready" notification).

use std::time::Instant;

use hvcall_pd::api as hvapi;
use hvcall_pd::{HypercallRequest, Outcome};
use hvdef::hypercall::{PostMessageInput, SignalEventInput};
use hvdef::message::HvMessage;
use hvdef::msr::*;
use hvdef::synic::{SimpSiefpRegister, SintRegister};
use hvdef::{Control, HvStatus, HypercallCode, HypercallResult, Vtl};
use ipc::{Channel, ChannelSet, Consumer, Handler, HandlerError, InitError, Kernel, Region};
use synic_pd::api::{self as syapi, IrqEntry, MsrStatus};
use synic_pd::pd::IRQ_QUEUE_CAPACITY;
use synic_pd::Instance;
use system_tests::hv::*;
use zerocopy::{FromZeros, IntoBytes};

const HVCALL: Channel = Channel::new(0);
const SYNIC: Channel = Channel::new(1);
const PORTD: Channel = Channel::new(2);

struct Guest {
    ram: Region<'static>,
    shared: Region<'static>,
    irqs: Consumer<'static, IrqEntry>,
    bench: Option<u64>,
    scenario_done: bool,
}

macro_rules! check {
    ($cond:expr, $($what:tt)*) => {
        if !$cond {
            return Err(format!($($what)*));
        }
    };
}

impl Guest {
    fn hypercall(
        &self,
        k: &mut dyn Kernel,
        control: Control,
        rdx: u64,
        r8: u64,
    ) -> Result<HypercallResult, String> {
        let req = HypercallRequest::vp0(control, rdx, r8);
        match hvapi::hypercall(k, HVCALL, &req) {
            Ok(Some(Outcome::Complete(r))) => Ok(r),
            other => Err(format!("hypercall {control:?}: {other:?}")),
        }
    }

    fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), String> {
        let r = if gpa >= SHARED_GPA {
            self.shared.write_bytes((gpa - SHARED_GPA) as usize, bytes)
        } else {
            self.ram.write_bytes(gpa as usize, bytes)
        };
        r.map_err(|e| format!("guest write at {gpa:#x}: {e}"))
    }

    fn post(
        &self,
        k: &mut dyn Kernel,
        gpa: u64,
        conn: u32,
        payload: &[u8],
    ) -> Result<HvStatus, String> {
        let mut p = PostMessageInput::new_zeroed();
        p.connection_id = conn;
        p.message_type = 1;
        p.payload_size = payload.len() as u32;
        p.payload[..payload.len()].copy_from_slice(payload);
        self.write_gpa(gpa, p.as_bytes())?;
        Ok(self
            .hypercall(k, Control::new(HypercallCode::POST_MESSAGE), gpa, 0)?
            .status())
    }

    fn signal(&self, k: &mut dyn Kernel, conn: u32, flag: u16) -> Result<HvStatus, String> {
        // As Linux issues it: a fast call with the input in RDX.
        let input = SignalEventInput {
            connection_id: conn,
            flag_number: flag,
            reserved: 0,
        }
        .to_u64();
        Ok(self
            .hypercall(
                k,
                Control::new(HypercallCode::SIGNAL_EVENT).with_fast(true),
                input,
                0,
            )?
            .status())
    }

    fn wrmsr_synic(
        &self,
        k: &mut dyn Kernel,
        instance: Instance,
        msr: u32,
        value: u64,
    ) -> Result<(), String> {
        match syapi::write_msr(k, SYNIC, 0, instance, msr, value) {
            Ok(MsrStatus::Ok) => Ok(()),
            other => Err(format!("wrmsr {msr:#x} on {instance:?}: {other:?}")),
        }
    }

    fn slot(&self, simp: u64, sint: usize) -> Result<HvMessage, String> {
        self.ram
            .read::<HvMessage>(simp as usize + sint * 256)
            .map_err(|e| format!("reading slot: {e}"))
    }

    /// What Linux's vmbus_on_msg_dpc does when done with a message.
    fn free_slot(
        &self,
        k: &mut dyn Kernel,
        instance: Instance,
        simp: u64,
        sint: usize,
    ) -> Result<(), String> {
        let off = simp as usize + sint * 256;
        let ty = self.ram.atomic_u32(off).map_err(|e| e.to_string())?;
        ty.store(0, std::sync::atomic::Ordering::SeqCst);
        let flags = self.ram.read::<u8>(off + 5).map_err(|e| e.to_string())?;
        if flags & 1 != 0 {
            self.wrmsr_synic(k, instance, HV_X64_MSR_EOM, 0)?;
        }
        Ok(())
    }

    fn take_irqs(&mut self) -> Result<Vec<(u8, u8)>, String> {
        let mut v = Vec::new();
        while let Some(e) = self.irqs.dequeue().map_err(|e| format!("irq queue: {e}"))? {
            v.push((e.vector, e.instance));
        }
        Ok(v)
    }

    fn setup(&mut self, k: &mut dyn Kernel) -> Result<(), String> {
        // Hyper-V detection, as arch/x86/kernel/cpu/mshyperv.c does it.
        let vendor = hvapi::cpuid(k, HVCALL, 0, 0x4000_0000, 0).map_err(|e| e.to_string())?;
        let Some([max, b, c, d]) = vendor else {
            return Err("no hypervisor leaves".into());
        };
        let sig: Vec<u8> = [b, c, d].iter().flat_map(|w| w.to_le_bytes()).collect();
        check!(
            sig == b"Microsoft Hv" && max >= 0x4000_0005,
            "vendor leaf {sig:?} max {max:#x}"
        );
        let features = hvapi::cpuid(k, HVCALL, 0, 0x4000_0003, 0)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        check!(
            features[0] & 0x60 == 0x60,
            "HYPERCALL/VP_INDEX privileges missing: {:#x}",
            features[0]
        );
        let vs = hvapi::cpuid(k, HVCALL, 0, 0x4000_0082, 0)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        check!(vs[0] & 8 != 0, "no Confidential VMBus bit");
        println!("guest: cpuid ok (Microsoft Hv, max leaf {max:#x}, confidential vmbus)");

        // Guest OS id, then the hypercall page.
        let wr = |k: &mut dyn Kernel, msr, v| hvapi::write_msr(k, HVCALL, 0, Vtl::VTL0, msr, v);
        check!(
            wr(k, HV_X64_MSR_GUEST_OS_ID, 0x8100_0000_0006_0100) == Ok(Some(hvapi::MsrReply::Ok)),
            "guest os id"
        );
        check!(
            wr(k, HV_X64_MSR_HYPERCALL, HYPERCALL_PAGE | 1) == Ok(Some(hvapi::MsrReply::Ok)),
            "hypercall msr"
        );
        let code = self
            .ram
            .read::<[u8; 4]>(HYPERCALL_PAGE as usize)
            .map_err(|e| e.to_string())?;
        check!(
            code == [0x0F, 0x01, 0xD9, 0xC3],
            "hypercall page holds {code:x?}"
        );
        println!("guest: hypercall page ok (vmmcall; ret)");

        // Both SynICs, as hv_synic_enable_regs does for each.
        for (inst, simp, siefp, vector) in [
            (Instance::PARAVISOR, PV_SIMP, PV_SIEFP, PV_VECTOR),
            (Instance::HYPERVISOR, HV_SIMP, HV_SIEFP, HV_VECTOR),
        ] {
            self.wrmsr_synic(
                k,
                inst,
                HV_X64_MSR_SIMP,
                SimpSiefpRegister::new(true, simp >> 12).0,
            )?;
            self.wrmsr_synic(
                k,
                inst,
                HV_X64_MSR_SIEFP,
                SimpSiefpRegister::new(true, siefp >> 12).0,
            )?;
            self.wrmsr_synic(k, inst, HV_X64_MSR_SINT0 + 2, SintRegister::new(vector).0)?;
            self.wrmsr_synic(k, inst, HV_X64_MSR_SCONTROL, 1)?;
        }
        println!("guest: both synics enabled");
        Ok(())
    }

    fn scenario(&mut self, k: &mut dyn Kernel) -> Result<(), String> {
        // A message into the paravisor SynIC.
        let s = self.post(k, INPUT_PAGE, CONN_PV_MESSAGE, b"hello paravisor")?;
        check!(s == HvStatus::SUCCESS, "post to the paravisor port: {s:?}");
        let m = self.slot(PV_SIMP, 2)?;
        check!(
            m.header.message_type.0 == 1 && m.payload() == b"hello paravisor",
            "paravisor slot: {m:?}"
        );
        check!(
            m.header.sender == CONN_PV_MESSAGE as u64,
            "port id {:#x}",
            m.header.sender
        );
        check!(
            self.slot(HV_SIMP, 2)?.header.message_type.0 == 0,
            "leaked into the hypervisor SynIC"
        );
        let irqs = self.take_irqs()?;
        check!(
            irqs == [(PV_VECTOR, 0)],
            "interrupts after the post: {irqs:?}"
        );
        println!("guest: message delivered to the paravisor synic slot 2 (vector {PV_VECTOR:#x})");

        // An event.
        let s = self.signal(k, CONN_PV_EVENT, 77)?;
        check!(s == HvStatus::SUCCESS, "signal: {s:?}");
        let byte = self
            .ram
            .read::<u8>(PV_SIEFP as usize + 2 * 256 + 77 / 8)
            .map_err(|e| e.to_string())?;
        check!(byte == 1 << (77 % 8), "flag byte {byte:#x}");
        let s = self.signal(k, CONN_PV_EVENT, 77)?;
        check!(s == HvStatus::SUCCESS, "second signal: {s:?}");
        let irqs = self.take_irqs()?;
        check!(
            irqs == [(PV_VECTOR, 0)],
            "only the 0->1 transition interrupts: {irqs:?}"
        );
        println!("guest: event flag 77 set, one interrupt");

        // The hypervisor-relay instance gets only what is addressed to it.
        let s = self.post(k, INPUT_PAGE, CONN_HV_MESSAGE, b"hello relay")?;
        check!(s == HvStatus::SUCCESS, "post to the relay port: {s:?}");
        check!(
            self.slot(HV_SIMP, 2)?.payload() == b"hello relay",
            "relay slot"
        );
        check!(
            self.slot(PV_SIMP, 2)?.payload() == b"hello paravisor",
            "paravisor slot changed"
        );
        check!(self.take_irqs()? == [(HV_VECTOR, 1)], "relay interrupt");
        println!("guest: message delivered to the hypervisor-relay synic only");

        // Busy slot: queue up to the depth, then INSUFFICIENT_BUFFERS; EOM drains.
        for i in 0..4u8 {
            let s = self.post(k, INPUT_PAGE, CONN_PV_MESSAGE, &[b'q', b'0' + i])?;
            check!(s == HvStatus::SUCCESS, "queued post {i}: {s:?}");
        }
        let s = self.post(k, INPUT_PAGE, CONN_PV_MESSAGE, b"too many")?;
        check!(
            s == HvStatus::INSUFFICIENT_BUFFERS,
            "overflowing post: {s:?}"
        );
        check!(
            self.slot(PV_SIMP, 2)?.header.flags & 1 == 1,
            "pending flag not set"
        );
        self.free_slot(k, Instance::PARAVISOR, PV_SIMP, 2)?;
        check!(
            self.slot(PV_SIMP, 2)?.payload() == b"q0",
            "after EOM: {:?}",
            self.slot(PV_SIMP, 2)?
        );
        check!(
            self.take_irqs()? == [(PV_VECTOR, 0)],
            "EOM delivery interrupt"
        );
        println!("guest: busy slot queued 4, refused the 5th with INSUFFICIENT_BUFFERS, EOM delivered the next");

        // A paravisor service and the host relay.
        let s = self.post(k, INPUT_PAGE, CONN_SERVICE, b"for the service")?;
        check!(s == HvStatus::SUCCESS, "service post: {s:?}");
        let s = self.post(k, SHARED_GPA, CONN_HOST, b"for the host")?;
        check!(
            s == HvStatus::SUCCESS,
            "host post from shared memory: {s:?}"
        );
        let s = self.post(k, INPUT_PAGE, CONN_HOST, b"private secret")?;
        check!(
            s == HvStatus::ACCESS_DENIED,
            "host post from private memory: {s:?}"
        );
        println!("guest: host relay took the shared buffer and refused the private one");

        // Errors a guest can provoke.
        let s = self.post(k, INPUT_PAGE, 0x99, b"nobody")?;
        check!(
            s == HvStatus::INVALID_CONNECTION_ID,
            "unknown connection: {s:?}"
        );
        let s = self
            .hypercall(k, Control::new(HypercallCode(0x7777)), INPUT_PAGE, 0)?
            .status();
        check!(s == HvStatus::INVALID_HYPERCALL_CODE, "unknown code: {s:?}");
        let s = self
            .hypercall(
                k,
                Control::new(HypercallCode::POST_MESSAGE),
                INPUT_PAGE + 4,
                0,
            )?
            .status();
        check!(s == HvStatus::INVALID_ALIGNMENT, "unaligned input: {s:?}");
        println!("guest: error statuses ok");
        Ok(())
    }

    fn bench(&mut self, k: &mut dyn Kernel, n: u64) -> Result<(), String> {
        let flag_byte = PV_SIEFP as usize + 2 * 256;
        let start = Instant::now();
        for _ in 0..n {
            let s = self.signal(k, CONN_PV_EVENT, 0)?;
            check!(s == HvStatus::SUCCESS, "bench signal: {s:?}");
            // The guest's interrupt handler: consume the flag and the request.
            self.ram.write(flag_byte, &0u8).map_err(|e| e.to_string())?;
            check!(
                self.irqs.dequeue().map_err(|e| e.to_string())?.is_some(),
                "no interrupt request"
            );
        }
        let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
        println!("guest: bench signal_event n={n} ns_per_op={ns:.1}");
        Ok(())
    }
}

fn finish(result: Result<(), String>) -> ! {
    hostsim::finish("guest", result)
}

impl Handler for Guest {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) -> Result<(), HandlerError> {
        if !channels.contains(PORTD) {
            return Ok(()); // interrupt notifications: the checks poll the queue
        }
        // The port daemon notifies twice: once its connections exist, and once it
        // has taken the service message off its queue (so its report is out before
        // this PD's exit ends the run).
        if self.scenario_done {
            finish(Ok(()));
        }
        let result = self.setup(k).and_then(|()| match self.bench {
            Some(n) => self.bench(k, n),
            None => self.scenario(k),
        });
        if result.is_err() || self.bench.is_some() {
            finish(result);
        }
        self.scenario_done = true;
        Ok(())
    }
}

fn main() {
    let bench = std::env::var("HV_BENCH_SIGNALS")
        .ok()
        .and_then(|s| s.parse().ok());
    hostsim::run(|init, _| {
        let irq_region = init.region("irq_queue")?;
        let irqs = Consumer::new(irq_region, IRQ_QUEUE_CAPACITY).map_err(|_| {
            InitError::RegionTooSmall {
                name: "irq_queue",
                needed: 0,
                granted: irq_region.len(),
            }
        })?;
        Ok(Guest {
            ram: init.region("guest_ram")?,
            shared: init.region("guest_shared")?,
            irqs,
            bench,
            scenario_done: false,
        })
    })
}
