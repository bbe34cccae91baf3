//! What the server is told at start: which versions it speaks, the guest's shape, and
//! the limits that bound what a guest can make it hold.

use alloc::vec::Vec;

use vmbus_protocol::{Version, MAX_RELID};

/// A run of guest RAM, in 4 KiB page numbers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PfnRange {
    pub start: u64,
    pub count: u64,
}

impl PfnRange {
    pub fn contains(&self, pfn: u64) -> bool {
        pfn >= self.start && pfn - self.start < self.count
    }
}

/// Bounds on guest-controlled state, so a guest cannot make the server allocate
/// without limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// GPADLs alive at once, in progress or complete.
    pub max_gpadls: usize,
    /// Pages described by all GPADLs together.
    pub max_gpadl_pages: usize,
    /// Messages waiting for a free SynIC slot before new guest messages are refused
    /// with [`crate::MessageError::Busy`].
    pub max_pending_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_gpadls: 4096,
            // 4 GiB of guest memory in GPADLs.
            max_gpadl_pages: 1 << 20,
            max_pending_messages: 256,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The newest version offered; newer requests get `version_supported = 0` so the
    /// guest steps down (e.g. cap at 5.3 to look like a pre-confidential host).
    pub max_version: Version,
    /// This server is the paravisor's and guest memory is encrypted: 6.0 guests asking
    /// for confidential channels get them, and paravisor VSP rings stay private.
    pub confidential: bool,
    /// VPs the guest has; target VPs are checked against it.
    pub vp_count: u32,
    /// Guest RAM; every GPADL page must fall inside it.
    pub guest_memory: Vec<PfnRange>,
    /// Paravisor offers get relids from here up; below is left for relayed host offers.
    pub first_dynamic_relid: u32,
    /// A channel's signal connection id (what the guest passes to HvSignalEvent) is
    /// this plus its relid.
    pub signal_connection_base: u32,
    pub limits: Limits,
}

impl Config {
    pub fn new(vp_count: u32, guest_memory: Vec<PfnRange>) -> Self {
        Self {
            max_version: Version::V6_0,
            confidential: false,
            vp_count,
            guest_memory,
            first_dynamic_relid: 1,
            signal_connection_base: DEFAULT_SIGNAL_CONNECTION_BASE,
            limits: Limits::default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !self.max_version.is_known() {
            return Err(ConfigError::UnknownMaxVersion(self.max_version));
        }
        if self.vp_count == 0 {
            return Err(ConfigError::NoVps);
        }
        if !(1..=MAX_RELID).contains(&self.first_dynamic_relid) {
            return Err(ConfigError::FirstDynamicRelid(self.first_dynamic_relid));
        }
        // Connection ids are 24 bits; 1, 2 and 4 are the message/event connections.
        let last = self.signal_connection_base.checked_add(MAX_RELID);
        if self.signal_connection_base <= vmbus_protocol::MESSAGE_CONNECTION_ID_4
            || last.is_none_or(|l| l >= 1 << 24)
        {
            return Err(ConfigError::SignalConnectionBase(
                self.signal_connection_base,
            ));
        }
        if self
            .guest_memory
            .iter()
            .any(|r| r.start.checked_add(r.count).is_none())
        {
            return Err(ConfigError::MemoryRangeOverflow);
        }
        Ok(())
    }
}

/// Default signal connection base: relid n signals on connection 0x2000 + n.
pub const DEFAULT_SIGNAL_CONNECTION_BASE: u32 = 0x2000;

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("max_version {0} is not a VMBus version")]
    UnknownMaxVersion(Version),
    #[error("vp_count must be at least 1")]
    NoVps,
    #[error("first_dynamic_relid {0} is outside 1..={MAX_RELID}")]
    FirstDynamicRelid(u32),
    #[error("signal_connection_base {0:#x} must be above 4 and keep base+{MAX_RELID} below 2^24")]
    SignalConnectionBase(u32),
    #[error("a guest memory range wraps around")]
    MemoryRangeOverflow,
}

/// The build-time configuration of the vmbus-server image: channel ids, roles and
/// the partition's shape, as a Microkit PD keeps them in its `config.rs`. The
/// hvcall and synic ids, the guest GPAs and the region sizes are generated from the
/// system descriptions ([`system_constants`], the PD named `vmbus`); VSP slot `i`
/// is channel `2+i` by this crate's convention. A VSP slot exists when the
/// description grants its GPADL window `vsp<i>_gpadl`.
///
/// | id | peer        | role                                                          |
/// |----|-------------|---------------------------------------------------------------|
/// | 0  | hvcall-pd   | calls out: claims the message connections; notified when guest messages wait in `service_queue` |
/// | 1  | synic-pd    | calls out: channel messages into either SynIC instance; notified when a refused one may be retried |
/// | 2+i| VSP PD `i`  | calls out ([`crate::vsp`]); notified on offer changes           |
pub mod build {
    use ipc::Channel;
    use system_constants::host::region_size;

    use crate::pd;

    pub use system_constants::channel::vmbus::{HVCALL, SYNIC};
    pub const VSPS: [Channel; pd::MAX_VSPS] = [
        Channel::new(2),
        Channel::new(3),
        Channel::new(4),
        Channel::new(5),
    ];

    pub const VP_COUNT: u64 = 2;
    /// Guest RAM GPADLs may name: `guest_ram` ...
    pub use system_constants::GUEST_RAM_GPA;
    /// ... of system.xml's size (images for other descriptions pass theirs) ...
    pub const GUEST_RAM_SIZE: u64 = region_size::GUEST_RAM;
    /// ... and its host-visible alias `guest_shared` at the vTOM.
    pub use system_constants::GUEST_SHARED_GPA;
    pub const GUEST_SHARED_SIZE: u64 = region_size::GUEST_SHARED;
    pub const CONFIDENTIAL_VMBUS: bool = true;
    pub const MAX_VERSION: vmbus_protocol::Version = vmbus_protocol::Version::V6_0;

    /// What [`crate::pd::VmbusPd::init`] reads, apart from the VSP slots.
    pub const VARIABLES: [(&str, u64); 9] = [
        (pd::HVCALL_CHANNEL, HVCALL.index() as u64),
        (pd::SYNIC_CHANNEL, SYNIC.index() as u64),
        (pd::VP_COUNT, VP_COUNT),
        (pd::GUEST_RAM_GPA, GUEST_RAM_GPA),
        (pd::GUEST_RAM_SIZE, GUEST_RAM_SIZE),
        (pd::GUEST_SHARED_GPA, GUEST_SHARED_GPA),
        (pd::GUEST_SHARED_SIZE, GUEST_SHARED_SIZE),
        (pd::CONFIDENTIAL_VMBUS, CONFIDENTIAL_VMBUS as u64),
        (pd::MAX_VERSION, MAX_VERSION.0 as u64),
    ];

    /// The variables for VSP slot `i`: its channel id.
    pub const fn vsp_variable(i: usize) -> (&'static str, u64) {
        (pd::VSP_CHANNEL_VARS[i], VSPS[i].index() as u64)
    }
}
