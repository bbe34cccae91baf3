//! Why the server refused something. Guest-caused errors are answered with the
//! protocol's error reply where one exists, else dropped; either way the server logs
//! them and stays consistent.

use vmbus_protocol::{GpadlId, MessageType, ParseError, Relid, Version};

use crate::env::Status;
use crate::gpadl::GpadlError;
use crate::relid::RelidError;
use crate::server::ChannelState;

/// Why an INITIATE_CONTACT was refused (answered with `version_supported = 0`, or a
/// failed connection state).
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("version {0} not supported")]
    UnsupportedVersion(Version),
    /// The message SINT is not a SINT.
    #[error("message SINT {0} does not exist")]
    BadSint(u8),
    /// The target VP does not exist.
    #[error("target VP {0} does not exist")]
    BadVp(u32),
    /// The guest asked for another VTL's server.
    #[error("contact for VTL {0}, this server serves VTL 0")]
    OtherVtl(u8),
    /// One monitor page given without the other.
    #[error("only one monitor page given")]
    MonitorPages,
}

/// Why a ring-buffer GPADL cannot back a channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// Rings are one page-aligned range.
    #[error("ring GPADL is not one page-aligned range")]
    Shape,
    /// Each ring needs a control page and at least one data page.
    #[error("downstream offset {offset} does not split {pages} pages into two rings")]
    Offset { offset: u32, pages: usize },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Too many messages await delivery to the guest; the message was not processed
    /// and the guest should retry (HV_STATUS_INSUFFICIENT_BUFFERS).
    #[error("outgoing message queue full; message refused for retry")]
    Busy,
    #[error("malformed message: {0}")]
    Parse(ParseError),
    /// Posted to a connection id this connection does not use.
    #[error("message on connection {got}, expected {expected}")]
    WrongConnectionId { expected: u32, got: u32 },
    /// A message only a server sends.
    #[error("{0:?} is a server-to-guest message")]
    ClientMessage(MessageType),
    #[error("INITIATE_CONTACT refused: {0}")]
    Contact(ContactError),
    #[error("REQUESTOFFERS repeated on one connection")]
    OffersAlreadySent,
    /// No channel with this relid is offered to the guest.
    #[error("{message:?} for {relid}, which the guest was not offered")]
    UnknownChannel { relid: Relid, message: MessageType },
    /// The channel's state does not allow the message.
    #[error("{message:?} for {relid} in state {state:?}")]
    ChannelState {
        relid: Relid,
        state: ChannelState,
        message: MessageType,
    },
    #[error("{gpadl}: {error}")]
    Gpadl { gpadl: GpadlId, error: GpadlError },
    #[error("open of {relid}: {error}")]
    Ring { relid: Relid, error: RingError },
    #[error("{relid}: target VP {vp} does not exist")]
    BadTargetVp { relid: Relid, vp: u32 },
    /// The VSP or the memory mapping refused.
    #[error("{relid}: VSP or mapping refused with status {:#x}", .status.0)]
    Refused { relid: Relid, status: Status },
    /// Valid, but a feature this server does not provide (hv_sock).
    #[error("{0:?} is not supported by this server")]
    NotSupported(MessageType),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// A live offer already has this interface, instance and subchannel index.
    #[error("an offer with this interface/instance/subchannel exists")]
    Duplicate,
    #[error(transparent)]
    Relid(#[from] RelidError),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    #[error("no offer with {0}")]
    Unknown(Relid),
    #[error("{0} is already revoked")]
    AlreadyRevoked(Relid),
}
