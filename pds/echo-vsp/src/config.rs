//! The echo_vsp image's build-time configuration, as a Microkit PD keeps it in
//! its `config.rs`: channel ids and where guest memory sits, generated from the
//! system descriptions ([`system_constants`]: the PD named `echo_vsp` in each, the
//! build failing if two disagree). The grant names are [`vmbus_device::names`].
//!
//! | id | peer         | role                                                     |
//! |----|--------------|----------------------------------------------------------|
//! | 0  | vmbus-server | calls in (the VSP contract); notified on offer changes    |
//! | 1  | hvcall-pd    | calls out: claims signal connections; notified on guest signals |
//! | 2  | synic-pd     | calls out: SIGNAL_EVENT into the guest's SynIC            |
pub mod build {
    use vmbus_device::names;

    pub use system_constants::channel::echo_vsp::{HVCALL, SYNIC, VMBUS};
    /// `guest_ram`'s GPA and its shared alias's, the vTOM.
    pub use system_constants::{GUEST_RAM_GPA, GUEST_SHARED_GPA};

    pub const VARIABLES: [(&str, u64); 5] = names::vsp_variables(VMBUS, HVCALL, SYNIC);
}
