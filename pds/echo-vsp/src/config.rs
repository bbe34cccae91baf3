//! The echo_vsp image's build-time configuration, as a Microkit PD keeps it in
//! its `config.rs`: channel ids and where guest memory sits. Every system
//! description that runs this image must give its channels these ids (the system
//! tests check the root system.xml). The grant names are [`vmbus_device::names`].
//!
//! | id | peer         | role                                                     |
//! |----|--------------|----------------------------------------------------------|
//! | 0  | vmbus-server | calls in (the VSP contract); notified on offer changes    |
//! | 1  | hvcall-pd    | calls out: claims signal connections; notified on guest signals |
//! | 2  | synic-pd     | calls out: SIGNAL_EVENT into the guest's SynIC            |
pub mod build {
    use ipc::Channel;
    use vmbus_device::names;

    pub const VMBUS: Channel = Channel::new(0);
    pub const HVCALL: Channel = Channel::new(1);
    pub const SYNIC: Channel = Channel::new(2);

    pub const GUEST_RAM_GPA: u64 = 0;
    /// The vTOM: the isolation crate's, which the VMM also reports to the guest.
    pub const GUEST_SHARED_GPA: u64 = 1 << isolation::gpa::SVM_VTOM_BIT;

    pub const VARIABLES: [(&str, u64); 5] = [
        (names::VMBUS_CHANNEL, VMBUS.index() as u64),
        (names::HVCALL_CHANNEL, HVCALL.index() as u64),
        (names::SYNIC_CHANNEL, SYNIC.index() as u64),
        (names::GUEST_RAM_GPA, GUEST_RAM_GPA),
        (names::GUEST_SHARED_GPA, GUEST_SHARED_GPA),
    ];
}
