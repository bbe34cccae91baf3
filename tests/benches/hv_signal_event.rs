//! The HvSignalEvent path — exit decode, route lookup, event flag set, interrupt
//! request — through host-sim (hv_guest -> hvcall-pd -> synic-pd, each a process,
//! every hop a real protected call) against the very same handlers called in one
//! process. Prints both per-operation costs and their ratio.
//!
//! `cargo bench -p system-tests --bench hv_signal_event`; `QUICK=1` runs a few
//! iterations only, to check that it works.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use hvcall_pd::api::{self, RegisterStatus, Registration, RouteKind};
use hvcall_pd::pd::{self as hv, HvcallPd};
use hvcall_pd::{HypercallRequest, Outcome};
use hvdef::hypercall::SignalEventInput;
use hvdef::{Control, HvStatus, HypercallCode, Vtl};
use ipc::testing::{call_handler, leaked_region};
use ipc::{Channel, Consumer, Handler, IpcError, Kernel, MessageRegisters, PpCall, PpReply};
use synic_pd::api::IrqEntry;
use synic_pd::pd::{self as sy, SynicPd};
use synic_pd::{Instance, SintTarget};

const H_VCPU: Channel = hvcall_pd::testing::VCPU;
const H_SYNIC: Channel = hvcall_pd::testing::SYNIC;
const H_PORTS: Channel = hvcall_pd::testing::SERVICE;
const S_VCPU: Channel = Channel::new(0);
const S_HVCALL: Channel = Channel::new(1);
const SIMP: u64 = 0x4000;
const SIEFP: u64 = 0x5000;
const CONN: u32 = 0x11;

/// Drops what the PDs ask of it: the baseline should time the handlers, not a
/// record growing by one entry per signal (hence not `ipc::testing::RecordingKernel`).
#[derive(Default)]
struct Quiet;

impl Kernel for Quiet {
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        Err(IpcError::NotGranted(call.ch))
    }
    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        Err(IpcError::NotGranted(ch))
    }
    fn debug_puts(&mut self, _: &str) {}
}

/// hvcall-pd's kernel in one process: its synic channel calls synic-pd's handler.
struct Direct {
    synic: Box<SynicPd<8, 4>>,
}

impl Kernel for Direct {
    fn notify(&mut self, _: Channel) -> Result<(), IpcError> {
        Ok(())
    }
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        if call.ch != H_SYNIC {
            return Err(IpcError::NotGranted(call.ch));
        }
        call_handler(&mut *self.synic, &mut Quiet, call, S_HVCALL)
    }
    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        Err(IpcError::NotGranted(ch))
    }
    fn debug_puts(&mut self, _: &str) {}
}

/// ns per signal with both PDs' handlers in this process.
fn in_process(n: u64) -> f64 {
    let ram = leaked_region(16 * 4096);
    let irq = synic_pd::testing::irq_queue();
    let synic_init = synic_pd::testing::init(ram, irq, S_VCPU, S_HVCALL.bit());
    let hvcall_init = hvcall_pd::testing::init(ram, hvcall_pd::testing::service_queue(), 1 << 30)
        .variable(hv::SYNIC_PORT_CHANNELS, H_PORTS.bit());
    let mut world = Direct {
        synic: Box::new(SynicPd::init(&synic_init).expect("synic init")),
    };
    let mut hvcall: Box<HvcallPd<8, 64>> =
        Box::new(HvcallPd::init(&hvcall_init).expect("hvcall init"));
    // VP 0 enables the paravisor SynIC the way Linux does.
    let enable = synic_pd::api::enable_requests(0, Instance::PARAVISOR, (SIMP, SIEFP), 2, 0x30);
    for req in enable {
        let mut mrs = MessageRegisters::new();
        let info = req.encode(&mut mrs);
        let call = PpCall::new(S_VCPU, info, &mut mrs);
        world.synic.protected(&mut Quiet, call).expect("wrmsr");
    }
    let reg = Registration {
        connection_id: CONN,
        vtl: Vtl::VTL0,
        kind: RouteKind::SynicEvent {
            target: SintTarget {
                vp: 0,
                instance: Instance::PARAVISOR,
                sint: 2,
            },
            flag_base: 0,
            flag_count: 2048,
        },
    };
    let mut mrs = MessageRegisters::new();
    let info = reg.encode(&mut mrs);
    let reply = hvcall
        .protected(&mut world, PpCall::new(H_PORTS, info, &mut mrs))
        .expect("register");
    assert_eq!(
        RegisterStatus::from_label(reply.label()),
        Some(RegisterStatus::Ok)
    );

    let mut irqs: Consumer<'static, IrqEntry> =
        Consumer::new(irq, sy::IRQ_QUEUE_CAPACITY).expect("irq queue");
    let input = SignalEventInput {
        connection_id: CONN,
        flag_number: 0,
        reserved: 0,
    }
    .to_u64();
    let control = Control::new(HypercallCode::SIGNAL_EVENT).with_fast(true);
    let req = HypercallRequest::vp0(control, input, 0);
    let flag_byte = SIEFP as usize + 2 * 256;
    let start = Instant::now();
    for _ in 0..n {
        // The same work the host-sim guest does per iteration.
        let mut mrs = MessageRegisters::new();
        let info = api::encode_hypercall(&req, &mut mrs);
        let reply = hvcall
            .protected(&mut world, PpCall::new(H_VCPU, info, &mut mrs))
            .expect("hypercall");
        match api::decode_outcome(reply, &mrs) {
            Some(Outcome::Complete(r)) if r.status() == HvStatus::SUCCESS => {}
            other => panic!("signal failed: {other:?}"),
        }
        ram.write(flag_byte, &0u8).expect("clear flag");
        assert!(
            irqs.dequeue().expect("irq queue").is_some(),
            "no interrupt request"
        );
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// ns per signal measured by the guest PD on host-sim; `spin_us` caps how long PDs
/// poll before sleeping (`hostsim::SPIN_ENV`; `None`: the default).
fn host_sim(n: u64, spin_us: Option<&str>) -> f64 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/hvcall_synic.xml");
    let count = n.to_string();
    let mut env = vec![("HV_BENCH_SIGNALS", count.as_str())];
    env.extend(spin_us.map(|us| (hostsim::SPIN_ENV, us)));
    let line = common::guest_report(path, &env, "guest: bench signal_event");
    line.rsplit("ns_per_op=")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad bench line {line:?}"))
}

fn main() {
    let bench = common::Bench::start("hv_signal_event");
    let (n_local, n_sim) = bench.size((2_000, 200), (2_000_000, 100_000));
    // Warm up both (page faults, caches, the PD binaries' first start).
    in_process(n_local / 10);
    let local = in_process(n_local);
    let sim = host_sim(n_sim, None);
    // The same with every PD sleeping at once (no polling): what polling buys here.
    let sleeping = host_sim(n_sim, Some("0"));
    println!("hv_signal_event: in-process {local:.1} ns/op ({n_local} ops)");
    println!("hv_signal_event: host-sim   {sim:.1} ns/op ({n_sim} ops: guest -> hvcall-pd -> synic-pd, 2 PPC hops)");
    println!("hv_signal_event: host-sim without polling {sleeping:.1} ns/op");
    println!(
        "hv_signal_event: host-sim / in-process = {:.1}x (without polling {:.1}x)",
        sim / local,
        sleeping / local
    );
    bench.finish();
}
