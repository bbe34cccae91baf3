//! The protection-domain programming model every PD is written against.
//!
//! It mirrors seL4 Microkit (`Handler`, `Channel`, `MessageInfo`) so PD code could
//! move onto real seL4 by swapping the backend. A backend (host-sim, the bare-metal
//! kernel, or a unit-test fake) implements [`Kernel`] and [`Init`]; PD code sees
//! only channels and the memory regions the system description granted it.
#![no_std]

#[cfg(test)]
extern crate std;

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

mod call;
mod channel;
mod debug_fields;
mod error;
mod handler;
mod init;
mod message;
pub mod queue;
pub mod region;
mod shared_words;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;
mod wrap_from;

pub use call::PpCall;
pub use channel::{Channel, ChannelSet, Child};
pub use error::{HandlerError, InitError, IpcError};
#[cfg(any(test, feature = "alloc"))]
pub use handler::Boxed;
pub use handler::{FaultInfo, Handler, HandlerReply, Init, Kernel, Never, PpReply};
pub use init::{guest_names, GuestWindow, GuestWindows, InitExt, WithVariables};
pub use message::{MessageInfo, MessageRegisters, MAX_MESSAGE_REGISTERS};
pub use queue::{Consumer, Producer, Queue, QueueEntry, QueueError, TryEnqueueError};
pub use region::{Perms, Region, RegionError};
pub use shared_words::SharedWords;
