//! Starting libtpms from the state the host kept, the one path of the
//! host-sim and bare-metal entries: the blob is unsealed whole before the
//! engine sees a byte of it, and a refusal leaves the store untouched (the PD
//! then refuses to start on host-sim, or serves failure mode on bare metal; it
//! never manufactures a new TPM over a blob it could not open).

use core::fmt;

use ipc::Init;

use crate::libtpms::{LibtpmsEngine, LibtpmsError};
use crate::seal::SealingKeySource;
use crate::state::{Store, StoreError};

/// Why the TPM did not start from the host's storage.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sealed state was refused (not this image's, changed, not a blob).
    #[error("{}", StateMessage(.0))]
    State(StoreError),
    /// libtpms did not start (not linked, or it refused the unsealed state).
    #[error("{0}")]
    Engine(LibtpmsError),
}

/// A [`Refusal::State`] in words: the blob's refusal, or why there was no blob.
struct StateMessage<'a>(&'a StoreError);

impl fmt::Display for StateMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StoreError::Unseal(e) => write!(f, "sealed state refused: {e}"),
            e => write!(f, "sealed state not usable: {e:?}"),
        }
    }
}

/// How the engine started.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No storage granted: a TPM that forgets at reboot.
    Volatile,
    /// Empty storage: manufactured now (new seeds).
    Manufactured,
    /// From the blob of this generation.
    Restored(u64),
}

/// The engine, the store it saves to (if granted) and where its state came from.
pub struct Started {
    pub engine: LibtpmsEngine,
    pub store: Option<Store>,
    pub origin: Origin,
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Opens the sealed-state store (if granted) under `key` and starts libtpms
/// from what it holds.
pub fn start(init: &dyn Init, key: &dyn SealingKeySource) -> Result<Started, Refusal> {
    let (store, state) = match Store::open(init, key).map_err(Refusal::State)? {
        Some((store, state)) => (Some(store), state),
        None => (None, None),
    };
    let origin = match (&store, &state) {
        (None, _) => Origin::Volatile,
        (Some(_), None) => Origin::Manufactured,
        (Some(s), Some(_)) => Origin::Restored(s.generation()),
    };
    let engine = LibtpmsEngine::start(state).map_err(Refusal::Engine)?;
    Ok(Started {
        engine,
        store,
        origin,
    })
}
