//! The paravisor's VMBus channel-management server.
//!
//! [`Server`] is a sans-IO state machine: it takes channel messages the guest posted
//! (and offers VSP PDs register) and acts through a [`ServerEnv`]: posting messages to
//! the guest's SynIC, mapping GPADLs, opening and closing channels at VSPs, logging.
//! Every guest message is validated (type, size for the negotiated version, state
//! order, relid ownership, GPADL handles, page ranges inside guest memory); a bad one
//! gets the protocol's error answer or is dropped and logged.
//!
//! `no_std` with `alloc`: channel and GPADL tables grow with what the guest and VSPs
//! register, within [`Limits`].
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod config;
mod env;
mod error;
mod gpadl;
pub mod pd;
mod relid;
mod server;

#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError, Limits, PfnRange, DEFAULT_SIGNAL_CONNECTION_BASE};
pub use env::{
    Confidentiality, ConnectionInfo, GpadlMapping, Level, MessageTarget, OpenRequest, ServerEnv,
    Status,
};
pub use error::{ContactError, MessageError, OfferError, RevokeError, RingError};
pub use gpadl::GpadlError;
pub use relid::{RelidAllocator, RelidError};
pub use server::{ChannelState, OfferParams, OfferSource, RelidRequest, Server};
pub use vmbus_protocol as protocol;
/// The VSP contract moved to its own crate; this path stays for existing callers.
pub use vsp_api as vsp;
