//! The sealing key from each isolation backend: svm's development key, the
//! SEV-SNP firmware's derived key (MSG_KEY_REQ, bound to the launch
//! measurement) and the TDX broker's MRTD-bound key. A blob sealed under one
//! image's key is refused under another image's, whole.
#![allow(clippy::unwrap_used)]

use snp_backend::keys::ModelFirmware;
use tdx_backend::keys::{ModelBroker, ModelTdx};
use tpm::seal::{
    DevelopmentKey, PlatformRootKey, Sealer, SealingKeySource, UnsealError, NONCE_BYTES,
};

const STATE: &[u8] = b"permall: NV indices, seeds, hierarchy auth";
/// The same image digest everywhere: only the platform key differs.
const IMAGE: [u8; 32] = [3; 32];

fn snp(measurement: u8) -> PlatformRootKey {
    let mut fw = ModelFirmware {
        chip_secret: [7; 32],
        measurement: [measurement; 48],
        policy: 0x30000,
        caller_vmpl: 0,
    };
    let key = snp_backend::keys::sealing_key(&mut fw).unwrap();
    PlatformRootKey::new(key, "SEV-SNP derived key (VCEK; measurement, policy)")
}

fn tdx(mrtd: u8) -> PlatformRootKey {
    let mut td = ModelTdx {
        report_key: [5; 32],
        mrtd: [mrtd; 48],
        attributes: 0,
    };
    let mut broker = ModelBroker {
        report_key: [5; 32],
        secret: [9; 32],
    };
    let key = tdx_backend::keys::sealing_key(&mut td, &mut broker).unwrap();
    PlatformRootKey::new(key, "TDX broker key (MRTD, ATTRIBUTES)")
}

/// A platform's sealing key for a launch measurement (or MRTD) of all `u8`s.
type Platform = fn(u8) -> PlatformRootKey;

fn seal(key: &dyn SealingKeySource) -> Vec<u8> {
    Sealer::new(key, IMAGE).seal(STATE, 1, [4; NONCE_BYTES])
}

fn unseal(key: &dyn SealingKeySource, blob: &[u8]) -> Result<Vec<u8>, UnsealError> {
    Sealer::new(key, IMAGE).unseal(blob).map(|(s, _)| s)
}

#[test]
fn each_backend_opens_its_own_images_state_and_refuses_another_images() {
    let cases: [(&str, Platform); 2] = [("snp", snp), ("tdx", tdx)];
    for (name, platform) in cases {
        let blob = seal(&platform(1));
        assert_eq!(unseal(&platform(1), &blob), Ok(STATE.to_vec()), "{name}");
        assert_eq!(
            unseal(&platform(2), &blob),
            Err(UnsealError::Tampered),
            "{name}: another launch measurement"
        );
        assert_eq!(
            unseal(&DevelopmentKey, &blob),
            Err(UnsealError::Tampered),
            "{name}: the development key"
        );
        assert_eq!(
            unseal(&platform(1), &seal(&DevelopmentKey)),
            Err(UnsealError::Tampered),
            "{name}: a development-key blob"
        );
    }
    assert_ne!(
        snp(1).derive(b"x"),
        tdx(1).derive(b"x"),
        "platforms never share keys"
    );
    assert!(DevelopmentKey.name().contains("DEVELOPMENT"));
}
