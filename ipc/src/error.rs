use core::fmt;

use crate::{Channel, Child, RegionError};

/// What the runtime says when a PD uses a capability.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IpcError {
    /// system.xml gives this PD no channel or irq with that id.
    NotGranted(Channel),
    /// The channel exists but this end may not notify over it.
    NotifyNotPermitted(Channel),
    /// The channel exists but this end may not make protected calls over it.
    CallNotPermitted(Channel),
    /// The id names a channel, not an irq (or the reverse).
    NotAnIrq(Channel),
    /// The callee faulted or is gone; the call has no answer.
    PeerGone(Channel),
    /// The callee handled the call but reported an error.
    CallFailed(Channel),
    /// The transport itself failed (host-sim: an OS error).
    Transport,
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotGranted(ch) => write!(f, "{ch} is not granted to this PD"),
            Self::NotifyNotPermitted(ch) => write!(f, "{ch} does not allow notify from this end"),
            Self::CallNotPermitted(ch) => write!(f, "{ch} does not allow pp calls from this end"),
            Self::NotAnIrq(ch) => write!(f, "{ch} is not an irq"),
            Self::PeerGone(ch) => write!(f, "the peer on {ch} is gone"),
            Self::CallFailed(ch) => write!(f, "the protected call on {ch} failed in the callee"),
            Self::Transport => write!(f, "runtime transport error"),
        }
    }
}

/// Why a handler could not deal with an event. The runtime reports it with the PD's
/// name; for a protected call the caller gets [`IpcError::CallFailed`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HandlerError {
    /// A notification arrived on a channel this PD does not expect one on.
    UnexpectedNotification(Channel),
    /// A protected call arrived on a channel this PD does not serve calls on.
    UnexpectedCall(Channel),
    /// The call's label or registers are not a request this PD understands.
    BadRequest {
        channel: Channel,
        label: u64,
    },
    /// A child faulted and this PD has no policy for it.
    UnhandledFault(Child),
    /// The peer broke the shared-memory protocol (lying indices, bad lengths).
    PeerMisbehaved(Channel),
    Ipc(IpcError),
    Region(RegionError),
}

crate::wrap_from!(HandlerError { Ipc(IpcError), Region(RegionError) });

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedNotification(ch) => write!(f, "unexpected notification on {ch}"),
            Self::UnexpectedCall(ch) => write!(f, "unexpected protected call on {ch}"),
            Self::BadRequest { channel, label } => {
                write!(f, "bad request label {label:#x} on {channel}")
            }
            Self::UnhandledFault(child) => write!(f, "unhandled fault in child {}", child.0),
            Self::PeerMisbehaved(ch) => write!(f, "peer on {ch} broke the queue protocol"),
            Self::Ipc(e) => write!(f, "{e}"),
            Self::Region(e) => write!(f, "{e}"),
        }
    }
}

/// Why a PD could not start: what it needs is not what system.xml gave it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No map with this `setvar_vaddr` name was granted.
    MissingRegion(&'static str),
    /// The region exists but is smaller than the PD needs.
    RegionTooSmall {
        name: &'static str,
        needed: usize,
        granted: usize,
    },
    /// The region exists but without a permission the PD needs.
    RegionPerms {
        name: &'static str,
        needed: crate::Perms,
    },
    /// A channel the PD needs is not granted.
    MissingChannel(Channel),
    /// A named variable the PD needs was not set.
    MissingVariable(&'static str),
    /// A variable is set, but to a value the PD cannot work with.
    InvalidVariable { name: &'static str, value: u64 },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingRegion(n) => write!(f, "no region mapped with setvar_vaddr=\"{n}\""),
            Self::RegionTooSmall {
                name,
                needed,
                granted,
            } => write!(f, "region {name} is {granted:#x} bytes, needs {needed:#x}"),
            Self::RegionPerms { name, needed } => {
                write!(f, "region {name} must be mapped with perms \"{needed}\"")
            }
            Self::MissingChannel(ch) => write!(f, "{ch} is not granted"),
            Self::MissingVariable(n) => write!(f, "variable {n} is not set"),
            Self::InvalidVariable { name, value } => {
                write!(f, "variable {name} = {value:#x} is out of range")
            }
        }
    }
}
