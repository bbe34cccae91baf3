//! The netvsp image's build-time configuration, as a Microkit PD keeps it:
//! channel ids (every system description running this image must match them)
//! and the names of its grants beyond the device layer's
//! ([`vmbus_device::names`]).
//!
//! | id | peer           | role                                                      |
//! |----|----------------|-----------------------------------------------------------|
//! | 0  | vmbus-server   | calls in (the VSP contract); notified on offer changes    |
//! | 1  | hvcall-pd      | calls out: claims signal connections; notified on guest signals |
//! | 2  | synic-pd       | calls out: SIGNAL_EVENT into the guest's SynIC            |
//! | 3  | backend peer   | notifies both ways: frames (or space) wait in the queues  |
pub mod build {
    use ipc::Channel;
    use vmbus_device::names;

    pub use system_constants::channel::netvsp::{HVCALL, SYNIC, VMBUS};
    /// Only the systems that grant frame queues have this end (net_pair.xml's
    /// peer netvsp, linux.xml's virtio_net), so it is named here, once for both.
    pub const BACKEND: Channel = Channel::new(3);

    /// The frame queue this PD produces into and the one it consumes from
    /// (`setvar_vaddr` names); without them the NIC is on a [`crate::backend::Loopback`].
    pub const FRAMES_OUT: &str = "frames_out";
    pub const FRAMES_IN: &str = "frames_in";
    /// Slots of each frame queue.
    pub const QUEUE_SLOTS: u32 = 256;

    /// `guest_ram`'s GPA and its shared alias's, the vTOM.
    pub use system_constants::{GUEST_RAM_GPA, GUEST_SHARED_GPA};

    pub const VARIABLES: [(&str, u64); 5] = names::vsp_variables(VMBUS, HVCALL, SYNIC);
}

/// The NIC's MAC and offer instance, different per PD: derived from the PD's name
/// (FNV-1a), in Hyper-V's 00:15:5d prefix, so two netvsp PDs of one system differ.
pub fn identity(pd_name: &str) -> ([u8; 6], vmbus_protocol::Guid) {
    let hash = pd_name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let b = hash.to_le_bytes();
    let mac = [0x00, 0x15, 0x5d, b[0], b[1], b[2]];
    let instance = vmbus_protocol::Guid::from_fields(
        0x6e76_7370,
        u16::from_le_bytes([b[3], b[4]]),
        u16::from_le_bytes([b[5], b[6]]),
        [b[7], 0, 0, 0, 0, 0, 0, 1],
    );
    (mac, instance)
}
