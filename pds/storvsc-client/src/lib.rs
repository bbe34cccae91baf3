//! A storvsc client: the packets Linux's `hv_storvsc` sends (negotiation, SRBs
//! with GPA-direct page lists) written into the guest-to-host ring of an open
//! storage channel, and its completions read back. Whoever drives it (a test
//! calling the VSP in-process, guest-sim signalling through hypercalls) says how
//! the host is signalled and waited for through [`Host`].
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod client;
pub mod wire;

pub use client::{ClientError, Host, Negotiated, Request, Storvsc};
pub use wire::{GuestBuf, Reply};
