//! VMBus packets as the storage channel sees them: the 16-byte descriptor, and for
//! GPA-direct packets the page ranges that name the guest's data buffer.
//!
//! The bytes were copied out of the ring before parsing ("copy, then validate"),
//! so every offset and count in them is untrusted and checked here.

/// `vmpacket_descriptor.type` values the storage channel deals with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketType(pub u16);

impl PacketType {
    pub const DATA_IN_BAND: Self = Self(6);
    pub const DATA_USING_TRANSFER_PAGES: Self = Self(7);
    pub const DATA_USING_GPA_DIRECT: Self = Self(9);
    pub const COMPLETION: Self = Self(11);
}

pub const DESCRIPTOR_SIZE: usize = 16;
/// `vmpacket_descriptor.flags` bit 0.
pub const FLAG_COMPLETION_REQUESTED: u16 = 1;
/// Hyper-V page size; GPA-direct page numbers count these.
pub const PAGE_SIZE: usize = 4096;
/// Header of a GPA-direct packet after the descriptor: reserved u32, range count u32.
const GPA_DIRECT_HEADER: usize = 8;
/// Each range: byte count u32, byte offset u32, then its page numbers.
const RANGE_HEADER: usize = 8;

/// Why a packet could not be understood at all.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer bytes than a descriptor.
    TooShort,
    /// The descriptor's offset/length fields do not fit the packet.
    BadLayout {
        offset8: u16,
        len8: u16,
        available: usize,
    },
    /// A packet type the storage protocol never uses.
    UnexpectedType(PacketType),
}

/// Why the data-buffer description of a GPA-direct packet is unusable. The packet
/// itself is still answered: the request fails with an error status.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// storvsc sends exactly one range; several are not supported.
    TooManyRanges(u32),
    /// The range headers or page numbers run past the descriptor area.
    Truncated,
}

/// One guest buffer: `byte_count` bytes starting `byte_offset` bytes into the
/// concatenation of the listed pages.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GpaRange<'a> {
    pub byte_count: u32,
    pub byte_offset: u32,
    /// Little-endian u64 page numbers, exactly as many as the range needs.
    pfns: &'a [u8],
}

impl<'a> GpaRange<'a> {
    /// Pages a range of this size and offset spans.
    pub fn pages_needed(byte_offset: u32, byte_count: u32) -> usize {
        (byte_offset as usize + byte_count as usize).div_ceil(PAGE_SIZE)
    }

    pub fn page_count(&self) -> usize {
        self.pfns.len() / 8
    }

    pub fn pfn(&self, index: usize) -> Option<u64> {
        let start = index.checked_mul(8)?;
        let bytes = self.pfns.get(start..start + 8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Some(u64::from_le_bytes(word))
    }

    /// Builds a range over page numbers given as raw little-endian bytes (what a
    /// transport that parsed the packet itself hands over).
    pub fn from_raw(byte_count: u32, byte_offset: u32, pfns: &'a [u8]) -> Result<Self, RangeError> {
        let needed = Self::pages_needed(byte_offset, byte_count);
        match pfns.get(..needed * 8) {
            Some(pfns) => Ok(Self {
                byte_count,
                byte_offset,
                pfns,
            }),
            None => Err(RangeError::Truncated),
        }
    }
}

/// A parsed incoming packet, borrowing the copied bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IncomingPacket<'a> {
    pub packet_type: PacketType,
    pub transaction_id: u64,
    pub completion_requested: bool,
    /// The `vstor_packet` bytes (padded to 8 by the sender).
    pub payload: &'a [u8],
    /// The data buffer: `Ok(None)` for in-band packets and GPA-direct packets
    /// with no range.
    pub buffer: Result<Option<GpaRange<'a>>, RangeError>,
}

/// Reads the transaction id out of a possibly truncated packet, so that even a
/// packet that fails to parse can be answered.
pub fn transaction_id_of(raw: &[u8]) -> Option<(u64, bool)> {
    let desc = raw.get(..DESCRIPTOR_SIZE)?;
    let flags = u16::from_le_bytes([desc[6], desc[7]]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&desc[8..16]);
    Some((
        u64::from_le_bytes(id),
        flags & FLAG_COMPLETION_REQUESTED != 0,
    ))
}

/// Parses a packet copied out of the ring (descriptor included, trailer excluded).
pub fn parse(raw: &[u8]) -> Result<IncomingPacket<'_>, PacketError> {
    let desc = raw.get(..DESCRIPTOR_SIZE).ok_or(PacketError::TooShort)?;
    let packet_type = PacketType(u16::from_le_bytes([desc[0], desc[1]]));
    let offset8 = u16::from_le_bytes([desc[2], desc[3]]);
    let len8 = u16::from_le_bytes([desc[4], desc[5]]);
    let (transaction_id, completion_requested) =
        transaction_id_of(raw).ok_or(PacketError::TooShort)?;
    let data_start = offset8 as usize * 8;
    let end = len8 as usize * 8;
    if data_start < DESCRIPTOR_SIZE || data_start > end || end > raw.len() {
        return Err(PacketError::BadLayout {
            offset8,
            len8,
            available: raw.len(),
        });
    }
    let payload = &raw[data_start..end];
    let buffer = match packet_type {
        PacketType::DATA_IN_BAND => Ok(None),
        PacketType::DATA_USING_GPA_DIRECT => parse_ranges(&raw[DESCRIPTOR_SIZE..data_start]),
        other => return Err(PacketError::UnexpectedType(other)),
    };
    Ok(IncomingPacket {
        packet_type,
        transaction_id,
        completion_requested,
        payload,
        buffer,
    })
}

fn parse_ranges(area: &[u8]) -> Result<Option<GpaRange<'_>>, RangeError> {
    let header = area.get(..GPA_DIRECT_HEADER).ok_or(RangeError::Truncated)?;
    let count = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    match count {
        0 => Ok(None),
        1 => {
            let rest = &area[GPA_DIRECT_HEADER..];
            let h = rest.get(..RANGE_HEADER).ok_or(RangeError::Truncated)?;
            let byte_count = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let byte_offset = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            GpaRange::from_raw(byte_count, byte_offset, &rest[RANGE_HEADER..]).map(Some)
        }
        n => Err(RangeError::TooManyRanges(n)),
    }
}

/// Builds packets the way a VMBus client lays them out; used by tests, fuzz seeds
/// and in-process harnesses that stand in for the guest.
pub mod build {
    use super::*;

    fn descriptor(out: &mut [u8; 16], ty: PacketType, offset: usize, total: usize, id: u64) {
        out[0..2].copy_from_slice(&ty.0.to_le_bytes());
        out[2..4].copy_from_slice(&((offset / 8) as u16).to_le_bytes());
        out[4..6].copy_from_slice(&((total / 8) as u16).to_le_bytes());
        out[6..8].copy_from_slice(&FLAG_COMPLETION_REQUESTED.to_le_bytes());
        out[8..16].copy_from_slice(&id.to_le_bytes());
    }

    /// An in-band packet carrying `payload`, padded to 8 bytes.
    pub fn in_band(id: u64, payload: &[u8]) -> alloc::vec::Vec<u8> {
        let total = DESCRIPTOR_SIZE + payload.len().next_multiple_of(8);
        let mut out = alloc::vec![0u8; total];
        let mut d = [0u8; 16];
        descriptor(&mut d, PacketType::DATA_IN_BAND, DESCRIPTOR_SIZE, total, id);
        out[..16].copy_from_slice(&d);
        out[16..16 + payload.len()].copy_from_slice(payload);
        out
    }

    /// A GPA-direct packet with one range over `pfns`.
    pub fn gpa_direct(
        id: u64,
        byte_count: u32,
        byte_offset: u32,
        pfns: &[u64],
        payload: &[u8],
    ) -> alloc::vec::Vec<u8> {
        let offset = DESCRIPTOR_SIZE + GPA_DIRECT_HEADER + RANGE_HEADER + pfns.len() * 8;
        let total = offset + payload.len().next_multiple_of(8);
        let mut out = alloc::vec![0u8; total];
        let mut d = [0u8; 16];
        descriptor(&mut d, PacketType::DATA_USING_GPA_DIRECT, offset, total, id);
        out[..16].copy_from_slice(&d);
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..28].copy_from_slice(&byte_count.to_le_bytes());
        out[28..32].copy_from_slice(&byte_offset.to_le_bytes());
        for (i, pfn) in pfns.iter().enumerate() {
            out[32 + i * 8..40 + i * 8].copy_from_slice(&pfn.to_le_bytes());
        }
        out[offset..offset + payload.len()].copy_from_slice(payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_band_round_trip() {
        let raw = build::in_band(42, &[1, 2, 3]);
        let p = parse(&raw).unwrap();
        assert_eq!(p.transaction_id, 42);
        assert!(p.completion_requested);
        assert_eq!(&p.payload[..3], &[1, 2, 3]);
        assert_eq!(p.payload.len(), 8);
        assert_eq!(p.buffer, Ok(None));
    }

    #[test]
    fn gpa_direct_round_trip() {
        let raw = build::gpa_direct(7, 5000, 100, &[10, 11], &[9; 64]);
        let p = parse(&raw).unwrap();
        let r = p.buffer.unwrap().unwrap();
        assert_eq!(
            (r.byte_count, r.byte_offset, r.page_count()),
            (5000, 100, 2)
        );
        assert_eq!(r.pfn(1), Some(11));
        assert_eq!(r.pfn(2), None);
        assert_eq!(p.payload, &[9; 64][..]);
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(parse(&[0; 15]), Err(PacketError::TooShort));
        let mut raw = build::in_band(1, &[0; 8]);
        raw[4] = 200; // len8 past the end
        assert!(matches!(parse(&raw), Err(PacketError::BadLayout { .. })));
        let mut raw = build::in_band(1, &[0; 8]);
        raw[2] = 1; // payload would start inside the descriptor
        assert!(matches!(parse(&raw), Err(PacketError::BadLayout { .. })));
        let mut raw = build::in_band(1, &[0; 8]);
        raw[0] = 11;
        assert_eq!(
            parse(&raw),
            Err(PacketError::UnexpectedType(PacketType::COMPLETION))
        );
    }

    #[test]
    fn short_or_multiple_ranges_are_range_errors() {
        // Claims 3 pages but lists 2.
        let mut raw = build::gpa_direct(1, 3 * 4096, 0, &[1, 2], &[0; 64]);
        assert_eq!(parse(&raw).unwrap().buffer, Err(RangeError::Truncated));
        raw[20] = 2;
        assert_eq!(
            parse(&raw).unwrap().buffer,
            Err(RangeError::TooManyRanges(2))
        );
    }
}
