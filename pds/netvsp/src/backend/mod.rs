//! Where frames go: one interface for every network a NIC can sit on.
//!
//! - [`Loopback`]: frames sent come back (a guest talking to itself; no OS needed).
//! - [`switch::Switch`]: an in-memory learning switch; two NICs on it reach each
//!   other (std).
//! - [`tap::Tap`]: a Linux TAP device, for a NIC on the host's stack inside a
//!   network namespace (std).
//! - [`queue::QueueBackend`]: two shared-memory frame queues to another PD
//!   ([`select::granted`] picks them, or a loopback, from what system.xml grants);
//!   [`virtio::pump`] is the virtio-net driver PD's end of them.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub mod queue;
pub mod select;
#[cfg(feature = "std")]
pub mod switch;
#[cfg(feature = "std")]
pub mod tap;
pub mod virtio;

/// A network attachment. Neither call blocks. `Debug` so whatever holds one can
/// say which attachment it is.
pub trait Backend: core::fmt::Debug {
    /// Sends one Ethernet frame; false if it was dropped (no room, link down).
    fn transmit(&mut self, frame: &[u8]) -> bool;

    /// Copies the next frame from the network into `buf`; its length, or `None`
    /// when nothing waits. A frame longer than `buf` is dropped, not cut.
    fn receive(&mut self, buf: &mut [u8]) -> Option<usize>;

    /// Whether `frames` more frames would be taken now. A backend that says no
    /// arranges to be woken when room appears (its [`Self::take_wakeup`] peer
    /// notifies); the NIC leaves the guest's packets in its ring until then, so a
    /// slow receiver slows the sender instead of losing its frames.
    fn has_room(&mut self, frames: usize) -> bool {
        let _ = frames;
        true
    }

    /// Whether the backend's peer must be notified now (it asked to be woken for
    /// frames we sent or space we freed); asking clears it.
    fn take_wakeup(&mut self) -> bool {
        false
    }
}

/// Frames sent come back in order, up to `limit` waiting.
#[derive(Debug)]
pub struct Loopback {
    frames: VecDeque<Vec<u8>>,
    limit: usize,
    pub dropped: u64,
}

impl Loopback {
    pub fn new(limit: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            limit,
            dropped: 0,
        }
    }
}

impl Backend for Loopback {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        if self.frames.len() >= self.limit {
            self.dropped += 1;
            return false;
        }
        self.frames.push_back(frame.to_vec());
        true
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        pop_fitting(&mut self.frames, buf, &mut self.dropped)
    }
}

/// Copies the next queued frame that fits `buf` into it, dropping (and counting)
/// the ones that do not.
pub(crate) fn pop_fitting(
    frames: &mut VecDeque<Vec<u8>>,
    buf: &mut [u8],
    dropped: &mut u64,
) -> Option<usize> {
    loop {
        let frame = frames.pop_front()?;
        if let Some(dst) = buf.get_mut(..frame.len()) {
            dst.copy_from_slice(&frame);
            return Some(frame.len());
        }
        *dropped += 1;
    }
}
