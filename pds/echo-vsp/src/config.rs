//! How the echo VSP is configured: the names system.xml grants under, and
//! [`build`], the build-time configuration of the echo_vsp image.

/// Guest RAM (rw): where confidential rings live.
pub const GUEST_RAM: &str = "guest_ram";
pub const GUEST_RAM_GPA: &str = "guest_ram_gpa";
/// The host-visible alias of guest RAM (rw, optional): where a guest without
/// Confidential VMBus keeps its rings.
pub const GUEST_SHARED: &str = "guest_shared";
pub const GUEST_SHARED_GPA: &str = "guest_shared_gpa";
/// vmbus-server's GPADL window for this VSP (r).
pub const GPADL_WINDOW: &str = "gpadl_window";
pub const VMBUS_CHANNEL: &str = "vmbus_channel";
pub const HVCALL_CHANNEL: &str = "hvcall_channel";
pub const SYNIC_CHANNEL: &str = "synic_channel";

/// The echo_vsp image's channel ids and where guest memory sits, as a Microkit PD
/// keeps them in its `config.rs`. Every system description that runs this image
/// must give its channels these ids (the system tests check the root system.xml).
///
/// | id | peer         | role                                                     |
/// |----|--------------|----------------------------------------------------------|
/// | 0  | vmbus-server | calls in ([`vmbus_server::vsp`]); notified on offer changes |
/// | 1  | hvcall-pd    | calls out: claims signal connections; notified on guest signals |
/// | 2  | synic-pd     | calls out: SIGNAL_EVENT into the guest's SynIC            |
pub mod build {
    use ipc::Channel;

    pub const VMBUS: Channel = Channel::new(0);
    pub const HVCALL: Channel = Channel::new(1);
    pub const SYNIC: Channel = Channel::new(2);

    pub const GUEST_RAM_GPA: u64 = 0;
    /// The vTOM.
    pub const GUEST_SHARED_GPA: u64 = 0x10_0000_0000;

    pub const VARIABLES: [(&str, u64); 5] = [
        (super::VMBUS_CHANNEL, VMBUS.index() as u64),
        (super::HVCALL_CHANNEL, HVCALL.index() as u64),
        (super::SYNIC_CHANNEL, SYNIC.index() as u64),
        (super::GUEST_RAM_GPA, GUEST_RAM_GPA),
        (super::GUEST_SHARED_GPA, GUEST_SHARED_GPA),
    ];
}
