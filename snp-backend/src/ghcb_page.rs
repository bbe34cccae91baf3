//! The GHCB page (GHCB spec 56421 §2.3.2, table 3) and Hyper-V's hypercall use of
//! it (TLFS "GHCB hypercalls"; Linux `union hv_ghcb`).
//!
//! The page is shared with the host, so everything read back from it after a
//! VMGEXIT is hostile. Reads go through [`Ghcb::u64_at`] on a fixed 4 KiB array:
//! offsets are constants, so no read can go out of bounds, and the valid bitmap
//! is consulted for every save-area field the host returns.

/// GHCB size; it is one 4 KiB page.
pub const GHCB_SIZE: usize = crate::le::PAGE_SIZE;

/// Save-area offsets the backend uses. The save area has the VMSA's layout, so
/// the GPRs are where a VMSA keeps them.
pub mod off {
    pub use crate::vmsa::off::{RAX, RBX, RCX, RDX};
    pub const SW_EXIT_CODE: usize = 0x390;
    pub const SW_EXIT_INFO_1: usize = 0x398;
    pub const SW_EXIT_INFO_2: usize = 0x3a0;
    pub const SW_SCRATCH: usize = 0x3a8;
    pub const VALID_BITMAP: usize = 0x3f0;
    pub const SHARED_BUFFER: usize = 0x800;
    pub const SHARED_BUFFER_END: usize = 0xff0;
    pub const PROTOCOL_VERSION: usize = 0xffa;
    pub const USAGE: usize = 0xffc;
}

/// GHCB usage values: the standard layout, or Hyper-V's hypercall layout.
pub mod usage {
    pub const STANDARD: u32 = 0;
    pub const HYPERV_HYPERCALL: u32 = 1;
}

/// Non-automatic-exit codes (sw_exit_code) the backend issues.
pub mod nae {
    pub const PSC: u64 = 0x8000_0010;
    pub const SNP_RUN_VMPL: u64 = 0x8000_0018;
    pub const HV_FEATURES: u64 = 0x8000_fffd;
    pub const TERMINATE: u64 = 0x8000_fffe;
}

/// Hyper-V hypercall layout: 509 u64 of data, then output GPA, then the control
/// word (input) which the host overwrites with the result (output).
pub mod hv {
    pub const DATA: usize = 0;
    pub const DATA_LEN: usize = 509 * 8;
    pub const OUTPUT_GPA: usize = 0xfe8;
    pub const CONTROL_OR_RESULT: usize = 0xff0;
}

crate::le::le_page! {
    /// A GHCB page.
    Ghcb
}

impl Ghcb {
    pub fn usage(&self) -> u32 {
        (self.u64_at(off::USAGE - 4) >> 32) as u32
    }

    pub fn protocol_version(&self) -> u16 {
        (self.u64_at(off::USAGE - 4) >> 16) as u16
    }

    /// Sets the footer (version and usage) leaving the reserved bytes zero.
    pub fn set_footer(&mut self, version: u16, usage: u32) {
        let word = (u64::from(usage) << 32) | (u64::from(version) << 16);
        self.set_u64(off::USAGE - 4, word);
    }

    fn valid_bit(off: usize) -> (usize, u8) {
        let qword = off / 8;
        (off::VALID_BITMAP + qword / 8, 1 << (qword % 8))
    }

    /// Whether save-area field `off` is marked valid.
    pub fn is_valid(&self, off: usize) -> bool {
        let (byte, bit) = Self::valid_bit(off);
        byte < off::VALID_BITMAP + 16 && self.0.get(byte).is_some_and(|b| b & bit != 0)
    }

    /// Writes a save-area field and marks it valid.
    pub fn set_field(&mut self, off: usize, v: u64) {
        self.set_u64(off, v);
        let (byte, bit) = Self::valid_bit(off);
        if byte < off::VALID_BITMAP + 16 {
            if let Some(b) = self.0.get_mut(byte) {
                *b |= bit;
            }
        }
    }

    /// A field the host returns: `None` unless marked valid.
    pub fn field(&self, off: usize) -> Option<u64> {
        self.is_valid(off).then(|| self.u64_at(off))
    }

    /// Clears the save area and bitmap (between exits, so stale values never count).
    pub fn clear_save_area(&mut self) {
        self.0[..off::SHARED_BUFFER].fill(0);
    }

    pub fn shared_buffer(&self) -> &[u8] {
        &self.0[off::SHARED_BUFFER..off::SHARED_BUFFER_END]
    }

    pub fn shared_buffer_mut(&mut self) -> &mut [u8] {
        &mut self.0[off::SHARED_BUFFER..off::SHARED_BUFFER_END]
    }
}

/// The Hyper-V hypercall result word: status in bits 15:0, reps done in 43:32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvResult {
    pub status: u16,
    pub reps_done: u16,
}

/// Why a hypercall reply in the GHCB was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvGhcbError {
    /// The host changed the usage/version footer.
    FooterChanged,
    /// Reserved result bits set, or more reps reported than were requested.
    BadResult(u64),
}

/// Reads the host's result after a hypercall VMGEXIT issued with `control`.
pub fn read_hv_result(ghcb: &Ghcb, control: u64) -> Result<HvResult, HvGhcbError> {
    if ghcb.usage() != usage::HYPERV_HYPERCALL
        || ghcb.protocol_version() != crate::ghcb_msr::GHCB_PROTOCOL_VERSION
    {
        return Err(HvGhcbError::FooterChanged);
    }
    let r = ghcb.u64_at(hv::CONTROL_OR_RESULT);
    // Reserved: bits 31:16 and 63:44.
    if r & 0xffff_f000_ffff_0000 != 0 {
        return Err(HvGhcbError::BadResult(r));
    }
    let reps_done = ((r >> 32) & 0xfff) as u16;
    let reps_asked = ((control >> 32) & 0xfff) as u16;
    if reps_done > reps_asked {
        return Err(HvGhcbError::BadResult(r));
    }
    Ok(HvResult {
        status: r as u16,
        reps_done,
    })
}
