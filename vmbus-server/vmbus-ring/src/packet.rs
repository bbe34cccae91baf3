//! Typed packets: what a reader found (parsed from one copy of the descriptor and
//! headers, every length checked) and what a writer is asked to send.

use zerocopy::FromBytes;

use crate::error::Corruption;
use crate::geometry::{Geometry, RingRange};
use crate::mem::RingMem;
use crate::protocol::{
    pfn_count, GpaDirectHeader, GpaRangeHeader, PacketDescriptor, PacketType, TransferPageHeader,
    TransferPageRange, DESCRIPTOR_SIZE, FLAG_COMPLETION_REQUESTED, PAGE_SIZE, TRAILER_SIZE,
};

/// A packet found in the ring. Plain data: it stays valid to look at after the ring
/// moves on, but its ranges name ring bytes the writer may reuse once the read is
/// committed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IncomingPacket {
    pub transaction_id: u64,
    pub completion_requested: bool,
    pub kind: IncomingKind,
    /// The bytes after the header, padding included (the format has no finer length;
    /// protocols carry their own).
    pub payload: RingRange,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IncomingKind {
    InBand,
    Completion,
    GpaDirect(GpaDirect),
    TransferPages(TransferPages),
}

/// The ranges of a GPA-direct packet; walk them with `IncomingRing::gpa_ranges`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GpaDirect {
    pub range_count: u32,
    pub(crate) ranges: RingRange,
}

/// One range of guest memory named by a GPA-direct packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GpaRange {
    pub byte_count: u32,
    /// Offset into the first page (below `PAGE_SIZE`).
    pub byte_offset: u32,
    /// The page numbers, `pfn_count()` u64s; read with `IncomingRing::read_pfns`.
    pub pfns: RingRange,
}

impl GpaRange {
    pub fn pfn_count(&self) -> usize {
        self.pfns.len() / 8
    }
}

/// The ranges of a transfer-page packet; walk them with
/// `IncomingRing::transfer_ranges`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TransferPages {
    pub transfer_page_set_id: u16,
    pub sender_owns_set: u8,
    pub range_count: u32,
    pub(crate) ranges: RingRange,
}

/// A packet to send.
#[derive(Copy, Clone, Debug)]
pub struct OutgoingPacket<'a> {
    pub transaction_id: u64,
    pub completion_requested: bool,
    pub kind: OutgoingKind<'a>,
}

#[derive(Copy, Clone, Debug)]
pub enum OutgoingKind<'a> {
    InBand,
    Completion,
    GpaDirect(&'a [GpaRangeRef<'a>]),
    TransferPages {
        transfer_page_set_id: u16,
        ranges: &'a [TransferPageRange],
    },
}

/// A GPA range to send: `pfns` must hold exactly the pages the byte range touches.
#[derive(Copy, Clone, Debug)]
pub struct GpaRangeRef<'a> {
    pub byte_count: u32,
    pub byte_offset: u32,
    pub pfns: &'a [u64],
}

const GPA_HEADER_END: u32 = (DESCRIPTOR_SIZE + size_of::<GpaDirectHeader>()) as u32;
const TRANSFER_HEADER_END: u32 = (DESCRIPTOR_SIZE + size_of::<TransferPageHeader>()) as u32;

/// Reads a plain-data value at ring offset `at`, wrapping.
pub(crate) fn read_value<T: FromBytes + zerocopy::IntoBytes, M: RingMem>(
    geo: &Geometry,
    mem: &M,
    at: u32,
) -> Result<T, Corruption> {
    // The 8-byte headers (GPA-direct, GPA range) are one word load where the
    // memory gives one, not a byte copy with its bounds and page lookups.
    if size_of::<T>() == 8 && at.is_multiple_of(8) {
        let bytes = geo.read_word(mem, at)?.to_le_bytes();
        if let Ok(value) = T::read_from_bytes(&bytes) {
            return Ok(value);
        }
    }
    let mut value = T::new_zeroed();
    geo.read(mem, at, value.as_mut_bytes())?;
    Ok(value)
}

/// The descriptor at `start` as two word loads (its halves may sit either side of
/// the ring's end).
#[inline]
fn read_descriptor<M: RingMem>(
    geo: &Geometry,
    mem: &M,
    start: u32,
) -> Result<PacketDescriptor, Corruption> {
    let words = [
        geo.read_word(mem, start)?.to_le(),
        geo.read_word(mem, geo.add(start, 8))?.to_le(),
    ];
    Ok(zerocopy::transmute!(words))
}

/// Parses the packet starting at `start` with `available` published bytes after it.
/// Returns the packet and the ring bytes it occupies (trailer included).
///
/// The descriptor and headers are copied once and only the copies are interpreted,
/// so a peer rewriting them meanwhile cannot make the checks and the use disagree.
#[inline]
pub(crate) fn parse<M: RingMem>(
    geo: &Geometry,
    mem: &M,
    start: u32,
    available: u32,
) -> Result<(IncomingPacket, u32), Corruption> {
    if available < (DESCRIPTOR_SIZE + TRAILER_SIZE) as u32 {
        return Err(Corruption::TruncatedPacket { available });
    }
    let desc = read_descriptor(geo, mem, start)?;
    let (offset8, len8) = (desc.offset8, desc.len8);
    if usize::from(offset8) * 8 < DESCRIPTOR_SIZE || len8 < offset8 {
        return Err(Corruption::BadDescriptorLengths { offset8, len8 });
    }
    let header_len = u32::from(offset8) * 8;
    let packet_len = u32::from(len8) * 8;
    let ring_len = packet_len + TRAILER_SIZE as u32;
    if ring_len > available {
        return Err(Corruption::PacketPastWriteIndex {
            packet_len: ring_len,
            available,
        });
    }
    if desc.flags & !FLAG_COMPLETION_REQUESTED != 0 {
        return Err(Corruption::UnknownFlags(desc.flags));
    }
    // One word: the start offset is its upper half (`PacketTrailer`).
    let trailer = geo.read_word(mem, geo.add(start, packet_len))?;
    let found = (trailer >> 32) as u32;
    if found != start {
        return Err(Corruption::BadTrailer {
            expected: start,
            found,
        });
    }

    let framed = Framed {
        geo,
        mem,
        start,
        desc,
        header_len,
    };
    let kind = match desc.packet_type {
        PacketType::IN_BAND => IncomingKind::InBand,
        PacketType::COMPLETION => IncomingKind::Completion,
        PacketType::GPA_DIRECT => IncomingKind::GpaDirect(framed.gpa_direct()?),
        PacketType::TRANSFER_PAGES => IncomingKind::TransferPages(framed.transfer_pages()?),
        other => return Err(Corruption::UnknownPacketType(other)),
    };
    let packet = IncomingPacket {
        transaction_id: desc.transaction_id,
        completion_requested: desc.flags & FLAG_COMPLETION_REQUESTED != 0,
        kind,
        payload: geo.range(start, header_len, packet_len - header_len),
    };
    Ok((packet, ring_len))
}

/// A packet whose descriptor, lengths and trailer checked out, `header_len` bytes
/// of header from `start`; what is left to read is its type-specific header.
struct Framed<'a, M> {
    geo: &'a Geometry,
    mem: &'a M,
    start: u32,
    desc: PacketDescriptor,
    header_len: u32,
}

impl<M: RingMem> Framed<'_, M> {
    /// The type-specific header `T` that follows the descriptor, if the header
    /// length has room for it.
    fn type_header<T: FromBytes + zerocopy::IntoBytes>(&self) -> Result<T, Corruption> {
        if (self.header_len as usize) < DESCRIPTOR_SIZE + size_of::<T>() {
            return Err(Corruption::HeaderTooShort {
                packet_type: self.desc.packet_type,
                offset8: self.desc.offset8,
            });
        }
        let at = self.geo.add(self.start, DESCRIPTOR_SIZE as u32);
        read_value(self.geo, self.mem, at)
    }

    fn gpa_direct(&self) -> Result<GpaDirect, Corruption> {
        let header: GpaDirectHeader = self.type_header()?;
        if header.range_count == 0 {
            return Err(Corruption::NoGpaRanges);
        }
        let gpa = GpaDirect {
            range_count: header.range_count,
            ranges: self
                .geo
                .range(self.start, GPA_HEADER_END, self.header_len - GPA_HEADER_END),
        };
        // Walk once now so a bad packet is refused at peek, before anyone acts on
        // it. Each range takes at least 16 bytes of a header area below 512 KiB, so
        // a huge range_count ends the walk early instead of looping.
        let mut ranges = GpaRangeWalk::new(gpa);
        while let Some(range) = ranges.next_range(self.geo, self.mem) {
            range?;
        }
        Ok(gpa)
    }

    fn transfer_pages(&self) -> Result<TransferPages, Corruption> {
        let header: TransferPageHeader = self.type_header()?;
        let area = self.header_len - TRANSFER_HEADER_END;
        let needed = u64::from(header.range_count) * size_of::<TransferPageRange>() as u64;
        if needed > u64::from(area) {
            return Err(Corruption::RangesPastHeader {
                range_count: header.range_count,
            });
        }
        Ok(TransferPages {
            transfer_page_set_id: header.transfer_page_set_id,
            sender_owns_set: header.sender_owns_set,
            range_count: header.range_count,
            // needed <= area < 2^19, so it fits.
            ranges: self
                .geo
                .range(self.start, TRANSFER_HEADER_END, needed as u32),
        })
    }
}

/// Cursor over the variable-length ranges of a GPA-direct packet. Every step checks
/// again against the header area, because the bytes are re-read from shared memory.
#[derive(Copy, Clone, Debug)]
pub(crate) struct GpaRangeWalk {
    remaining: u32,
    area: RingRange,
    used: u32,
}

impl GpaRangeWalk {
    pub fn new(gpa: GpaDirect) -> Self {
        Self {
            remaining: gpa.range_count,
            area: gpa.ranges,
            used: 0,
        }
    }

    pub fn next_range<M: RingMem>(
        &mut self,
        geo: &Geometry,
        mem: &M,
    ) -> Option<Result<GpaRange, Corruption>> {
        if self.remaining == 0 {
            return None;
        }
        let result = self.step(geo, mem);
        match result {
            Ok(_) => self.remaining -= 1,
            Err(_) => self.remaining = 0,
        }
        Some(result)
    }

    fn step<M: RingMem>(&mut self, geo: &Geometry, mem: &M) -> Result<GpaRange, Corruption> {
        let past = Corruption::RangesPastHeader {
            range_count: self.remaining,
        };
        let left = self.area.len - self.used;
        if left < size_of::<GpaRangeHeader>() as u32 {
            return Err(past);
        }
        let at = geo.add(self.area.start, self.used);
        let header: GpaRangeHeader = read_value(geo, mem, at)?;
        let bad = Corruption::BadGpaRange {
            byte_count: header.byte_count,
            byte_offset: header.byte_offset,
        };
        if header.byte_count == 0 || header.byte_offset >= PAGE_SIZE as u32 {
            return Err(bad);
        }
        let pfns = pfn_count(header.byte_offset, header.byte_count).ok_or(bad)?;
        let pfn_bytes = u64::from(pfns) * 8;
        if pfn_bytes > u64::from(left - size_of::<GpaRangeHeader>() as u32) {
            return Err(past);
        }
        // pfn_bytes fits in u32: it is at most `left`.
        let pfn_bytes = pfn_bytes as u32;
        let range = GpaRange {
            byte_count: header.byte_count,
            byte_offset: header.byte_offset,
            pfns: geo.range(at, size_of::<GpaRangeHeader>() as u32, pfn_bytes),
        };
        self.used += size_of::<GpaRangeHeader>() as u32 + pfn_bytes;
        Ok(range)
    }
}
