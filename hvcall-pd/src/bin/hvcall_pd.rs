//! host-sim entry point of hvcall-pd.
//!
//! Channel ids and partition constants are this PD's build-time configuration, as a
//! Microkit PD's `config.rs` would hold them; the system description must give
//! hvcall-pd these ids (see `tests/tests/hvcall_synic.rs`).
//!
//! | id | peer             | role                                            |
//! |----|------------------|-------------------------------------------------|
//! | 0  | the vCPU PD      | hypercall/CPUID/MSR exits in                     |
//! | 1  | synic-pd         | calls out: posts and signals                     |
//! | 2  | host-forward PD  | calls out: relayed hypercalls (optional)         |
//! | 3  | service PD 0     | registers connections (service, SynIC ports, host); its queue is `service0_queue` |
//!
//! Environment (defaults in brackets): `HV_VP_COUNT` [2], `HV_ISOLATION` [2, SNP],
//! `HV_SHARED_GPA` [0x4000_0000, the vTOM and where `guest_shared` sits],
//! `HV_CONFIDENTIAL_VMBUS` [1], `HV_MAX_GUEST_VTL` [1].

use hvcall_pd::pd::{self, HvcallPd};
use ipc::{Init, InitError, Region};

const MAX_VPS: usize = 8;
const MAX_ROUTES: usize = 64;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        })
        .unwrap_or(default)
}

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
        let shared = env_u64("HV_SHARED_GPA", 0x4000_0000);
        let init = WithConstants {
            runtime: init,
            constants: vec![
                (pd::VP_COUNT, env_u64("HV_VP_COUNT", 2)),
                (pd::ISOLATION, env_u64("HV_ISOLATION", 2)),
                (pd::SHARED_GPA_BOUNDARY, shared),
                (pd::CONFIDENTIAL_VMBUS, env_u64("HV_CONFIDENTIAL_VMBUS", 1)),
                (pd::MAX_GUEST_VTL, env_u64("HV_MAX_GUEST_VTL", 1)),
                (pd::GUEST_RAM_GPA, 0),
                (pd::GUEST_SHARED_GPA, shared),
                (pd::VCPU_CHANNELS, 1 << 0),
                (pd::SYNIC_CHANNEL, 1),
                (pd::HOST_CHANNEL, 2),
                (pd::SERVICE_CHANNEL_VARS[0], 3),
                (pd::SYNIC_PORT_CHANNELS, 1 << 3),
                (pd::HOST_ROUTE_CHANNELS, 1 << 3),
            ],
        };
        let pd: Box<HvcallPd<MAX_VPS, MAX_ROUTES>> = Box::new(HvcallPd::init(&init)?);
        Ok(BoxedHandler(pd))
    })
}

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
