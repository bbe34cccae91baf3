//! The VMBus channel-management protocol: the messages a guest's vmbus driver and
//! the paravisor's vmbus-server exchange over the SynIC to negotiate a version,
//! enumerate offers, describe guest memory (GPADLs) and open channels.
//!
//! Layouts follow Linux's `include/linux/hyperv.h` (the sizes are pinned by const
//! asserts), including VMBus 6.0's Confidential VMBus additions: the
//! confidential-channels feature flag and the confidential ring buffer / external
//! memory offer flags. [`parse`] checks a received message's type, its size and
//! whether the negotiated version allows it.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod flags;
pub mod gpa;
pub mod ids;
pub mod messages;
mod open_enum;
mod parse;
pub mod status;
mod version;

pub use flags::{FeatureFlags, OfferFlags};
pub use ids::{GpadlId, Guid, Relid};
pub use messages::{MessageType, OutgoingMessage, VmbusMessage, HEADER_SIZE};
pub use parse::{parse, Message, Negotiated, ParseError};
pub use version::*;

#[doc(hidden)]
pub use hvdef as __hvdef;
