//! The sending endpoint. It owns `write_index` and `pending_send_size`; the peer owns
//! `read_index` and `interrupt_mask`. Our write index is kept privately and only
//! stored.

use core::sync::atomic::Ordering;

use zerocopy::IntoBytes;

use crate::error::{AttachError, Corruption, InvalidPacket, WriteError};
use crate::geometry::{Attached, End, Geometry};
use crate::mem::RingMem;
use crate::packet::{OutgoingKind, OutgoingPacket};
use crate::protocol::{
    pfn_count, GpaDirectHeader, GpaRangeHeader, PacketDescriptor, PacketType, TransferPageHeader,
    TransferPageRange, DESCRIPTOR_SIZE, FLAG_COMPLETION_REQUESTED, TRAILER_SIZE,
};
use crate::signal;

const LINE: u32 = 64;

/// Largest header or packet body the descriptor's 16-bit `*8` fields can describe.
const MAX_LEN8_BYTES: usize = u16::MAX as usize * 8;

#[derive(Debug)]
pub struct OutgoingRing<M: RingMem> {
    mem: M,
    geo: Geometry,
    /// What `write_index` says (we are its only legitimate writer).
    committed_write: u32,
    /// Past every finished packet, committed or not.
    next_write: u32,
    /// The peer's last validated read index.
    cached_read: u32,
    broken: Option<Corruption>,
}

impl<M: RingMem> OutgoingRing<M> {
    /// Attaches to a ring whose indices are whatever the creator and the peer left.
    /// Does not touch the control page.
    pub fn new(mem: M) -> Result<Self, AttachError> {
        let Attached { geo, own, peer } = Geometry::attach(&mem, End::Writer)?;
        Ok(Self {
            mem,
            geo,
            committed_write: own,
            next_write: own,
            cached_read: peer,
            broken: None,
        })
    }

    pub fn mem(&self) -> &M {
        &self.mem
    }

    pub fn data_len(&self) -> u32 {
        self.geo.size()
    }

    pub fn corruption(&self) -> Option<Corruption> {
        self.broken
    }

    fn check(&self) -> Result<(), Corruption> {
        match self.broken {
            Some(c) => Err(c),
            None => Ok(()),
        }
    }

    fn fail(&mut self, c: Corruption) -> Corruption {
        *self.broken.get_or_insert(c)
    }

    /// Largest ring size of one packet: the ring can never be filled completely, or
    /// full would look like empty.
    pub fn max_packet_ring_size(&self) -> usize {
        self.geo.size() as usize - 8
    }

    /// Loads and checks the peer's read index. It can only move forward from the last
    /// value we saw and never past what we published.
    fn refresh_read(&mut self, order: Ordering) -> Result<u32, Corruption> {
        let raw = self.mem.control().read_index().load(order);
        self.accept_read(raw)
    }

    /// Checks a read index the peer published, as [`Self::refresh_read`] does.
    fn accept_read(&mut self, raw: u32) -> Result<u32, Corruption> {
        let read = self.geo.validate(raw).map_err(|c| self.fail(c))?;
        let moved = self.geo.distance(self.cached_read, read);
        let allowed = self.geo.distance(self.cached_read, self.committed_write);
        if moved > allowed {
            return Err(self.fail(Corruption::IndexImpossible { index: raw }));
        }
        self.cached_read = read;
        Ok(read)
    }

    /// Free bytes as Linux counts them (`hv_get_bytes_to_write`): a packet of `n`
    /// ring bytes fits only if `n` is strictly less.
    fn free(&self) -> u32 {
        self.geo.size() - self.geo.distance(self.cached_read, self.next_write)
    }

    /// The largest packet (in ring bytes) that fits by the read index last seen.
    fn room(&self) -> usize {
        (self.free() as usize).saturating_sub(8)
    }

    /// The largest packet (in ring bytes) that fits right now.
    pub fn free_bytes(&mut self) -> Result<usize, Corruption> {
        self.check()?;
        self.refresh_read(Ordering::Acquire)?;
        Ok(self.room())
    }

    /// Whether a packet of `ring_len` ring bytes fits now ([`Self::free_bytes`] at
    /// least `ring_len`). The read index last seen can only understate the space,
    /// so the reader's is loaded only when that is not enough: a VSP checking room
    /// for every reply would otherwise pull the line the guest last wrote into its
    /// cache once per packet, and again to publish the reply.
    pub fn fits(&mut self, ring_len: usize) -> Result<bool, Corruption> {
        self.check()?;
        if ring_len <= self.room() {
            return Ok(true);
        }
        self.refresh_read(Ordering::Acquire)?;
        Ok(ring_len <= self.room())
    }

    /// Hints that a packet of `ring_len` ring bytes is written next: the lines it
    /// will occupy are fetched for writing now. The reader last read them (a lap
    /// ago, or the previous packet's tail), so each write would otherwise wait for
    /// its line to leave the reader's CPU; a VSP calls this before serving a
    /// request, and the lines move while it reads the disk.
    pub fn prefetch_next(&self, ring_len: u32) {
        let into_line = self.next_write % LINE;
        let first = self.next_write - into_line;
        let lines = into_line
            .saturating_add(ring_len)
            .div_ceil(LINE)
            .min(self.geo.size() / LINE);
        for k in 0..lines {
            self.mem
                .prefetch_for_write(self.geo.add(first, k * LINE) as usize);
        }
    }

    /// Starts a packet with `payload_len` payload bytes: writes its descriptor and
    /// headers and returns a writer for the payload. Nothing is visible to the peer
    /// until the packet is finished and committed; dropping the writer abandons it.
    #[inline]
    pub fn reserve(
        &mut self,
        packet: &OutgoingPacket<'_>,
        payload_len: usize,
    ) -> Result<PacketWriter<'_, M>, WriteError> {
        self.check()?;
        let header_len = header_len(&packet.kind)?;
        let body = payload_len
            .checked_next_multiple_of(8)
            .and_then(|p| p.checked_add(header_len))
            .unwrap_or(usize::MAX);
        let ring_len = body.saturating_add(TRAILER_SIZE);
        let max = self
            .max_packet_ring_size()
            .min(MAX_LEN8_BYTES + TRAILER_SIZE);
        if header_len > MAX_LEN8_BYTES || ring_len > max {
            return Err(WriteError::Invalid(InvalidPacket::TooLarge {
                ring_bytes: ring_len,
                max,
            }));
        }
        // Both fit in u32 now: ring_len <= data size < 2^31.
        let (header_len, body, ring_len) = (header_len as u32, body as u32, ring_len as u32);
        if ring_len >= self.free() {
            self.refresh_read(Ordering::Acquire)?;
            if ring_len >= self.free() {
                return Err(WriteError::Full { needed: ring_len });
            }
        }

        let start = self.next_write;
        let desc = PacketDescriptor {
            packet_type: match packet.kind {
                OutgoingKind::InBand => PacketType::IN_BAND,
                OutgoingKind::Completion => PacketType::COMPLETION,
                OutgoingKind::GpaDirect(_) => PacketType::GPA_DIRECT,
                OutgoingKind::TransferPages { .. } => PacketType::TRANSFER_PAGES,
            },
            offset8: (header_len / 8) as u16,
            len8: (body / 8) as u16,
            flags: if packet.completion_requested {
                FLAG_COMPLETION_REQUESTED
            } else {
                0
            },
            transaction_id: packet.transaction_id,
        };
        let words: [u64; 2] = zerocopy::transmute!(desc);
        let second = self.geo.add(start, 8);
        self.put_word(start, u64::from_le(words[0]))?;
        self.put_word(second, u64::from_le(words[1]))?;
        let mut at = self.geo.add(second, 8);
        match packet.kind {
            OutgoingKind::InBand | OutgoingKind::Completion => {}
            OutgoingKind::GpaDirect(ranges) => {
                let header = GpaDirectHeader {
                    reserved: 0,
                    range_count: ranges.len() as u32,
                };
                self.put_header(&mut at, header.as_bytes())?;
                for range in ranges {
                    let header = GpaRangeHeader {
                        byte_count: range.byte_count,
                        byte_offset: range.byte_offset,
                    };
                    self.put_header(&mut at, header.as_bytes())?;
                    self.put(&mut at, range.pfns.as_bytes())?;
                }
            }
            OutgoingKind::TransferPages {
                transfer_page_set_id,
                ranges,
            } => {
                let header = TransferPageHeader {
                    transfer_page_set_id,
                    sender_owns_set: 0,
                    reserved: 0,
                    range_count: ranges.len() as u32,
                };
                self.put(&mut at, header.as_bytes())?;
                self.put(&mut at, ranges.as_bytes())?;
            }
        }
        Ok(PacketWriter {
            ring: self,
            start,
            header_len,
            payload_len: payload_len as u32,
            body,
        })
    }

    /// Stores one word at an 8-aligned offset (descriptor halves, the trailer).
    #[inline]
    fn put_word(&mut self, at: u32, value: u64) -> Result<(), Corruption> {
        self.geo
            .write_word(&self.mem, at, value)
            .map_err(|c| self.fail(c))
    }

    /// An 8-byte header as one word store (see [`Self::put_word`]); any other
    /// as bytes.
    #[inline]
    fn put_header(&mut self, at: &mut u32, bytes: &[u8]) -> Result<(), Corruption> {
        match <[u8; 8]>::try_from(bytes) {
            Ok(word) if at.is_multiple_of(8) => {
                self.put_word(*at, u64::from_le_bytes(word))?;
                *at = self.geo.add(*at, 8);
                Ok(())
            }
            _ => self.put(at, bytes),
        }
    }

    #[inline]
    fn put(&mut self, at: &mut u32, bytes: &[u8]) -> Result<(), Corruption> {
        self.geo
            .write(&self.mem, *at, bytes)
            .map_err(|c| self.fail(c))?;
        // Headers are checked to fit the ring above, so this stays in range.
        *at = self.geo.add(*at, bytes.len() as u32);
        Ok(())
    }

    /// Writes a whole packet whose payload is `parts` concatenated.
    #[inline]
    pub fn write_packet(
        &mut self,
        packet: &OutgoingPacket<'_>,
        parts: &[&[u8]],
    ) -> Result<(), WriteError> {
        let len = parts
            .iter()
            .map(|p| p.len())
            .fold(0usize, usize::saturating_add);
        let mut writer = self.reserve(packet, len)?;
        let mut offset = 0;
        for part in parts {
            writer.write(offset, part)?;
            offset += part.len();
        }
        writer.finish()
    }

    /// Forgets packets finished since the last commit.
    pub fn revert(&mut self) {
        self.next_write = self.committed_write;
    }

    /// Publishes `write_index` for every finished packet. Returns whether the reader
    /// must be signalled (Linux `hv_signal_on_write`): only if it has not masked
    /// interrupts and had read everything before this commit, i.e. the ring went
    /// from empty to non-empty.
    #[must_use = "signal the reader when this returns true"]
    #[inline]
    pub fn commit(&mut self) -> Result<bool, Corruption> {
        self.check()?;
        if self.next_write == self.committed_write {
            return Ok(false);
        }
        let before = self.committed_write;
        // Packet bytes are published by this store (release); the mask and the
        // read index are sampled after it (signal.rs says why).
        let sampled = signal::publish_write(&self.mem.control(), self.next_write);
        self.committed_write = self.next_write;
        let Some(raw) = sampled else {
            return Ok(false);
        };
        let read = self.accept_read(raw)?;
        Ok(signal::writer_must_signal(before, read))
    }

    /// Asks the reader to signal once more than `needed` bytes are free (`needed` is
    /// what `WriteError::Full` reported). Returns `true` if that much is already
    /// free — the reader may have freed it before seeing the request, so the caller
    /// must retry now instead of waiting.
    #[must_use = "retry the write now when this returns true, or a wake-up is lost"]
    pub fn set_pending_send_size(&mut self, needed: u32) -> Result<bool, WriteError> {
        self.check()?;
        let max = self.max_packet_ring_size();
        if needed as usize > max {
            return Err(WriteError::Invalid(InvalidPacket::TooLarge {
                ring_bytes: needed as usize,
                max,
            }));
        }
        let raw = signal::request_space(&self.mem.control(), needed);
        self.accept_read(raw)?;
        Ok(needed < self.free())
    }

    /// Withdraws a space request once the write went through.
    pub fn clear_pending_send_size(&self) {
        signal::withdraw_space_request(&self.mem.control());
    }
}

/// Ring bytes of the descriptor plus the type-specific header.
#[inline]
fn header_len(kind: &OutgoingKind<'_>) -> Result<usize, WriteError> {
    let too_many = WriteError::Invalid(InvalidPacket::TooManyRanges);
    match kind {
        OutgoingKind::InBand | OutgoingKind::Completion => Ok(DESCRIPTOR_SIZE),
        OutgoingKind::GpaDirect(ranges) => {
            u32::try_from(ranges.len()).map_err(|_| too_many)?;
            let mut len = DESCRIPTOR_SIZE + size_of::<GpaDirectHeader>();
            for range in *ranges {
                let expected = pfn_count(range.byte_offset, range.byte_count);
                if range.byte_count == 0
                    || range.byte_offset >= crate::protocol::PAGE_SIZE as u32
                    || expected != u32::try_from(range.pfns.len()).ok()
                {
                    return Err(WriteError::Invalid(InvalidPacket::GpaRangePages {
                        byte_count: range.byte_count,
                        byte_offset: range.byte_offset,
                        pages: range.pfns.len(),
                    }));
                }
                len = len
                    .saturating_add(size_of::<GpaRangeHeader>())
                    .saturating_add(range.pfns.len().saturating_mul(8));
            }
            Ok(len)
        }
        OutgoingKind::TransferPages { ranges, .. } => {
            u32::try_from(ranges.len()).map_err(|_| too_many)?;
            Ok((DESCRIPTOR_SIZE + size_of::<TransferPageHeader>())
                .saturating_add(ranges.len().saturating_mul(size_of::<TransferPageRange>())))
        }
    }
}

/// A packet being written: its descriptor and headers are in place; fill the
/// payload, then `finish`.
#[derive(Debug)]
pub struct PacketWriter<'r, M: RingMem> {
    ring: &'r mut OutgoingRing<M>,
    start: u32,
    header_len: u32,
    payload_len: u32,
    body: u32,
}

impl<M: RingMem> PacketWriter<'_, M> {
    pub fn payload_len(&self) -> usize {
        self.payload_len as usize
    }

    /// Writes `data` at `offset` into the payload.
    #[inline]
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), WriteError> {
        let out_of_range = WriteError::Invalid(InvalidPacket::PayloadOutOfRange {
            offset,
            len: data.len(),
            payload_len: self.payload_len as usize,
        });
        match offset.checked_add(data.len()) {
            Some(end) if end <= self.payload_len as usize => {}
            _ => return Err(out_of_range),
        }
        // offset < payload_len < 2^31.
        let at = self
            .ring
            .geo
            .add(self.start, self.header_len + offset as u32);
        let mut at = at;
        self.ring.put(&mut at, data)?;
        Ok(())
    }

    /// Zeroes the padding, writes the trailer and queues the packet for `commit`.
    #[inline]
    pub fn finish(self) -> Result<(), WriteError> {
        let ring = self.ring;
        let padding = self.body - self.header_len - self.payload_len;
        let mut at = ring.geo.add(self.start, self.header_len + self.payload_len);
        if padding != 0 {
            ring.put(&mut at, &[0u8; 8][..padding as usize])?;
        }
        // `PacketTrailer` as one word: the start offset in the upper half.
        ring.put_word(at, u64::from(self.start) << 32)?;
        ring.next_write = ring.geo.add(at, TRAILER_SIZE as u32);
        Ok(())
    }
}
