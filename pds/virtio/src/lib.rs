//! The virtio 1.x transport the driver PDs share, without I/O of its own: it
//! reaches the device only through a [`Bus`] (the function's configuration
//! space and its mapped BARs) and its rings only through a [`Dma`] region whose
//! bus address it is told, so the same code runs in a bare-metal driver PD and
//! against a model device in host tests and fuzzing.
//!
//! Transport: virtio's modern PCI interface (QEMU's `virtio-*-pci` with
//! `disable-legacy=on` on the `pc` machine): the vendor capabilities in config
//! space say which memory-BAR windows hold the common, notify, ISR and
//! device-specific registers. Without `disable-legacy=on` QEMU offers a
//! transitional device whose legacy interface is an I/O-port BAR: a driver PD
//! has no ports (the kernel grants none), and MMIO maps are what the kernel's
//! PCI grants give, so the modern-only device is the one that fits.
//!
//! The device is not trusted to be well-behaved: every capability window must
//! lie inside a mapped BAR, and a used ring that runs ahead, names a descriptor
//! that is not an in-flight chain head, or claims more bytes than the chain let
//! the device write is an [`Error`], never a panic or an out-of-bounds access.
#![no_std]

#[cfg(feature = "model")]
extern crate alloc;

mod bus;
mod caps;
mod queue;
mod transport;

#[cfg(feature = "model")]
pub mod model;

pub use bus::{Bus, Dma};
pub use caps::{find as find_capabilities, Layout, Window};
pub use queue::{Buffer, Split, MAX_SIZE};
pub use transport::{Queue, Transport, F_VERSION_1};

/// Why a driver gave up on the device or refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A configuration-space read failed (the kernel refused it).
    Config,
    /// No capability list, or one that loops or leaves config space.
    CapabilityList,
    /// A required virtio capability is missing or its window is not inside a
    /// mapped BAR (`common`, `notify`, `isr`, `device`).
    Capability(&'static str),
    /// The device does not offer VIRTIO_F_VERSION_1 (a legacy-only device).
    NotModern,
    /// The device did not keep FEATURES_OK after we wrote our features.
    FeaturesRejected,
    /// The device did not come out of reset.
    ResetTimeout,
    /// A queue does not exist or has a size we cannot use.
    QueueSize(u16),
    /// The DMA region is too small for the queues and their buffers.
    DmaTooSmall,
    /// Every request slot is in flight.
    Busy,
    /// A request's buffer lies outside the data area (or the disk), or is too long.
    OutOfRange,
    /// The device asked for a reset (DEVICE_NEEDS_RESET).
    NeedsReset,
    /// The used ring's index moved more than the queue holds.
    UsedOverrun(u16),
    /// A used element names a descriptor that is not an in-flight head.
    UsedId(u32),
    /// A used element claims more bytes written than the chain allowed (or,
    /// for a received frame, fewer than its header).
    UsedLen(u32),
    /// Device configuration changed while we read it, again and again.
    ConfigUnstable,
}
