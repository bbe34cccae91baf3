//! The storvsp image's build-time configuration, as a Microkit PD keeps it in its
//! `config.rs`. The ids and the guest RAM GPA are generated from the system
//! descriptions ([`system_constants`]: the PD named `storvsp` in each, the build
//! failing if two disagree); the table below is what each channel is for.
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
    use vmbus_device::names;

    pub use system_constants::channel::storvsp::{HVCALL, SYNIC, VMBUS};
    /// Where `guest_ram` sits in the guest's physical space.
    pub use system_constants::GUEST_RAM_GPA;

    /// What [`crate::device::init`] reads, answered from this table.
    pub const VARIABLES: [(&str, u64); 4] = [
        (names::VMBUS_CHANNEL, VMBUS.index() as u64),
        (names::HVCALL_CHANNEL, HVCALL.index() as u64),
        (names::SYNIC_CHANNEL, SYNIC.index() as u64),
        (names::GUEST_RAM_GPA, GUEST_RAM_GPA),
    ];
}
