//! One split virtqueue (virtio 1.x, 2.7) in the DMA region, used in fixed slots
//! of `w` descriptors: slot `s` owns descriptors `ws..ws+w`, so a request never
//! waits for a free list and a used element's id must be `ws` for an in-flight
//! slot `s`.

use core::sync::atomic::{fence, Ordering};

use crate::bus::Dma;
use crate::Error;

/// The largest queue we use (QEMU offers 256; slots need only a few).
pub const MAX_SIZE: u16 = 128;
const MAX_SLOTS: usize = MAX_SIZE as usize;

const DESC_LEN: usize = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// One buffer of a request: bus address, length, whether the device writes it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub addr: u64,
    pub len: u32,
    pub device_writes: bool,
}

#[derive(Debug)]
pub struct Split {
    size: u16,
    width: u16,
    desc: usize,
    avail: usize,
    used: usize,
    end: usize,
    avail_idx: u16,
    last_used: u16,
    /// Per slot: bytes the device may write (at least the status byte), 0 = free.
    writable: [u32; MAX_SLOTS],
}

impl Split {
    /// A queue of `size` entries at `base` of the DMA region, in slots of
    /// `width` (at least one) descriptors.
    pub fn new(size: u16, base: usize, width: u16) -> Self {
        let n = usize::from(size);
        let desc = base;
        let avail = desc + DESC_LEN * n;
        let used = (avail + 6 + 2 * n).next_multiple_of(4);
        let end = used + 6 + 8 * n;
        Self {
            size,
            width: width.max(1),
            desc,
            avail,
            used,
            end,
            avail_idx: 0,
            last_used: 0,
            writable: [0; MAX_SLOTS],
        }
    }

    /// (descriptor table, driver area, device area) offsets, and where the queue ends.
    pub fn areas(&self) -> (usize, usize, usize, usize) {
        (self.desc, self.avail, self.used, self.end)
    }

    pub fn slots(&self) -> usize {
        usize::from(self.size / self.width).min(MAX_SLOTS)
    }

    pub fn free_slot(&self) -> Option<usize> {
        self.writable[..self.slots()].iter().position(|&w| w == 0)
    }

    pub fn in_flight(&self) -> usize {
        self.writable.iter().filter(|&&w| w != 0).count()
    }

    /// Chains `bufs` (at most the slot width) in slot `slot`'s descriptors and
    /// makes the chain available. The caller checked the slot is free.
    pub fn post(&mut self, dma: &mut impl Dma, slot: usize, bufs: &[Buffer]) {
        let first = slot * usize::from(self.width);
        let bufs = &bufs[..bufs.len().min(usize::from(self.width))];
        let mut writable = 0u32;
        for (k, b) in bufs.iter().enumerate() {
            let i = first + k;
            let mut flags = if b.device_writes { F_WRITE } else { 0 };
            if k + 1 < bufs.len() {
                flags |= F_NEXT;
            }
            let mut d = [0u8; DESC_LEN];
            d[..8].copy_from_slice(&b.addr.to_le_bytes());
            d[8..12].copy_from_slice(&b.len.to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            d[14..16].copy_from_slice(&((i + 1) as u16).to_le_bytes());
            dma.write(self.desc + DESC_LEN * i, &d);
            if b.device_writes {
                writable = writable.saturating_add(b.len);
            }
        }
        self.writable[slot] = writable.max(1);
        let ring = self.avail + 4 + 2 * usize::from(self.avail_idx % self.size);
        dma.write(ring, &(first as u16).to_le_bytes());
        // The device must see the descriptors and the ring entry before the index.
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        dma.write(self.avail + 2, &self.avail_idx.to_le_bytes());
        fence(Ordering::SeqCst);
    }

    /// The next completion the device published: (slot, bytes it says it wrote).
    /// Everything it wrote is checked against what is in flight.
    pub fn take_used(&mut self, dma: &impl Dma) -> Result<Option<(usize, u32)>, Error> {
        let idx = dma.read_u16(self.used + 2);
        let pending = idx.wrapping_sub(self.last_used);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(Error::UsedOverrun(idx));
        }
        // Read the element only after the index that published it.
        fence(Ordering::SeqCst);
        let elem = self.used + 4 + 8 * usize::from(self.last_used % self.size);
        let id = dma.read_u32(elem);
        let len = dma.read_u32(elem + 4);
        let slot = usize::try_from(id / u32::from(self.width)).unwrap_or(usize::MAX);
        let head = id.is_multiple_of(u32::from(self.width));
        let allowed = self.writable.get(slot).copied().unwrap_or(0);
        if !head || slot >= self.slots() || allowed == 0 {
            return Err(Error::UsedId(id));
        }
        if len > allowed {
            return Err(Error::UsedLen(len));
        }
        self.writable[slot] = 0;
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some((slot, len)))
    }
}
