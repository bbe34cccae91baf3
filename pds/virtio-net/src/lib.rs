//! A virtio 1.x network driver without I/O of its own, on the shared `virtio`
//! transport (QEMU `virtio-net-pci,disable-legacy=on`, id 0x1041): queue 0
//! receives, queue 1 transmits, each in one-descriptor slots of a fixed
//! [`BUF_LEN`]-byte buffer holding the 12-byte virtio-net header and one
//! Ethernet frame. No offloads are negotiated (no checksum, GSO or mergeable
//! buffers), so every frame is whole and the header carries nothing we need:
//! a header that claims an offload we did not agree to drops its frame.
//!
//! The device is hostile: used elements are checked by the transport (in-flight
//! head, length within the buffer), a received length shorter than the header
//! is an [`Error`], and a bad header or runt frame is dropped and counted;
//! nothing the device writes can panic the driver or reach past a buffer.
#![no_std]

mod driver;
pub mod header;

#[cfg(any(test, feature = "model"))]
pub mod model;

pub use driver::{Driver, Stats, BUF_LEN, DMA_LEN, MAX_FRAME, QUEUE_SIZE};
pub use header::{NetHeader, HEADER_LEN};
pub use virtio::{Bus, Dma, Error};

#[cfg(test)]
mod tests;
