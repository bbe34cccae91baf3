//! The storvsp image's build-time configuration, as a Microkit PD keeps it in its
//! `config.rs`. Every system description that runs this image must give its
//! channels these ids (the system tests check the root system.xml against them).
//!
//! | id | peer         | role                                                     |
//! |----|--------------|----------------------------------------------------------|
//! | 0  | vmbus-server | calls in (the VSP contract); notified on offer changes    |
//! | 1  | hvcall-pd    | calls out: claims signal connections; notified on guest signals |
//! | 2  | synic-pd     | calls out: SIGNAL_EVENT into the guest's SynIC            |
//!
//! Regions, by `setvar_vaddr` name: those [`vmbus_device::names`] lists and
//! [`crate::device::DISK`] (rw).
pub mod build {
    use ipc::Channel;
    use vmbus_device::names;

    pub const VMBUS: Channel = Channel::new(0);
    pub const HVCALL: Channel = Channel::new(1);
    pub const SYNIC: Channel = Channel::new(2);

    /// Where `guest_ram` sits in the guest's physical space.
    pub const GUEST_RAM_GPA: u64 = 0;

    /// What [`crate::device::init`] reads, answered from this table.
    pub const VARIABLES: [(&str, u64); 4] = [
        (names::VMBUS_CHANNEL, VMBUS.index() as u64),
        (names::HVCALL_CHANNEL, HVCALL.index() as u64),
        (names::SYNIC_CHANNEL, SYNIC.index() as u64),
        (names::GUEST_RAM_GPA, GUEST_RAM_GPA),
    ];
}
