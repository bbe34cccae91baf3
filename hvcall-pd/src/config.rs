//! What kind of partition hvcall-pd presents to the guest.

use hvdef::cpuid::IsolationType;
use hvdef::Vtl;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Config {
    pub vp_count: u32,
    /// SNP, TDX or none; decides the hypercall instruction and CPUID 0x4000000C.
    pub isolation: IsolationType,
    /// Where host-visible GPAs start (vTOM on SNP, the shared bit on TDX).
    pub shared_gpa_boundary: Option<u64>,
    /// Advertise Confidential VMBus in CPUID 0x40000082.
    pub confidential_vmbus: bool,
    /// The highest VTL the guest may enable; VTL0 means no VSM for the guest.
    pub max_guest_vtl: Vtl,
}

impl Config {
    pub fn isolated(&self) -> bool {
        self.isolation != IsolationType::NONE
    }

    /// The instruction the hypercall page uses: VMMCALL on AMD SEV-SNP, VMCALL
    /// otherwise (Intel, TDX partitioning's L2).
    pub fn hypercall_instruction(&self) -> [u8; 3] {
        if self.isolation == IsolationType::SNP {
            [0x0F, 0x01, 0xD9]
        } else {
            [0x0F, 0x01, 0xC1]
        }
    }

    /// The shared-GPA boundary as a bit number, when it is a power of two.
    pub fn shared_gpa_boundary_bits(&self) -> Option<u8> {
        self.shared_gpa_boundary
            .filter(|b| b.is_power_of_two())
            .map(|b| b.trailing_zeros() as u8)
    }
}

/// The build-time configuration of the hvcall-pd image: channel ids and roles and
/// the partition's shape, as a Microkit PD keeps them in its `config.rs`. The ids
/// of the vCPU, synic, vmbus and host-forward peers, the guest GPAs and the vTOM
/// are generated from the system descriptions ([`system_constants`], the PD named
/// `hvcall`); the VSP slots (4-6) and the port channels (7, 8, two channels to one
/// peer) are this crate's convention. Which channels exist at all is the
/// description's choice, so a system grants only what it needs.
///
/// | id | peer                 | role                                                        |
/// |----|----------------------|-------------------------------------------------------------|
/// | 0  | the vCPU PD          | calls in: hypercall, CPUID and MSR exits                    |
/// | 1  | synic-pd             | calls out: posts and signals into a SynIC                    |
/// | 2  | host-forward PD      | calls out: relayed hypercalls                               |
/// | 3  | vmbus-server         | service 0: claims the VMBus message connections (1..=4); guest posts go to its queue `service0_queue`; notified |
/// | 4-6| VSP PDs              | services 1-3 (VSP slots 0-2): claim the signal connections vmbus-server granted their channels; signal-only unless a `service<i>_queue` is granted; notified |
/// | 7  | a port manager       | calls in: routes connections into SynIC ports or to the host |
/// | 8  | a port service       | service 4, not a VSP (tests/systems/hvcall_synic.xml's port daemon): claims connections in its range without grants; notified |
///
/// Channels 4-6 are VSPs in every system that uses them: their registrations are
/// checked against vmbus-server's grants from the first call on, so a peer that
/// is not a VSP takes channel 8 instead.
pub mod build {
    use ipc::Channel;
    use system_constants::channel::hvcall as described;

    use crate::pd;

    /// The vCPU PD: `guest` (guest-sim) or `vmm` (a real guest's VMM).
    pub const VCPU: Channel = described::GUEST;
    const _: () = assert!(described::VMM.index() == VCPU.index());
    pub const SYNIC: Channel = described::SYNIC;
    pub const HOST: Channel = described::HOSTFWD;
    /// Service slot `i` is channel `SERVICES[i]`.
    pub const SERVICES: [Channel; pd::MAX_SERVICES] = [
        described::VMBUS,
        Channel::new(4),
        Channel::new(5),
        Channel::new(6),
        PORT_SERVICE,
    ];
    pub const PORTS: Channel = Channel::new(7);
    /// The service slot for a peer that is not a VSP.
    pub const PORT_SERVICE: Channel = Channel::new(8);

    /// The VMBus message connections (1 and 4) and what lies between: service 0's.
    pub const VMBUS_MESSAGE_CONNECTIONS: (u32, u32) = (1, 4);
    /// Channel signal connections: vmbus-server's signal connection base (0x2000)
    /// plus relids 1..=2047. The VSP services' range.
    pub const CHANNEL_SIGNAL_CONNECTIONS: (u32, u32) = (0x2001, 0x2000 + 2047);

    /// The PD's array sizes in this image (VPs it can serve, routes it can hold).
    pub const MAX_VPS: usize = 8;
    pub const MAX_ROUTES: usize = 64;
    /// The PD as this image builds it, for the host-sim and bare-metal entries.
    pub type Pd = pd::HvcallPd<MAX_VPS, MAX_ROUTES>;

    /// Starts the PD with this image's variables ([`VARIABLES`]) over the
    /// runtime's regions and channels.
    pub fn init(init: &dyn ipc::Init) -> Result<Pd, ipc::InitError> {
        Pd::init(&ipc::WithVariables::new(init, &VARIABLES))
    }

    /// The partition this image presents.
    pub const VP_COUNT: u64 = 2;
    /// SEV-SNP (hvdef `IsolationType::SNP`).
    pub const ISOLATION: u64 = 2;
    /// The vTOM: GPAs from here up are the host-visible alias of RAM.
    pub const SHARED_GPA_BOUNDARY: u64 = system_constants::GUEST_SHARED_GPA;
    pub const CONFIDENTIAL_VMBUS: bool = true;
    pub const MAX_GUEST_VTL: u64 = 1;
    /// Where `guest_ram` and `guest_shared` sit in the guest's physical space.
    pub use system_constants::{GUEST_RAM_GPA, GUEST_SHARED_GPA};

    const fn range((first, last): (u32, u32)) -> u64 {
        pd::connection_range(first, last)
    }

    /// What [`crate::pd::HvcallPd::init`] reads, answered from this table.
    pub const VARIABLES: [(&str, u64); 26] = [
        (pd::VP_COUNT, VP_COUNT),
        (pd::ISOLATION, ISOLATION),
        (pd::SHARED_GPA_BOUNDARY, SHARED_GPA_BOUNDARY),
        (pd::CONFIDENTIAL_VMBUS, CONFIDENTIAL_VMBUS as u64),
        (pd::MAX_GUEST_VTL, MAX_GUEST_VTL),
        (pd::GUEST_RAM_GPA, GUEST_RAM_GPA),
        (pd::GUEST_SHARED_GPA, GUEST_SHARED_GPA),
        (pd::VCPU_CHANNELS, VCPU.bit()),
        (pd::SYNIC_CHANNEL, SYNIC.index() as u64),
        (pd::HOST_CHANNEL, HOST.index() as u64),
        (pd::SYNIC_PORT_CHANNELS, PORTS.bit()),
        (pd::HOST_ROUTE_CHANNELS, PORTS.bit()),
        (pd::SERVICE_CHANNEL_VARS[0], SERVICES[0].index() as u64),
        (pd::SERVICE_CHANNEL_VARS[1], SERVICES[1].index() as u64),
        (pd::SERVICE_CHANNEL_VARS[2], SERVICES[2].index() as u64),
        (pd::SERVICE_CHANNEL_VARS[3], SERVICES[3].index() as u64),
        (pd::SERVICE_CHANNEL_VARS[4], SERVICES[4].index() as u64),
        (
            pd::SERVICE_CONNECTION_VARS[0],
            range(VMBUS_MESSAGE_CONNECTIONS),
        ),
        (
            pd::SERVICE_CONNECTION_VARS[1],
            range(CHANNEL_SIGNAL_CONNECTIONS),
        ),
        (
            pd::SERVICE_CONNECTION_VARS[2],
            range(CHANNEL_SIGNAL_CONNECTIONS),
        ),
        (
            pd::SERVICE_CONNECTION_VARS[3],
            range(CHANNEL_SIGNAL_CONNECTIONS),
        ),
        (
            pd::SERVICE_CONNECTION_VARS[4],
            range(CHANNEL_SIGNAL_CONNECTIONS),
        ),
        // vmbus-server grants connections; its VSP slot i is service i+1.
        (pd::GRANT_CHANNEL, SERVICES[0].index() as u64),
        (pd::VSP_CHANNEL_VARS[0], SERVICES[1].index() as u64),
        (pd::VSP_CHANNEL_VARS[1], SERVICES[2].index() as u64),
        (pd::VSP_CHANNEL_VARS[2], SERVICES[3].index() as u64),
    ];
}
