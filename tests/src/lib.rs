//! Test-only PDs (in `src/bin/`) and what they share: the protocol of the PPC test
//! server. The tests themselves are in `tests/`.

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
