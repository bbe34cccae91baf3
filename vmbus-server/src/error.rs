//! Why the server refused something. Guest-caused errors are answered with the
//! protocol's error reply where one exists, else dropped; either way the server logs
//! them and stays consistent.

use core::fmt;

use vmbus_protocol::{GpadlId, MessageType, ParseError, Relid, Version};

use crate::env::Status;
use crate::gpadl::GpadlError;
use crate::relid::RelidError;
use crate::server::ChannelState;

/// Why an INITIATE_CONTACT was refused (answered with `version_supported = 0`, or a
/// failed connection state).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ContactError {
    UnsupportedVersion(Version),
    /// The message SINT is not a SINT.
    BadSint(u8),
    /// The target VP does not exist.
    BadVp(u32),
    /// The guest asked for another VTL's server.
    OtherVtl(u8),
    /// One monitor page given without the other.
    MonitorPages,
}

/// Why a ring-buffer GPADL cannot back a channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Rings are one page-aligned range.
    Shape,
    /// Each ring needs a control page and at least one data page.
    Offset { offset: u32, pages: usize },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Too many messages await delivery to the guest; the message was not processed
    /// and the guest should retry (HV_STATUS_INSUFFICIENT_BUFFERS).
    Busy,
    Parse(ParseError),
    /// Posted to a connection id this connection does not use.
    WrongConnectionId {
        expected: u32,
        got: u32,
    },
    /// A message only a server sends.
    ClientMessage(MessageType),
    Contact(ContactError),
    OffersAlreadySent,
    /// No channel with this relid is offered to the guest.
    UnknownChannel {
        relid: Relid,
        message: MessageType,
    },
    /// The channel's state does not allow the message.
    ChannelState {
        relid: Relid,
        state: ChannelState,
        message: MessageType,
    },
    Gpadl {
        gpadl: GpadlId,
        error: GpadlError,
    },
    Ring {
        relid: Relid,
        error: RingError,
    },
    BadTargetVp {
        relid: Relid,
        vp: u32,
    },
    /// The VSP or the memory mapping refused.
    Refused {
        relid: Relid,
        status: Status,
    },
    /// Valid, but a feature this server does not provide (hv_sock).
    NotSupported(MessageType),
}

impl fmt::Display for ContactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => write!(f, "version {v} not supported"),
            Self::BadSint(s) => write!(f, "message SINT {s} does not exist"),
            Self::BadVp(vp) => write!(f, "target VP {vp} does not exist"),
            Self::OtherVtl(vtl) => write!(f, "contact for VTL {vtl}, this server serves VTL 0"),
            Self::MonitorPages => write!(f, "only one monitor page given"),
        }
    }
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape => write!(f, "ring GPADL is not one page-aligned range"),
            Self::Offset { offset, pages } => {
                write!(
                    f,
                    "downstream offset {offset} does not split {pages} pages into two rings"
                )
            }
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy => write!(f, "outgoing message queue full; message refused for retry"),
            Self::Parse(e) => write!(f, "malformed message: {e}"),
            Self::WrongConnectionId { expected, got } => {
                write!(f, "message on connection {got}, expected {expected}")
            }
            Self::ClientMessage(t) => write!(f, "{t:?} is a server-to-guest message"),
            Self::Contact(e) => write!(f, "INITIATE_CONTACT refused: {e}"),
            Self::OffersAlreadySent => write!(f, "REQUESTOFFERS repeated on one connection"),
            Self::UnknownChannel { relid, message } => {
                write!(
                    f,
                    "{message:?} for {relid}, which the guest was not offered"
                )
            }
            Self::ChannelState {
                relid,
                state,
                message,
            } => write!(f, "{message:?} for {relid} in state {state:?}"),
            Self::Gpadl { gpadl, error } => write!(f, "{gpadl}: {error}"),
            Self::Ring { relid, error } => write!(f, "open of {relid}: {error}"),
            Self::BadTargetVp { relid, vp } => write!(f, "{relid}: target VP {vp} does not exist"),
            Self::Refused { relid, status } => {
                write!(
                    f,
                    "{relid}: VSP or mapping refused with status {:#x}",
                    status.0
                )
            }
            Self::NotSupported(t) => write!(f, "{t:?} is not supported by this server"),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OfferError {
    /// A live offer already has this interface, instance and subchannel index.
    Duplicate,
    Relid(RelidError),
}

impl From<RelidError> for OfferError {
    fn from(e: RelidError) -> Self {
        Self::Relid(e)
    }
}

impl fmt::Display for OfferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate => write!(f, "an offer with this interface/instance/subchannel exists"),
            Self::Relid(RelidError::InUse(r)) => write!(f, "{r} is in use"),
            Self::Relid(RelidError::OutOfRange(r)) => write!(f, "relid {r} is out of range"),
            Self::Relid(RelidError::Exhausted) => write!(f, "no relid left"),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RevokeError {
    Unknown(Relid),
    AlreadyRevoked(Relid),
}

impl fmt::Display for RevokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(r) => write!(f, "no offer with {r}"),
            Self::AlreadyRevoked(r) => write!(f, "{r} is already revoked"),
        }
    }
}
