//! Where the sealed TPM state lives: region [`SEALED_STATE`], storage the host
//! keeps across reboots (host-visible: it only ever holds a [`crate::seal`]
//! blob). [`Store::open`] unseals what the host gives back before the engine
//! starts, and the PD saves a new blob whenever the engine's permanent state
//! changed.

use alloc::vec;
use alloc::vec::Vec;

use ipc::{Init, InitError, InitExt, Perms, Region};

use crate::measured_boot::{self, MEASUREMENTS};
use crate::seal::{image_digest, Sealer, SealingKeySource, UnsealError, MAGIC, NONCE_BYTES};

pub const SEALED_STATE: &str = "sealed_state";

#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    Init(InitError),
    /// The host's blob was refused; the TPM does not start from it.
    Unseal(UnsealError),
    /// The sealed state does not fit the region (needed bytes).
    TooLarge(usize),
}

/// An opened store and the state it held, if any.
pub type Opened = (Store, Option<Vec<u8>>);

/// The sealed-state region and the sealer bound to this image.
#[derive(Debug)]
pub struct Store {
    region: Region<'static>,
    sealer: Sealer,
    generation: u64,
    platform_key: &'static str,
}

impl Store {
    /// `None` when no state region is granted (a TPM that forgets at reboot).
    /// Otherwise the store and the unsealed state, if the region holds a blob.
    pub fn open(
        init: &dyn Init,
        platform: &dyn SealingKeySource,
    ) -> Result<Option<Opened>, StoreError> {
        let Some(region) = init
            .optional(init.region_with(SEALED_STATE, Perms::RW))
            .map_err(StoreError::Init)?
        else {
            return Ok(None);
        };
        // The image identity: the measurement list, normalised through its
        // parser (a system without one has the empty list's identity).
        let list = match init
            .optional(init.region_with(MEASUREMENTS, Perms::R))
            .map_err(StoreError::Init)?
        {
            Some(r) => {
                let mut bytes = vec![0; r.len()];
                let _ = r.read_bytes(0, &mut bytes);
                measured_boot::parse(&bytes).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let sealer = Sealer::new(platform, image_digest(&measured_boot::encode(&list)));
        let mut blob = vec![0; region.len()];
        let _ = region.read_bytes(0, &mut blob);
        let mut store = Self {
            region,
            sealer,
            generation: 0,
            platform_key: platform.name(),
        };
        if blob.get(..MAGIC.len()) != Some(MAGIC) && blob.iter().all(|&b| b == 0) {
            return Ok(Some((store, None)));
        }
        let len = declared_len(&blob).ok_or(StoreError::Unseal(UnsealError::Truncated))?;
        let (state, generation) = store
            .sealer
            .unseal(
                blob.get(..len)
                    .ok_or(StoreError::Unseal(UnsealError::Truncated))?,
            )
            .map_err(StoreError::Unseal)?;
        store.generation = generation;
        Ok(Some((store, Some(state))))
    }

    pub fn platform_key(&self) -> &'static str {
        self.platform_key
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Seals `state` as the next generation and writes it over the old blob.
    pub fn save(&mut self, state: &[u8], nonce: [u8; NONCE_BYTES]) -> Result<(), StoreError> {
        let blob = self.sealer.seal(state, self.generation + 1, nonce);
        if blob.len() > self.region.len() {
            return Err(StoreError::TooLarge(blob.len()));
        }
        self.region
            .write_bytes(0, &blob)
            .map_err(|_| StoreError::TooLarge(blob.len()))?;
        self.generation += 1;
        Ok(())
    }
}

/// A blob's whole length from its header (header + state + tag), if it has one.
fn declared_len(blob: &[u8]) -> Option<usize> {
    let at = crate::seal::HEADER_BYTES - 4;
    let len = u32::from_le_bytes(blob.get(at..at + 4)?.try_into().ok()?) as usize;
    len.checked_add(crate::seal::HEADER_BYTES + 16)
}
