//! PCR arithmetic for measured boot and for replaying the event log.

use sha2::{Digest, Sha256};

/// The SHA-256 bank's extend: PCR' = SHA-256(PCR || digest).
pub fn extend(pcr: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(pcr);
    h.update(digest);
    h.finalize().into()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
