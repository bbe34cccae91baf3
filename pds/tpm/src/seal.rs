//! The TPM's persistent state (libtpms' permanent state: NV indices, seeds,
//! hierarchy auth and policy) sealed for storage the host keeps across reboots:
//! encrypted and authenticated with XChaCha20-Poly1305 under a key the platform
//! provides, bound to the image that sealed it.
//!
//! A blob is refused whole — never partly loaded — when its header is malformed,
//! when it was sealed by a different image (its image digest differs, and so
//! does the key derived from it), or when any byte was changed (the tag does not
//! verify). The host can still withhold the blob or replay an older one: there
//! is no platform monotonic counter here (see README, not supported).

use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

pub const MAGIC: &[u8; 8] = b"PVTPMST1";
pub const VERSION: u32 = 1;
pub const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// magic, version, reserved, image digest, generation, nonce, length.
pub const HEADER_BYTES: usize = 8 + 4 + 4 + 32 + 8 + NONCE_BYTES + 4;

/// Where the sealing key comes from: the isolation platform's key for this
/// paravisor, asked for once at start. On svm (QEMU, no hardware isolation)
/// only [`DevelopmentKey`] exists; on SEV-SNP and TDX the backend's key
/// request (snp-backend's MSG_KEY_REQ derived key bound to the launch
/// measurement, tdx-backend's MRTD-bound key) gives a [`PlatformRootKey`].
pub trait SealingKeySource {
    /// A 256-bit key for `purpose`, stable across boots of the same platform
    /// and image.
    fn derive(&self, purpose: &[u8]) -> [u8; 32];
    /// Named in logs, so a development key is never mistaken for a real one.
    fn name(&self) -> &'static str;
}

/// The svm platform's key: a constant in the source. It protects against
/// accidents (a blob from another image, a corrupted file), not against anyone
/// who can read this file. README names it as the development key.
#[derive(Copy, Clone, Debug, Default)]
pub struct DevelopmentKey;

const DEVELOPMENT_SECRET: &[u8; 32] = b"paravisor svm DEVELOPMENT key v1";

impl SealingKeySource for DevelopmentKey {
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        hmac_sha256(DEVELOPMENT_SECRET, &[purpose])
    }
    fn name(&self) -> &'static str {
        "svm DEVELOPMENT key (not secret)"
    }
}

/// A key an isolation platform derived for this paravisor (the SNP firmware's
/// derived key, the TDX key broker's MRTD-bound key); purposes are separated
/// by HMAC so the root never leaves this value.
pub struct PlatformRootKey {
    root: [u8; 32],
    name: &'static str,
}

impl PlatformRootKey {
    pub fn new(root: [u8; 32], name: &'static str) -> Self {
        Self { root, name }
    }
}

impl fmt::Debug for PlatformRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformRootKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for PlatformRootKey {
    fn drop(&mut self) {
        self.root.zeroize();
    }
}

impl SealingKeySource for PlatformRootKey {
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.root, &[purpose])
    }
    fn name(&self) -> &'static str {
        self.name
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Why a blob was refused.
#[derive(Copy, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    /// Shorter than its header, or its length field disagrees with its size.
    #[error("state blob is truncated or its length field is wrong")]
    Truncated,
    #[error("not a TPM state blob (bad magic)")]
    BadMagic,
    #[error("state blob version {0} is not supported")]
    UnsupportedVersion(u32),
    /// Sealed by another image (its image digest's first bytes, and ours).
    #[error(
        "state blob was sealed by another paravisor image (image {}.., this image {}..)",
        Hex(.sealed_by),
        Hex(.this)
    )]
    OtherImage { sealed_by: [u8; 4], this: [u8; 4] },
    /// The authentication tag does not verify: the blob was changed, or sealed
    /// under another platform key.
    #[error("state blob failed authentication (modified, or sealed under another platform key)")]
    Tampered,
}

/// The message, also where the error is only `{:?}`-printed (in a
/// [`crate::state::StoreError`]).
impl fmt::Debug for UnsealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Digest bytes as one hex word, as `sha256sum` prints them.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Seals and unseals for one image under one platform key.
pub struct Sealer {
    key: XChaCha20Poly1305,
    image: [u8; 32],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// `image` identifies the paravisor image (the SHA-256 of its measurement
    /// list); the key is derived from the platform key and it, so a blob from
    /// another image also fails to authenticate.
    pub fn new(platform: &dyn SealingKeySource, image: [u8; 32]) -> Self {
        let mut purpose = Vec::with_capacity(48);
        purpose.extend_from_slice(b"vtpm state v1");
        purpose.extend_from_slice(&image);
        let key = platform.derive(&purpose);
        Self {
            key: XChaCha20Poly1305::new(&key.into()),
            image,
        }
    }

    /// The blob for `state`; `nonce` must be fresh random bytes.
    pub fn seal(&self, state: &[u8], generation: u64, nonce: [u8; NONCE_BYTES]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + state.len() + TAG_BYTES);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.image);
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&(state.len() as u32).to_le_bytes());
        let header_len = out.len();
        out.extend_from_slice(state);
        let (header, body) = out.split_at_mut(header_len);
        // Encryption of a buffer this size with a valid key cannot fail; an
        // error would leave plaintext, so refuse to return anything then.
        match self
            .key
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), header, body)
        {
            Ok(tag) => out.extend_from_slice(&tag),
            Err(_) => return Vec::new(),
        }
        out
    }

    /// The state in `blob` and its generation, checked whole first.
    pub fn unseal(&self, blob: &[u8]) -> Result<(Vec<u8>, u64), UnsealError> {
        let header = blob.get(..HEADER_BYTES).ok_or(UnsealError::Truncated)?;
        if &header[..8] != MAGIC {
            return Err(UnsealError::BadMagic);
        }
        let le32 = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let version = le32(8);
        if version != VERSION {
            return Err(UnsealError::UnsupportedVersion(version));
        }
        let image: [u8; 32] = header[16..48]
            .try_into()
            .map_err(|_| UnsealError::Truncated)?;
        if image != self.image {
            let four = |d: &[u8; 32]| [d[0], d[1], d[2], d[3]];
            return Err(UnsealError::OtherImage {
                sealed_by: four(&image),
                this: four(&self.image),
            });
        }
        let generation = u64::from_le_bytes(
            header[48..56]
                .try_into()
                .map_err(|_| UnsealError::Truncated)?,
        );
        let nonce = &header[56..56 + NONCE_BYTES];
        let len = le32(56 + NONCE_BYTES) as usize;
        let rest = &blob[HEADER_BYTES..];
        if rest.len() != len.checked_add(TAG_BYTES).ok_or(UnsealError::Truncated)? {
            return Err(UnsealError::Truncated);
        }
        let (body, tag) = rest.split_at(len);
        let mut state = body.to_vec();
        self.key
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                header,
                &mut state,
                Tag::from_slice(tag),
            )
            .map_err(|_| UnsealError::Tampered)?;
        Ok((state, generation))
    }
}

/// The image identity [`Sealer::new`] takes: the SHA-256 of the measurement
/// list (every PD's image hash, in order).
pub fn image_digest(measurement_list: &[u8]) -> [u8; 32] {
    crate::measure::sha256(measurement_list)
}

#[cfg(test)]
mod tests;
