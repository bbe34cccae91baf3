//! A virtio 1.x block driver without I/O of its own, on the shared `virtio`
//! transport (QEMU `virtio-blk-pci,disable-legacy=on`, id 0x1042: why the
//! modern interface, see that crate). One split virtqueue, requests in
//! fixed three-descriptor slots (header, data, status), completions polled from
//! the used ring or taken after the INTx interrupt.
//! Every value the device writes is checked (see `virtio`).
#![no_std]

#[cfg(any(test, feature = "model"))]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod device;
pub mod service;

#[cfg(any(test, feature = "model"))]
pub mod model;

pub use device::{
    Completion, DataWindow, Driver, Geometry, Request, RequestKind, Status, SLOT_DESCRIPTORS,
};
pub use virtio::{find_capabilities, Bus, Dma, Error, Layout, Split, Window};

/// Virtio sectors are 512 bytes whatever the device's block size.
pub const SECTOR: u64 = 512;

#[cfg(test)]
mod tests;
