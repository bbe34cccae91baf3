//! How synic-pd is configured. [`build`] is the build-time configuration of the
//! synic-pd image: channel ids, who may do what over them, and the partition's
//! shape, as a Microkit PD keeps them in its `config.rs`. The vCPU, hvcall and
//! vmbus ids and the guest GPAs are generated from the system descriptions
//! ([`system_constants`], the PD named `synic`); VSP slot `i` = channel `3+i` is
//! this crate's convention. Which channels exist is the description's choice.
//!
//! | id | peer          | role                                                       |
//! |----|---------------|------------------------------------------------------------|
//! | 0  | the vCPU PD   | calls in: SynIC MSRs; notified: interrupt requests queued   |
//! | 1  | hvcall-pd     | calls in: posts and signals into either instance (SynIC ports) |
//! | 2  | vmbus-server  | calls in: channel messages into either instance, event-flag grants for its VSPs' channels; notified: a refused message may be retried |
//! | 3-5| VSP PDs       | calls in: the event flags vmbus-server granted them (VSP slot `i` = channel `3+i`) |

pub mod build {
    use ipc::Channel;
    use system_constants::channel::synic as described;

    use crate::pd;

    /// The vCPU PD: `guest` (guest-sim) or `vmm` (a real guest's VMM).
    pub const VCPU: Channel = described::GUEST;
    const _: () = assert!(described::VMM.index() == VCPU.index());
    pub const HVCALL: Channel = described::HVCALL;
    pub const VMBUS: Channel = described::VMBUS;
    pub const VSPS: [Channel; 3] = [Channel::new(3), Channel::new(4), Channel::new(5)];

    /// Most VPs this image supports, and messages queued per SINT.
    pub const MAX_VPS: usize = 8;
    pub const QUEUE_DEPTH: usize = 4;
    /// The PD as this image builds it, for the host-sim and bare-metal entries.
    pub type Pd = pd::SynicPd<MAX_VPS, QUEUE_DEPTH>;

    /// Starts the PD with this image's variables ([`VARIABLES`]) over the
    /// runtime's regions and channels.
    pub fn init(init: &dyn ipc::Init) -> Result<Pd, ipc::InitError> {
        Pd::init(&ipc::WithVariables::new(init, &VARIABLES))
    }

    pub const VP_COUNT: u64 = 2;
    /// Where `guest_ram` and `guest_shared` sit in the guest's physical space (the
    /// shared alias at the vTOM).
    pub use system_constants::{GUEST_RAM_GPA, GUEST_SHARED_GPA};

    const VSP_BITS: u64 = VSPS[0].bit() | VSPS[1].bit() | VSPS[2].bit();
    /// Posts messages: hvcall-pd (guest-to-guest ports) and vmbus-server.
    pub const POST: u64 = HVCALL.bit() | VMBUS.bit();
    /// Sets event flags: hvcall-pd (event ports) and the VSPs.
    pub const SIGNAL: u64 = HVCALL.bit() | VSP_BITS;
    /// Both instances: a Confidential VMBus connection lives on the paravisor's SynIC,
    /// any other on the relay of the hypervisor's, and the same PDs serve both.
    pub const DELIVER: u64 = POST | SIGNAL;

    /// What [`crate::pd::SynicPd::init`] reads, answered from this table.
    pub const VARIABLES: [(&str, u64); 13] = [
        (pd::VP_COUNT, VP_COUNT),
        (pd::GUEST_RAM_GPA, GUEST_RAM_GPA),
        (pd::GUEST_SHARED_GPA, GUEST_SHARED_GPA),
        (pd::VCPU_CHANNEL, VCPU.index() as u64),
        (pd::MSR_CHANNELS, VCPU.bit()),
        (pd::DELIVER_PV_CHANNELS, DELIVER),
        (pd::DELIVER_HV_CHANNELS, DELIVER),
        (pd::POST_CHANNELS, POST),
        (pd::SIGNAL_CHANNELS, SIGNAL),
        (pd::GRANT_CHANNEL, VMBUS.index() as u64),
        (pd::VSP_CHANNEL_VARS[0], VSPS[0].index() as u64),
        (pd::VSP_CHANNEL_VARS[1], VSPS[1].index() as u64),
        (pd::VSP_CHANNEL_VARS[2], VSPS[2].index() as u64),
    ];
}
