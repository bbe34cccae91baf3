//! The TPM's state across reboots: seeds and NV sealed into the host's storage
//! region, a secret sealed in one boot unsealed in the next; a blob from another
//! image or changed by the host is refused whole, and the TPM does not start.
#![allow(clippy::unwrap_used)]

mod common;

use common::{libtpms_turn, rc, Guest, SECRET};
use ipc::testing::{leaked_region, FakeInit};
use ipc::{Perms, Region};
use tpm::boot::{Origin, Refusal};
use tpm::commands::{self, handle_of};
use tpm::libtpms::LibtpmsEngine;
use tpm::measured_boot::{encode, Measurement, MEASUREMENTS};
use tpm::seal::{DevelopmentKey, UnsealError};
use tpm::state::{StoreError, SEALED_STATE};

/// The grants of one boot of image `image` with the host's `storage`.
fn grants(storage: Region<'static>, image: u8) -> impl Fn(FakeInit) -> FakeInit {
    let measurements = leaked_region(4096);
    let list = encode(&[Measurement {
        name: "vmm".into(),
        sha256: [image; 32],
    }]);
    measurements.write_bytes(0, &list).unwrap();
    move |init: FakeInit| {
        init.region(SEALED_STATE, storage)
            .region(MEASUREMENTS, measurements.restrict(Perms::R))
    }
}

/// One boot as the entry points start: the store opened from `storage`, the
/// engine started from its state. A refusal must leave `storage` as it was.
fn boot(storage: Region<'static>, image: u8) -> Result<Guest<LibtpmsEngine>, StoreError> {
    let grants = grants(storage, image);
    let mut before = vec![0u8; storage.len()];
    storage.read_bytes(0, &mut before).unwrap();
    let started = match tpm::boot::start(&grants(FakeInit::new("tpm")), &DevelopmentKey) {
        Ok(s) => s,
        Err(Refusal::State(e)) => {
            let mut after = vec![0u8; storage.len()];
            storage.read_bytes(0, &mut after).unwrap();
            assert!(before == after, "a refused blob was written over");
            return Err(e);
        }
        Err(e) => panic!("libtpms: {e}"),
    };
    // Empty storage makes a new TPM; anything else that opened was a blob.
    let empty = before.iter().all(|&b| b == 0);
    match started.origin {
        Origin::Manufactured => assert!(empty, "manufactured over a blob"),
        Origin::Restored(generation) => assert!(!empty && generation >= 1),
        Origin::Volatile => panic!("the storage region was granted"),
    }
    let store = started.store.unwrap();
    Ok(Guest::with_setup(started.engine, grants, |pd, kernel| {
        pd.with_store(kernel, store)
    }))
}

/// Startup and the storage primary key (derived from the persisted seed).
fn start_and_parent(g: &mut Guest<LibtpmsEngine>) -> u32 {
    assert_eq!(rc(&g.transact(&commands::startup_clear())), 0);
    handle_of(&g.transact(&commands::create_primary(false))).unwrap()
}

#[test]
fn sealed_in_one_boot_unsealed_in_the_next_and_foreign_or_changed_state_refused() {
    let _turn = libtpms_turn();
    let storage = leaked_region(0x20000);

    // Boot 1: a fresh TPM; a secret sealed to its storage key leaves as the
    // guest's blobs (they would live on the guest's disk).
    let (private, public) = {
        let mut g = boot(storage, 1).unwrap();
        let parent = start_and_parent(&mut g);
        let created = g.transact(&commands::create_sealed(parent, SECRET));
        assert_eq!(rc(&created), 0);
        assert!(g.pd.store().unwrap().generation() >= 1, "state was saved");
        commands::created_object(&created).unwrap()
    };
    let mut blob = vec![0u8; storage.len()];
    storage.read_bytes(0, &mut blob).unwrap();

    // Boot 2, same image: the same seed, so the same parent unwraps the blob.
    {
        let mut g = boot(storage, 1).unwrap();
        let parent = start_and_parent(&mut g);
        let item = handle_of(&g.transact(&commands::load(parent, &private, &public))).unwrap();
        let r = g.transact(&commands::unseal(item));
        assert_eq!(commands::unsealed_data(&r), Some(SECRET));
    }

    // Control: a TPM without the state has another seed and cannot load it.
    {
        let mut g = boot(leaked_region(0x20000), 1).unwrap();
        let parent = start_and_parent(&mut g);
        assert_ne!(
            rc(&g.transact(&commands::load(parent, &private, &public))),
            0
        );
    }

    // Another image's boot refuses the blob, naming why; so does a changed one.
    storage.write_bytes(0, &blob).unwrap();
    match boot(storage, 2) {
        Err(StoreError::Unseal(UnsealError::OtherImage { .. })) => {}
        other => panic!("another image: {:?}", other.map(|_| ())),
    }
    let at_len = tpm::seal::HEADER_BYTES - 4;
    let blob_len = tpm::seal::HEADER_BYTES
        + u32::from_le_bytes(blob[at_len..at_len + 4].try_into().unwrap()) as usize
        + 16;
    for at in [20usize, 100, tpm::seal::HEADER_BYTES + 7, blob_len - 1] {
        let mut changed = blob.clone();
        changed[at] ^= 0x40;
        storage.write_bytes(0, &changed).unwrap();
        let err = boot(storage, 1).map(|_| ()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Unseal(UnsealError::Tampered | UnsealError::OtherImage { .. })
            ),
            "byte {at}: {err:?}"
        );
    }
    // Garbage that is not a blob at all.
    storage.write_bytes(0, b"not a blob").unwrap();
    assert_eq!(
        boot(storage, 1).map(|_| ()).unwrap_err(),
        StoreError::Unseal(UnsealError::BadMagic)
    );
}
