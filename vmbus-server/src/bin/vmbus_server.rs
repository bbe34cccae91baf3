//! host-sim entry point of vmbus-server.
//!
//! Channel ids and partition constants are this PD's build-time configuration (as a
//! Microkit PD's `config.rs` would hold them); the system description must give
//! vmbus-server these ids:
//!
//! | id | peer        | role                                                      |
//! |----|-------------|-----------------------------------------------------------|
//! | 0  | hvcall-pd   | calls out (connection registration); notifies when guest messages are queued in `service_queue` |
//! | 1  | synic-pd    | calls out: posts into both SynIC instances                 |
//! | 2+i| VSP PD `i`  | calls out ([`vmbus_server::vsp`]); notifies on offer changes; GPADL window `vsp<i>_gpadl` |
//!
//! Environment (defaults in brackets): `HV_VP_COUNT` [2], `HV_GUEST_RAM_SIZE`
//! [0x4000_0000, RAM from GPA 0 that GPADLs may name], `HV_CONFIDENTIAL_VMBUS` [1],
//! `HV_VSP_COUNT` [0], `VMBUS_MAX_VERSION` [6.0].

use ipc::{Init, InitError, Region};
use vmbus_server::pd::{self, VmbusPd};

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
    hostsim::run(|init, kernel| {
        let mut constants = vec![
            (pd::HVCALL_CHANNEL, 0),
            (pd::SYNIC_CHANNEL, 1),
            (pd::VP_COUNT, env_u64("HV_VP_COUNT", 2)),
            (pd::GUEST_RAM_GPA, 0),
            (
                pd::GUEST_RAM_SIZE,
                env_u64("HV_GUEST_RAM_SIZE", 0x4000_0000),
            ),
            (pd::CONFIDENTIAL_VMBUS, env_u64("HV_CONFIDENTIAL_VMBUS", 1)),
            (
                pd::MAX_VERSION,
                env_u64(
                    "VMBUS_MAX_VERSION",
                    u64::from(vmbus_server::protocol::Version::V6_0.0),
                ),
            ),
        ];
        let vsps = (env_u64("HV_VSP_COUNT", 0) as usize).min(pd::MAX_VSPS);
        for (i, var) in pd::VSP_CHANNEL_VARS.iter().enumerate().take(vsps) {
            constants.push((var, 2 + i as u64));
        }
        let init = WithConstants {
            runtime: init,
            constants,
        };
        let mut pd = VmbusPd::init(&init)?;
        // A peer that misbehaves at start is reported; the PD keeps serving.
        if let Err(e) = pd.start(kernel) {
            eprintln!("vmbus_server: start: {e}");
        }
        Ok(pd)
    })
}
