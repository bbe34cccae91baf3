//! The wire formats a Hyper-V synthetic NIC speaks, as Linux's `hv_netvsc`
//! (drivers/net/hyperv) lays them out.
//!
//! Two layers share one VMBus channel:
//! - [`nvsp`]: the Network VSP protocol, one fixed-size message per VMBus packet:
//!   version negotiation, the receive and send buffers (GPADLs cut into sections),
//!   and "here is an RNDIS message" / "done with it".
//! - [`rndis`]: Remote NDIS messages inside those buffers: the control exchange
//!   (INITIALIZE, QUERY/SET of [`oid`]s, indications) and data packets carrying one
//!   Ethernet frame each with per-packet info.
//!
//! Its own crate so the VSP, the test client and the fuzz targets link the format,
//! not each other. Every parser takes hostile bytes: lengths and offsets are checked
//! against the bytes actually given and errors are values, never panics.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod nvsp;
pub mod oid;
pub mod rndis;

#[cfg(test)]
mod tests;
