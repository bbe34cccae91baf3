use crate::{Channel, Child, RegionError};

/// What the runtime says when a PD uses a capability.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpcError {
    /// system.xml gives this PD no channel or irq with that id.
    #[error("{0} is not granted to this PD")]
    NotGranted(Channel),
    /// The channel exists but this end may not notify over it.
    #[error("{0} does not allow notify from this end")]
    NotifyNotPermitted(Channel),
    /// The channel exists but this end may not make protected calls over it.
    #[error("{0} does not allow pp calls from this end")]
    CallNotPermitted(Channel),
    /// The id names a channel, not an irq (or the reverse).
    #[error("{0} is not an irq")]
    NotAnIrq(Channel),
    /// The callee faulted or is gone; the call has no answer.
    #[error("the peer on {0} is gone")]
    PeerGone(Channel),
    /// The callee handled the call but reported an error.
    #[error("the protected call on {0} failed in the callee")]
    CallFailed(Channel),
    /// The transport itself failed (host-sim: an OS error).
    #[error("runtime transport error")]
    Transport,
}

/// Why a handler could not deal with an event. The runtime reports it with the PD's
/// name; for a protected call the caller gets [`IpcError::CallFailed`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A notification arrived on a channel this PD does not expect one on.
    #[error("unexpected notification on {0}")]
    UnexpectedNotification(Channel),
    /// A protected call arrived on a channel this PD does not serve calls on.
    #[error("unexpected protected call on {0}")]
    UnexpectedCall(Channel),
    /// The call's label or registers are not a request this PD understands.
    #[error("bad request label {label:#x} on {channel}")]
    BadRequest { channel: Channel, label: u64 },
    /// A child faulted and this PD has no policy for it.
    #[error("unhandled fault in child {}", .0 .0)]
    UnhandledFault(Child),
    /// The peer broke the shared-memory protocol (lying indices, bad lengths).
    #[error("peer on {0} broke the queue protocol")]
    PeerMisbehaved(Channel),
    #[error("{0}")]
    Ipc(IpcError),
    #[error("{0}")]
    Region(RegionError),
}

crate::wrap_from!(HandlerError { Ipc(IpcError), Region(RegionError) });

/// Why a PD could not start: what it needs is not what system.xml gave it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// No map with this `setvar_vaddr` name was granted.
    #[error("no region mapped with setvar_vaddr=\"{0}\"")]
    MissingRegion(&'static str),
    /// The region exists but is smaller than the PD needs.
    #[error("region {name} is {granted:#x} bytes, needs {needed:#x}")]
    RegionTooSmall {
        name: &'static str,
        needed: usize,
        granted: usize,
    },
    /// The region exists but without a permission the PD needs.
    #[error("region {name} must be mapped with perms \"{needed}\"")]
    RegionPerms {
        name: &'static str,
        needed: crate::Perms,
    },
    /// A channel the PD needs is not granted.
    #[error("{0} is not granted")]
    MissingChannel(Channel),
    /// A named variable the PD needs was not set.
    #[error("variable {0} is not set")]
    MissingVariable(&'static str),
    /// A variable is set, but to a value the PD cannot work with.
    #[error("variable {name} = {value:#x} is out of range")]
    InvalidVariable { name: &'static str, value: u64 },
}
