//! Test-only PDs (in `src/bin/`) and what they share: the protocol of the PPC test
//! server. The tests themselves are in `tests/`.

pub mod ioapic;

/// Labels `ppc_server` understands.
pub mod label {
    /// Replies with mr0 + mr1 in mr0.
    pub const ADD: u64 = 1;
    /// Writes mr0 at offset 8 of the server's `rw_region`, so the caller can see it
    /// through its own mapping of the same memory region.
    pub const WRITE_MARKER: u64 = 2;
    /// Makes the server fault (a write to an unmapped address).
    pub const CRASH: u64 = 3;
}

/// Offset of the marker `WRITE_MARKER` writes.
pub const MARKER_OFFSET: usize = 8;

/// The hvcall-pd/synic-pd system (`tests/hvcall_synic.rs`): connection ids the
/// port daemon registers and the simulated guest uses, and the GPA layout they
/// share.
pub mod hv {
    /// Message port into the paravisor SynIC, VP 0, SINT 2.
    pub const CONN_PV_MESSAGE: u32 = 0x10;
    /// Event port into the paravisor SynIC, VP 0, SINT 2, flags 0..2048.
    pub const CONN_PV_EVENT: u32 = 0x11;
    /// Message port into the hypervisor-relay SynIC, VP 0, SINT 2.
    pub const CONN_HV_MESSAGE: u32 = 0x12;
    /// Handed to the port daemon's service queue (a service slot hvcall-pd keeps
    /// for channel signal connections, 0x2001..=0x27ff).
    pub const CONN_SERVICE: u32 = 0x2013;
    /// Relayed to the (fake) host.
    pub const CONN_HOST: u32 = 0x14;
    /// The vTOM: where `guest_shared` sits in the GPA space (hvcall-pd's, generated
    /// from the descriptions).
    pub const SHARED_GPA: u64 = system_constants::GUEST_SHARED_GPA;
    /// Where the guest keeps things in its private RAM.
    pub const INPUT_PAGE: u64 = 0x1000;
    pub const HYPERCALL_PAGE: u64 = 0x2000;
    pub const PV_SIMP: u64 = 0x4000;
    pub const PV_SIEFP: u64 = 0x5000;
    pub const HV_SIMP: u64 = 0x6000;
    pub const HV_SIEFP: u64 = 0x7000;
    pub const PV_VECTOR: u8 = 0x30;
    pub const HV_VECTOR: u8 = 0x31;
}
