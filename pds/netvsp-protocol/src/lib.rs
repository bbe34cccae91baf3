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

/// Message bodies as they lie in the buffers: `repr(C)`, little-endian fields, no
/// alignment, read straight from guest bytes; every one derives the same traits.
/// They live in module `$module`, re-exported: zerocopy's derives, expanded from
/// this macro, name helper types after the fields, and `missing_debug_implementations`
/// cannot tell those from ours.
macro_rules! wire_structs {
    (mod $module:ident; $($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* })*) => {
        pub use $module::*;
        #[allow(missing_debug_implementations)]
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[derive(
                    Copy, Clone, Debug, Default, PartialEq, Eq, zerocopy::FromBytes,
                    zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
                    zerocopy::Unaligned,
                )]
                #[repr(C)]
                pub struct $name { $($(#[$fmeta])* pub $field: $ty,)* }
            )*
        }
    };
}

pub mod nvsp;
pub mod oid;
pub mod rndis;

#[cfg(test)]
mod tests;
