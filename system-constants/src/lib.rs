//! Constants the system descriptions decide, generated from them at build time
//! (build.rs, through `sdf::constants`) so that no PD crate copies them by hand:
//!
//! - [`GUEST_RAM_GPA`] and [`GUEST_SHARED_GPA`] (the vTOM, also as
//!   [`GUEST_SHARED_BIT`]): from the virtual machine of kernel/metal-pds/linux.xml.
//! - [`channel`]`::<pd>::<PEER>`: a PD's channel id towards a peer, by PD name and
//!   peer name, agreed across system.xml, kernel/metal-pds/vmbus.xml,
//!   kernel/metal-pds/linux.xml and tests/systems/hvcall_synic.xml (the build fails
//!   naming both files when two descriptions disagree). A peer with two channels to
//!   one PD has no constant: its name would not say which is meant.
//! - `<description>::region_size::<REGION>`: each description's region sizes.
//!
//! A PD crate's `config::build` takes its ids and addresses from here; which of
//! them a PD uses, and its own conventions (VSP slot numbering, connection ranges),
//! stay in the crate.
#![no_std]

include!(concat!(env!("OUT_DIR"), "/system_constants.rs"));

// The isolation crate's classification of GPAs and the VMM's CPUID report use the
// vTOM as a bit; the description's alias must sit exactly there.
const _: () = assert!(
    GUEST_SHARED_GPA == 1 << GUEST_SHARED_BIT && GUEST_SHARED_BIT == isolation::gpa::SVM_VTOM_BIT,
    "linux.xml's guest_shared alias is not at isolation::gpa::SVM_VTOM_BIT"
);
