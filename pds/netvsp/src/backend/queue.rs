//! A backend over two shared-memory frame queues (`ipc::queue`): frames the NIC
//! sends go into one, frames for the guest come out of the other. The peer (a
//! second netvsp, a switch or a NIC driver PD) holds the other ends; each side
//! notifies the other when it asked to be woken, as the queue protocol says.
//!
//! The peer writes the bytes of every slot: a length beyond the slot is a frame
//! dropped and counted, never a read past it.

use ipc::{Consumer, Producer, QueueError, Region};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::Backend;
use crate::rndis_device::MAX_FRAME;

/// Bytes of one slot's frame area (an Ethernet frame with its VLAN tag fits).
pub const SLOT_DATA: usize = 1532;
const _: () = assert!(MAX_FRAME <= SLOT_DATA);

/// One frame in a queue.
#[repr(C)]
#[derive(Copy, Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FrameSlot {
    pub len: u32,
    pub data: [u8; SLOT_DATA],
}

impl FrameSlot {
    /// `None` for a frame larger than a slot.
    pub fn new(frame: &[u8]) -> Option<Self> {
        let mut slot = Self {
            len: u32::try_from(frame.len()).ok()?,
            data: [0; SLOT_DATA],
        };
        slot.data.get_mut(..frame.len())?.copy_from_slice(frame);
        Some(slot)
    }

    /// The frame; `None` if the length the peer wrote runs past the slot.
    pub fn frame(&self) -> Option<&[u8]> {
        self.data.get(..usize::try_from(self.len).ok()?)
    }
}

/// Counters of a [`QueueBackend`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub sent: u64,
    pub received: u64,
    /// Frames not sent: the outgoing queue was full.
    pub full: u64,
    /// Frames dropped on the way in: bad length or larger than the caller's buffer.
    pub bad: u64,
}

#[derive(Debug)]
pub struct QueueBackend<'a> {
    tx: Producer<'a, FrameSlot>,
    rx: Consumer<'a, FrameSlot>,
    wake: bool,
    pub stats: QueueStats,
}

impl<'a> QueueBackend<'a> {
    /// Attaches to the queues in `tx` (we produce) and `rx` (we consume), each of
    /// `capacity` slots. A zeroed region is an empty queue.
    pub fn new(tx: Region<'a>, rx: Region<'a>, capacity: u32) -> Result<Self, QueueError> {
        Ok(Self {
            tx: Producer::new(tx, capacity)?,
            rx: Consumer::new(rx, capacity)?,
            wake: false,
            stats: QueueStats::default(),
        })
    }

    /// Bytes a region needs for a queue of `capacity` slots.
    pub fn region_size(capacity: u32) -> Result<usize, QueueError> {
        ipc::Queue::<FrameSlot>::layout_size(capacity)
    }
}

impl Backend for QueueBackend<'_> {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        let Some(slot) = FrameSlot::new(frame) else {
            return false;
        };
        if self.tx.try_enqueue(slot).is_err() {
            self.stats.full += 1;
            return false;
        }
        self.stats.sent += 1;
        self.wake |= self.tx.take_signal_request();
        true
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let slot = match self.rx.dequeue() {
                Ok(Some(slot)) => slot,
                // Empty: ask to be woken, and look once more in case a frame came
                // in between (the queue's lost-wakeup rule).
                Ok(None) => match self.rx.prepare_to_sleep() {
                    Ok(false) => continue,
                    _ => return None,
                },
                Err(_) => return None,
            };
            // Taking a slot may free the space the peer waits for.
            self.wake |= self.rx.take_signal_request();
            match slot
                .frame()
                .and_then(|f| Some((buf.get_mut(..f.len())?, f)))
            {
                Some((dst, frame)) => {
                    dst.copy_from_slice(frame);
                    self.stats.received += 1;
                    return Some(frame.len());
                }
                None => self.stats.bad += 1,
            }
        }
    }

    fn has_room(&mut self, frames: usize) -> bool {
        let enough =
            |tx: &mut Producer<'_, FrameSlot>| tx.free_slots().is_ok_and(|n| n as usize >= frames);
        if enough(&mut self.tx) {
            return true;
        }
        // Ask the consumer to say when it took some, then look again: it may have
        // just done so.
        self.tx.request_signal();
        if enough(&mut self.tx) {
            self.tx.cancel_signal();
            return true;
        }
        false
    }

    fn take_wakeup(&mut self) -> bool {
        core::mem::take(&mut self.wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn frames_cross_and_bad_slots_are_dropped() {
        let size = QueueBackend::region_size(8).unwrap();
        let (a, b) = (
            ipc::testing::leaked_region(size),
            ipc::testing::leaked_region(size),
        );
        let mut left = QueueBackend::new(a, b, 8).unwrap();
        let mut right = QueueBackend::new(b, a, 8).unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        // The right side found nothing and asked to be woken.
        assert_eq!(right.receive(&mut buf), None);
        assert!(left.transmit(&[1; 60]));
        assert!(left.take_wakeup(), "the consumer asked for a signal");
        assert!(!left.take_wakeup());
        assert_eq!(right.receive(&mut buf), Some(60));
        assert_eq!(&buf[..60], &[1; 60]);
        assert!(
            !left.transmit(&vec![0; SLOT_DATA + 1]),
            "too large for a slot"
        );
        // A peer's slot whose length lies is dropped, not read past.
        let mut bad = FrameSlot::new(&[2; 10]).unwrap();
        bad.len = u32::MAX;
        left.tx.try_enqueue(bad).unwrap();
        assert!(left.transmit(&[3; 64]));
        assert!(left.transmit(&[4; 1000]));
        assert_eq!(right.receive(&mut buf), Some(64));
        assert_eq!(right.stats.bad, 1);
        assert_eq!(
            right.receive(&mut buf[..100]),
            None,
            "larger than the buffer"
        );
        assert_eq!(right.stats.bad, 2);
        // A full queue refuses and counts.
        let sent: usize = (0..10).filter(|_| left.transmit(&[5; 60])).count();
        assert_eq!(sent, 8);
        assert_eq!(left.stats.full, 2);
    }
}
