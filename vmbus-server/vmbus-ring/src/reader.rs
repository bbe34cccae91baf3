//! The receiving endpoint. It owns `read_index` and `interrupt_mask`; the peer owns
//! `write_index`, `pending_send_size` and every packet byte, and may lie in all of
//! them. Our own index is kept privately and only ever stored, never read back.

use core::cell::Cell;
use core::sync::atomic::Ordering;

use crate::error::{AttachError, Corruption, ReadError};
use crate::geometry::{Attached, End, Geometry, RingRange};
use crate::mem::RingMem;
use crate::packet::{self, GpaDirect, GpaRange, GpaRangeWalk, IncomingPacket, TransferPages};
use crate::protocol::TransferPageRange;
use crate::signal;

#[derive(Debug)]
pub struct IncomingRing<M: RingMem> {
    mem: M,
    geo: Geometry,
    /// What `read_index` says (we are its only legitimate writer).
    committed_read: u32,
    /// Past every consumed packet, committed or not.
    next_read: u32,
    /// The peer's last validated write index.
    cached_write: u32,
    /// The packet at `next_read` if already parsed, with its ring bytes.
    peeked: Option<(IncomingPacket, u32)>,
    /// Sticky: the first protocol violation seen. A `Cell` so the range iterators,
    /// which only borrow the ring, can break it too.
    broken: Cell<Option<Corruption>>,
}

impl<M: RingMem> IncomingRing<M> {
    /// Attaches to a ring whose indices are whatever the creator and the peer left.
    /// Does not touch the control page.
    pub fn new(mem: M) -> Result<Self, AttachError> {
        let Attached { geo, own, peer } = Geometry::attach(&mem, End::Reader)?;
        Ok(Self {
            mem,
            geo,
            committed_read: own,
            next_read: own,
            cached_write: peer,
            peeked: None,
            broken: Cell::new(None),
        })
    }

    pub fn mem(&self) -> &M {
        &self.mem
    }

    /// Size of the data area in bytes.
    pub fn data_len(&self) -> u32 {
        self.geo.size()
    }

    /// The violation that broke the ring, if any.
    pub fn corruption(&self) -> Option<Corruption> {
        self.broken.get()
    }

    fn check(&self) -> Result<(), Corruption> {
        match self.broken.get() {
            Some(c) => Err(c),
            None => Ok(()),
        }
    }

    fn fail(&self, c: Corruption) -> Corruption {
        if self.broken.get().is_none() {
            self.broken.set(Some(c));
        }
        self.broken.get().unwrap_or(c)
    }

    /// Loads and checks the peer's write index. It can only move forward from the
    /// last value we saw and never past our committed read index.
    fn refresh_write(&mut self, order: Ordering) -> Result<u32, Corruption> {
        let raw = self.mem.control().write_index().load(order);
        self.accept_write(raw)
    }

    /// Checks a write index the peer published, as [`Self::refresh_write`] does.
    fn accept_write(&mut self, raw: u32) -> Result<u32, Corruption> {
        let write = self.geo.validate(raw).map_err(|c| self.fail(c))?;
        let before = self.geo.distance(self.committed_read, self.cached_write);
        let now = self.geo.distance(self.committed_read, write);
        if now < before {
            return Err(self.fail(Corruption::IndexImpossible { index: raw }));
        }
        self.cached_write = write;
        Ok(write)
    }

    /// Bytes published and not yet consumed.
    fn unread(&self) -> u32 {
        self.geo.distance(self.next_read, self.cached_write)
    }

    /// The next packet, without consuming it. Peeking again returns the same packet.
    pub fn peek(&mut self) -> Result<IncomingPacket, ReadError> {
        self.check()?;
        if let Some((packet, _)) = self.peeked {
            return Ok(packet);
        }
        let (packet, ring_len) = self.parse_next()?;
        self.peeked = Some((packet, ring_len));
        Ok(packet)
    }

    /// Parses the packet at `next_read` (not cached: `read` hands it straight out,
    /// which keeps the packet in registers instead of a round trip through `peeked`).
    #[inline]
    fn parse_next(&mut self) -> Result<(IncomingPacket, u32), ReadError> {
        self.check()?;
        if self.unread() == 0 {
            // Acquire pairs with the writer's publishing store: packet bytes read
            // below are at least as new as the index.
            self.refresh_write(Ordering::Acquire)?;
            if self.unread() == 0 {
                self.touch_next();
                return Err(ReadError::Empty);
            }
        }
        // A writer publishes whole packets, so a packet longer than what is published
        // is a lie, not a packet still being written.
        packet::parse(&self.geo, &self.mem, self.next_read, self.unread())
            .map_err(|c| self.fail(c).into())
    }

    /// Consumes the packet `peek` returned (peeking first if needed). The space is
    /// handed back to the writer only by `commit`.
    pub fn consume(&mut self) -> Result<(), ReadError> {
        self.peek()?;
        if let Some((_, ring_len)) = self.peeked.take() {
            self.next_read = self.geo.add(self.next_read, ring_len);
        }
        Ok(())
    }

    /// `peek` then `consume`, parsing the packet once.
    #[inline]
    pub fn read(&mut self) -> Result<IncomingPacket, ReadError> {
        self.check()?;
        let (packet, ring_len) = match self.peeked.take() {
            Some(peeked) => peeked,
            None => self.parse_next()?,
        };
        self.next_read = self.geo.add(self.next_read, ring_len);
        Ok(packet)
    }

    /// Forgets consumption since the last commit: those packets will be read again.
    pub fn revert(&mut self) {
        self.next_read = self.committed_read;
        self.peeked = None;
    }

    /// Publishes `read_index` for everything consumed. Returns whether the writer must
    /// be signalled (Linux `hv_pkt_iter_close`): it asked for `pending_send_size`
    /// bytes, the ring advertises the feature, and this commit took free space from
    /// not more than that to more than that. Exactly full counts as not enough, since
    /// a writer can never use the last 8 bytes.
    #[must_use = "signal the writer when this returns true"]
    #[inline]
    pub fn commit(&mut self) -> Result<bool, Corruption> {
        self.check()?;
        if self.next_read == self.committed_read {
            return Ok(false);
        }
        let before = self.committed_read;
        // The index is published before pending_send_size is sampled (signal.rs).
        let sampled = signal::publish_read(&self.mem.control(), self.next_read);
        self.committed_read = self.next_read;
        let Some((pending, raw)) = sampled else {
            return Ok(false);
        };
        let write = self.accept_write(raw)?;
        let free_now = self.geo.size() - self.geo.distance(self.committed_read, write);
        let freed = self.geo.distance(before, self.committed_read);
        Ok(signal::reader_must_signal(free_now, freed, pending))
    }

    /// Tells the writer not to signal: we are polling.
    pub fn mask_interrupts(&self) {
        signal::mask(&self.mem.control());
    }

    /// Asks for a signal on the next empty-to-non-empty transition, then looks again.
    /// Returns `true` if data arrived meanwhile (the writer saw the mask set and will
    /// not signal), so the caller must keep reading instead of sleeping.
    #[must_use = "keep reading when this returns true, or a wake-up is lost"]
    pub fn unmask_interrupts(&mut self) -> Result<bool, Corruption> {
        self.check()?;
        let raw = signal::unmask(&self.mem.control());
        self.accept_write(raw)?;
        Ok(self.unread() != 0)
    }

    /// Whether nothing is published beyond what was consumed (refreshes the index).
    pub fn is_empty(&mut self) -> Result<bool, Corruption> {
        self.check()?;
        self.refresh_write(Ordering::Acquire)?;
        let empty = self.unread() == 0;
        if empty {
            self.touch_next();
        }
        Ok(empty)
    }

    /// Loads (and drops) the word where the next packet will start, after the
    /// write index said it is not there yet. A reader that polls thus fetches the
    /// packet's first line in the same pass as the index that publishes it,
    /// instead of one cross-CPU fetch after the other; the store order of the
    /// writer (packet, then index) makes the line loaded after a new index hold
    /// the packet. Nothing loaded here is used, so nothing is trusted early; a
    /// failing load is left for the parse to report.
    #[inline]
    fn touch_next(&self) {
        core::hint::black_box(self.geo.read_word(&self.mem, self.next_read).ok());
    }

    /// Copies bytes of `range` starting at `offset` into `buf`; returns how many were
    /// copied (fewer than `buf.len()` at the range's end, 0 past it).
    #[inline]
    pub fn copy_from(
        &self,
        range: &RingRange,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<usize, Corruption> {
        self.check()?;
        self.geo
            .read_range(&self.mem, range, offset, buf)
            .map_err(|c| self.fail(c))
    }

    /// Copies page numbers `first..` of `range` into `out`; returns how many.
    pub fn read_pfns(
        &self,
        range: &GpaRange,
        first: usize,
        out: &mut [u64],
    ) -> Result<usize, Corruption> {
        let n = out.len().min(range.pfn_count().saturating_sub(first));
        for (i, slot) in out.iter_mut().take(n).enumerate() {
            let mut bytes = [0u8; 8];
            self.copy_from(&range.pfns, (first + i) * 8, &mut bytes)?;
            *slot = u64::from_le_bytes(bytes);
        }
        Ok(n)
    }

    /// The ranges of a GPA-direct packet. Each is re-checked as it is read, and a
    /// range that changed into an invalid one breaks the ring.
    pub fn gpa_ranges<'r>(
        &'r self,
        gpa: &GpaDirect,
    ) -> impl Iterator<Item = Result<GpaRange, Corruption>> + 'r {
        let mut walk = GpaRangeWalk::new(*gpa);
        self.ranges(move |geo, mem| walk.next_range(geo, mem))
    }

    /// The ranges of a transfer-page packet (their count was checked at parse).
    pub fn transfer_ranges<'r>(
        &'r self,
        tp: &TransferPages,
    ) -> impl Iterator<Item = Result<TransferPageRange, Corruption>> + 'r {
        const SIZE: usize = size_of::<TransferPageRange>();
        let ranges = tp.ranges;
        let mut offsets = (0..ranges.len()).step_by(SIZE);
        self.ranges(move |geo, mem| {
            let offset = offsets.next()?;
            let mut bytes = [0u8; SIZE];
            Some(
                geo.read_range(mem, &ranges, offset, &mut bytes)
                    .map(|_| TransferPageRange {
                        byte_count: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                        byte_offset: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                    }),
            )
        })
    }

    /// What `step` reads from the ring, one item at a time, until it ends or fails;
    /// a failure breaks the ring (sticky) and is the last item.
    fn ranges<'r, T: 'r>(
        &'r self,
        mut step: impl FnMut(&Geometry, &M) -> Option<Result<T, Corruption>> + 'r,
    ) -> impl Iterator<Item = Result<T, Corruption>> + 'r {
        let mut done = false;
        core::iter::from_fn(move || {
            if done {
                return None;
            }
            let result = match self.check() {
                Err(c) => Err(c),
                Ok(()) => step(&self.geo, &self.mem)?.map_err(|c| self.fail(c)),
            };
            done = result.is_err();
            Some(result)
        })
    }
}
