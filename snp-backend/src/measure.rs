//! The SEV-SNP launch digest: what SNP_LAUNCH_UPDATE folds into the guest
//! context's measurement for every page it places, so a loader (or a verifier of
//! an IGVM file) can compute the MEASUREMENT an attestation report will carry.
//!
//! Source: SEV Secure Nested Paging Firmware ABI Specification (AMD pub. 56860),
//! chapter "SNP_LAUNCH_UPDATE" and its table "PAGE_INFO Structure":
//! `digest = SHA-384(PAGE_INFO)` per page, starting from 48 zero bytes
//! (SNP_LAUNCH_START), where PAGE_INFO (0x70 bytes) is
//!
//! | offset | field                                                 |
//! |--------|-------------------------------------------------------|
//! | 0x00   | DIGEST_CUR, the digest so far (48 bytes)              |
//! | 0x30   | CONTENTS: SHA-384 of the page for NORMAL and VMSA pages, zero for the others |
//! | 0x60   | LENGTH = 0x70 (u16)                                   |
//! | 0x62   | PAGE_TYPE (table "Page Types")                        |
//! | 0x63   | IMI_PAGE (bit 0): 0, no migration agent here          |
//! | 0x64   | VMPL3_PERMS, 0x65 VMPL2_PERMS, 0x66 VMPL1_PERMS: 0 at launch (only VMPL0 owns a launched page) |
//! | 0x67   | reserved                                              |
//! | 0x68   | GPA (u64)                                             |
//!
//! Only the digest is computed here; it needs no hardware and is the same on the
//! build host and in `verify`.

use sha2::{Digest, Sha384};

/// Bytes in a SHA-384 digest (the launch digest and a page's CONTENTS).
pub const DIGEST_LEN: usize = 48;
/// PAGE_INFO's LENGTH field.
pub const PAGE_INFO_LEN: usize = 0x70;
/// A launched page.
pub use crate::le::PAGE_SIZE;

/// How SNP_LAUNCH_UPDATE is asked to place a page, with the bytes it measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchPage<'a> {
    /// PAGE_TYPE_NORMAL (1): contents encrypted in place and measured.
    Normal(&'a [u8; PAGE_SIZE]),
    /// PAGE_TYPE_VMSA (2): a vCPU's initial save area, measured like a normal page.
    Vmsa(&'a [u8; PAGE_SIZE]),
    /// PAGE_TYPE_ZERO (3): the firmware zeroes it; only its type and GPA count.
    Zero,
    /// PAGE_TYPE_UNMEASURED (4): encrypted but its contents are not measured.
    Unmeasured,
    /// PAGE_TYPE_SECRETS (5): the firmware fills in the VM's secrets.
    Secrets,
    /// PAGE_TYPE_CPUID (6): the firmware checks the CPUID table the loader supplied.
    Cpuid,
}

impl LaunchPage<'_> {
    /// The PAGE_TYPE code (ABI spec table "Page Types").
    pub const fn page_type(&self) -> u8 {
        match self {
            LaunchPage::Normal(_) => 1,
            LaunchPage::Vmsa(_) => 2,
            LaunchPage::Zero => 3,
            LaunchPage::Unmeasured => 4,
            LaunchPage::Secrets => 5,
            LaunchPage::Cpuid => 6,
        }
    }

    fn contents(&self) -> [u8; DIGEST_LEN] {
        let mut out = [0u8; DIGEST_LEN];
        if let LaunchPage::Normal(bytes) | LaunchPage::Vmsa(bytes) = self {
            out.copy_from_slice(&Sha384::digest(bytes.as_slice()));
        }
        out
    }
}

/// The running launch digest (GCTX.LD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchDigest([u8; DIGEST_LEN]);

impl Default for LaunchDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl LaunchDigest {
    /// The digest right after SNP_LAUNCH_START: all zero.
    pub const fn new() -> Self {
        Self([0; DIGEST_LEN])
    }

    /// The PAGE_INFO block SNP_LAUNCH_UPDATE hashes for `page` at `gpa` now.
    pub fn page_info(&self, gpa: u64, page: &LaunchPage<'_>) -> [u8; PAGE_INFO_LEN] {
        let mut info = [0u8; PAGE_INFO_LEN];
        info[..0x30].copy_from_slice(&self.0);
        info[0x30..0x60].copy_from_slice(&page.contents());
        info[0x60..0x62].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        info[0x62] = page.page_type();
        info[0x68..0x70].copy_from_slice(&gpa.to_le_bytes());
        info
    }

    /// Folds one launched page in.
    pub fn update(&mut self, gpa: u64, page: &LaunchPage<'_>) {
        let info = self.page_info(gpa, page);
        self.0.copy_from_slice(&Sha384::digest(info));
    }

    pub fn value(&self) -> [u8; DIGEST_LEN] {
        self.0
    }
}

#[cfg(test)]
mod tests;
