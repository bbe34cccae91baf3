//! The TD's build-time measurement register MRTD: what TDH.MEM.PAGE.ADD and
//! TDH.MR.EXTEND fold into it while the host builds the TD, so a loader (or a
//! verifier of an IGVM file) can compute the MRTD a TD quote will carry.
//!
//! Source: Intel TDX Module ABI specification, leaf descriptions of
//! TDH.MEM.PAGE.ADD and TDH.MR.EXTEND, and the base architecture spec's "MRTD"
//! (measurement of TD build). MRTD is one SHA-384 running over the whole build
//! (initialised by TDH.MNG.INIT, finalised by TDH.MR.FINALIZE), fed 128-byte
//! blocks:
//! - TDH.MEM.PAGE.ADD: bytes 0..12 "MEM.PAGE.ADD", bytes 16..24 the page's GPA
//!   (little endian), the rest zero. The page's contents are not measured here.
//! - TDH.MR.EXTEND (one 256-byte chunk): bytes 0..9 "MR.EXTEND", bytes 16..24 the
//!   chunk's GPA, the rest zero; then the chunk's 256 bytes.
//!
//! A measured page is one PAGE.ADD and sixteen MR.EXTENDs; an unmeasured one
//! (contents the TD must not trust) only the PAGE.ADD.

use sha2::{Digest, Sha384};

pub const DIGEST_LEN: usize = 48;
/// A TD page: the partition's page.
pub const PAGE_SIZE: usize = isolation::PAGE_SIZE as usize;
/// The bytes one TDH.MR.EXTEND measures.
pub const EXTEND_CHUNK: usize = 256;
const BLOCK: usize = 128;

/// MRTD while the TD is being built.
#[derive(Clone, Default)]
pub struct Mrtd(Sha384);

impl core::fmt::Debug for Mrtd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Mrtd").field(&self.value()).finish()
    }
}

/// The 128-byte block a build step hashes: its name, then the GPA at byte 16.
pub fn block(name: &[u8], gpa: u64) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name[..n]);
    b[16..24].copy_from_slice(&gpa.to_le_bytes());
    b
}

impl Mrtd {
    /// MRTD right after TDH.MNG.INIT.
    pub fn new() -> Self {
        Self::default()
    }

    /// TDH.MEM.PAGE.ADD of the page at `gpa`.
    pub fn page_add(&mut self, gpa: u64) {
        self.0.update(block(b"MEM.PAGE.ADD", gpa));
    }

    /// TDH.MR.EXTEND of the 256 bytes at `gpa`.
    pub fn mr_extend(&mut self, gpa: u64, chunk: &[u8; EXTEND_CHUNK]) {
        self.0.update(block(b"MR.EXTEND", gpa));
        self.0.update(chunk);
    }

    /// A page added and, when `measured`, extended chunk by chunk.
    pub fn add_page(&mut self, gpa: u64, page: &[u8; PAGE_SIZE], measured: bool) {
        self.page_add(gpa);
        if measured {
            for (i, chunk) in page.chunks_exact(EXTEND_CHUNK).enumerate() {
                let mut c = [0u8; EXTEND_CHUNK];
                c.copy_from_slice(chunk);
                self.mr_extend(gpa.wrapping_add((i * EXTEND_CHUNK) as u64), &c);
            }
        }
    }

    /// The value TDH.MR.FINALIZE would fix.
    pub fn value(&self) -> [u8; DIGEST_LEN] {
        let mut out = [0u8; DIGEST_LEN];
        out.copy_from_slice(&self.0.clone().finalize());
        out
    }
}

#[cfg(test)]
mod tests;
