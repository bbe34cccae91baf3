//! host-sim: runs a system description on Linux with every protection domain in
//! its own process. Memory regions are memfd mappings placed at the system.xml
//! vaddr with exactly the granted permissions, notifications are eventfds, protected
//! calls go through a page shared by the channel's two ends with doorbells over a
//! SOCK_SEQPACKET pair (pd/call_page.rs), and a PD holds descriptors only for what it
//! was granted, so isolation is enforced by the host kernel and MMU. Each PD process
//! is also confined (supervisor/sandbox.rs, seccomp.rs): its own uid when the
//! supervisor is root, non-dumpable from exec, no_new_privs, a Landlock domain of its
//! own and a seccomp filter.
//!
//! The supervisor side is [`Simulation`]; a PD binary calls [`run`] from `main`.

mod config;
mod landlock;
mod pd;
mod seccomp;
mod supervisor;
mod sys;
pub mod wire;

pub use config::{ChannelGrant, ConfigError, PdConfig, PpGrant, PpRole, RegionGrant};
pub use pd::{finish, is_pd, region_file, run, wait_for_notification, Poller, POLL_ENV, SPIN_ENV};
pub use supervisor::{
    default_search_paths, resolve_image, FaultReport, LogLine, SimError, SimExit, SimOptions,
    SimOutcome, Simulation, Stream, LOG_CAPACITY,
};

/// A PD that faulted (or panicked) exits with this status after reporting.
pub const FAULT_EXIT_STATUS: i32 = 0x5f;
/// A PD whose config, mappings or `init` failed exits with this (EX_CONFIG).
pub const EXIT_INIT_FAILED: i32 = 78;
/// `paravisor sim` status when every PD faulted and none exited.
pub const EXIT_NO_PD_EXITED: i32 = 70;
/// `paravisor sim` status on `--timeout`, as timeout(1) uses.
pub const EXIT_TIMEOUT: i32 = 124;
