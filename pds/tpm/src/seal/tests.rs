use proptest::prelude::*;

use super::*;

const STATE: &[u8] = b"NV, seeds and hierarchy state of a TPM";

fn sealer(image: u8) -> Sealer {
    Sealer::new(&DevelopmentKey, [image; 32])
}

struct OtherPlatform;
impl SealingKeySource for OtherPlatform {
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        hmac_sha256(b"another platform", &[purpose])
    }
    fn name(&self) -> &'static str {
        "test"
    }
}

#[test]
fn a_blob_round_trips_and_hides_the_state() {
    let blob = sealer(1).seal(STATE, 7, [3; NONCE_BYTES]);
    assert_eq!(blob.len(), HEADER_BYTES + STATE.len() + 16);
    assert!(
        !blob.windows(8).any(|w| w == &STATE[..8]),
        "plaintext visible"
    );
    assert_eq!(sealer(1).unseal(&blob), Ok((STATE.to_vec(), 7)));
}

#[test]
fn blobs_from_elsewhere_or_changed_are_refused_with_the_reason() {
    let blob = sealer(1).seal(STATE, 7, [3; NONCE_BYTES]);
    let mut version = blob.clone();
    version[8] = 2;
    let mut length = blob.clone();
    length[56 + NONCE_BYTES] ^= 1;
    let mut generation = blob.clone();
    generation[48] ^= 1;
    let mut body = blob.clone();
    body[HEADER_BYTES + 3] ^= 0x80;
    let mut tag = blob.clone();
    *tag.last_mut().unwrap() ^= 1;
    let table: &[(&str, Vec<u8>, UnsealError)] = &[
        ("empty", Vec::new(), UnsealError::Truncated),
        (
            "header only",
            blob[..HEADER_BYTES].to_vec(),
            UnsealError::Truncated,
        ),
        (
            "cut tag",
            blob[..blob.len() - 1].to_vec(),
            UnsealError::Truncated,
        ),
        (
            "magic",
            [b"XVTPMST1", &blob[8..]].concat(),
            UnsealError::BadMagic,
        ),
        ("version", version, UnsealError::UnsupportedVersion(2)),
        ("length", length, UnsealError::Truncated),
        (
            "generation (authenticated header)",
            generation,
            UnsealError::Tampered,
        ),
        ("ciphertext", body, UnsealError::Tampered),
        ("tag", tag, UnsealError::Tampered),
    ];
    for (what, bytes, want) in table {
        assert_eq!(sealer(1).unseal(bytes), Err(*want), "{what}");
    }
    let other_image = sealer(2).unseal(&blob).unwrap_err();
    assert_eq!(
        other_image,
        UnsealError::OtherImage {
            sealed_by: [1; 4],
            this: [2; 4]
        }
    );
    assert_eq!(
        std::format!("{other_image}"),
        "state blob was sealed by another paravisor image (image 01010101.., this image 02020202..)"
    );
    // Another image that forges the digest field still lacks the key.
    let mut forged = sealer(2).seal(STATE, 1, [0; NONCE_BYTES]);
    forged[16..48].copy_from_slice(&[1; 32]);
    assert_eq!(sealer(1).unseal(&forged), Err(UnsealError::Tampered));
    let other = Sealer::new(&OtherPlatform, [1; 32]).seal(STATE, 7, [3; NONCE_BYTES]);
    assert_eq!(sealer(1).unseal(&other), Err(UnsealError::Tampered));
}

proptest! {
    #[test]
    fn any_single_byte_change_is_refused(at in 0usize..(HEADER_BYTES + STATE.len() + 16), flip in 1u8..) {
        let mut blob = sealer(1).seal(STATE, 7, [3; NONCE_BYTES]);
        blob[at] ^= flip;
        prop_assert!(sealer(1).unseal(&blob).is_err());
    }

    #[test]
    fn unseal_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = sealer(1).unseal(&bytes);
    }
}

/// Writes the fuzz seed (a valid blob) when asked: `VTPM_WRITE_SEED=path`.
#[test]
fn write_fuzz_seed_if_asked() {
    if let Some(path) = std::env::var_os("VTPM_WRITE_SEED") {
        std::fs::write(path, sealer(1).seal(STATE, 7, [3; NONCE_BYTES])).unwrap();
    }
}
