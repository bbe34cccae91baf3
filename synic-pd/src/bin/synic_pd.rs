//! host-sim entry point of synic-pd.
//!
//! Channel ids and partition constants are this PD's build-time configuration, as a
//! Microkit PD's `config.rs` would hold them; the system description must give
//! synic-pd these ids (see `tests/tests/hvcall_synic.rs` for a system that does).
//!
//! | id | peer          | role                                          |
//! |----|---------------|-----------------------------------------------|
//! | 0  | the vCPU PD   | RDMSR/WRMSR calls in; interrupt notifications out |
//! | 1  | hvcall-pd     | posts and signals into both SynIC instances    |
//!
//! `HV_VP_COUNT` (environment, default 2) sets the VP count, `HV_SHARED_GPA`
//! (default 0x4000_0000) where the `guest_shared` region sits in the GPA space.

use ipc::{Init, InitError, Region};
use synic_pd::pd::{self, SynicPd};

/// Most VPs this build supports, and messages queued per SINT.
const MAX_VPS: usize = 8;
const QUEUE_DEPTH: usize = 4;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        })
        .unwrap_or(default)
}

/// The runtime's grants plus this PD's constants.
struct WithConstants<'a> {
    runtime: &'a dyn Init,
    constants: Vec<(&'static str, u64)>,
}

impl Init for WithConstants<'_> {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        self.runtime.region(setvar)
    }
    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        match self.constants.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(*v),
            None => self.runtime.variable(name),
        }
    }
    fn pd_name(&self) -> &str {
        self.runtime.pd_name()
    }
}

fn main() {
    hostsim::run(|init, _kernel| {
        let init = WithConstants {
            runtime: init,
            constants: vec![
                (pd::VP_COUNT, env_u64("HV_VP_COUNT", 2)),
                (pd::GUEST_RAM_GPA, 0),
                (pd::GUEST_SHARED_GPA, env_u64("HV_SHARED_GPA", 0x4000_0000)),
                (pd::VCPU_CHANNEL, 0),
                (pd::MSR_CHANNELS, 1 << 0),
                (pd::DELIVER_PV_CHANNELS, 1 << 1),
                (pd::DELIVER_HV_CHANNELS, 1 << 1),
            ],
        };
        // Boxed: the per-SINT message queues make the state a few hundred KiB.
        let pd: Box<SynicPd<MAX_VPS, QUEUE_DEPTH>> = Box::new(SynicPd::init(&init)?);
        Ok(BoxedHandler(pd))
    })
}

/// `hostsim::run` takes the handler by value; this keeps the big state on the heap.
struct BoxedHandler<H>(Box<H>);

impl<H: ipc::Handler> ipc::Handler for BoxedHandler<H> {
    fn notified(
        &mut self,
        kernel: &mut dyn ipc::Kernel,
        channels: ipc::ChannelSet,
    ) -> Result<(), ipc::HandlerError> {
        self.0.notified(kernel, channels)
    }
    fn protected(
        &mut self,
        kernel: &mut dyn ipc::Kernel,
        ch: ipc::Channel,
        msg: ipc::MessageInfo,
        mrs: &mut ipc::MessageRegisters,
    ) -> Result<ipc::MessageInfo, ipc::HandlerError> {
        self.0.protected(kernel, ch, msg, mrs)
    }
}
