//! Page-state-change descriptors (GHCB spec 56421 §4.1.6, NAE 0x8000_0010).
//!
//! The descriptor sits in the GHCB shared buffer: an 8-byte header (`cur_entry`
//! u16, `end_entry` u16 inclusive, 4 reserved bytes) and up to 253 entries of one
//! u64: `cur_page` 11:0, GFN 51:12, operation 55:52, page size 56 (1 = 2 MiB),
//! reserved 63:57. The host advances `cur_entry` (and a 2 MiB entry's `cur_page`)
//! as it works, so after the exit both the host (parsing the paravisor's request)
//! and the paravisor (checking the host's progress) parse hostile bytes here.

use crate::ghcb_msr::PscOp;
use crate::rmp::PageSize;

/// Header size in bytes.
pub const HEADER: usize = 8;
/// Entries that fit in the 2032-byte shared buffer after the header.
pub const MAX_ENTRIES: usize = (0xff0 - 0x800 - HEADER) / 8;

/// One decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PscEntry {
    pub gfn: u64,
    pub op: PscOp,
    pub size: PageSize,
    /// 4 KiB pages of a 2 MiB entry already done (0 for 4 KiB entries).
    pub cur_page: u16,
}

impl PscEntry {
    pub fn encode(self) -> u64 {
        let large = u64::from(self.size == PageSize::Size2M);
        u64::from(self.cur_page) | self.gfn << 12 | (self.op as u64) << 52 | large << 56
    }

    pub fn decode(v: u64) -> Result<Self, PscError> {
        if v >> 57 != 0 {
            return Err(PscError::BadEntry(v));
        }
        let op = PscOp::from_bits((v >> 52) & 0xf).ok_or(PscError::BadEntry(v))?;
        let gfn = (v >> 12) & ((1 << 40) - 1);
        let cur_page = (v & 0xfff) as u16;
        let size = if v & (1 << 56) != 0 {
            PageSize::Size2M
        } else {
            PageSize::Size4K
        };
        let ok = match size {
            PageSize::Size4K => cur_page == 0,
            PageSize::Size2M => gfn.is_multiple_of(512) && cur_page <= 512,
        };
        if !ok {
            return Err(PscError::BadEntry(v));
        }
        Ok(Self {
            gfn,
            op,
            size,
            cur_page,
        })
    }
}

/// Why a descriptor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PscError {
    /// Buffer shorter than the header or the entries it claims.
    Truncated,
    /// `end_entry` beyond [`MAX_ENTRIES`], reserved header bytes set, or
    /// `cur_entry` past `end_entry + 1`.
    BadHeader {
        cur: u16,
        end: u16,
    },
    BadEntry(u64),
}

/// A parsed descriptor header over a borrowed buffer.
#[derive(Clone, Copy, Debug)]
pub struct Psc<'a> {
    pub cur_entry: u16,
    pub end_entry: u16,
    buf: &'a [u8],
}

fn u64_at(buf: &[u8], off: usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

impl<'a> Psc<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, PscError> {
        let header = u64_at(buf, 0).ok_or(PscError::Truncated)?;
        let cur = header as u16;
        let end = (header >> 16) as u16;
        if header >> 32 != 0 || usize::from(end) >= MAX_ENTRIES || cur > end.saturating_add(1) {
            return Err(PscError::BadHeader { cur, end });
        }
        if buf.len() < HEADER + (usize::from(end) + 1) * 8 {
            return Err(PscError::Truncated);
        }
        Ok(Self {
            cur_entry: cur,
            end_entry: end,
            buf,
        })
    }

    /// Entry `i` (0..=end_entry).
    pub fn entry(&self, i: u16) -> Result<PscEntry, PscError> {
        if i > self.end_entry {
            return Err(PscError::BadHeader {
                cur: i,
                end: self.end_entry,
            });
        }
        let raw = u64_at(self.buf, HEADER + usize::from(i) * 8).ok_or(PscError::Truncated)?;
        PscEntry::decode(raw)
    }

    /// Whether the host reports every entry done.
    pub fn complete(&self) -> bool {
        self.cur_entry > self.end_entry
    }
}

/// Writes a descriptor for `entries` into `buf`; `None` if there are none, too
/// many, or `buf` is too small.
pub fn write(buf: &mut [u8], entries: &[PscEntry]) -> Option<usize> {
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return None;
    }
    let len = HEADER + entries.len() * 8;
    let out = buf.get_mut(..len)?;
    let end = u64::try_from(entries.len() - 1).ok()?;
    out[..HEADER].copy_from_slice(&(end << 16).to_le_bytes());
    for (chunk, e) in out[HEADER..].chunks_exact_mut(8).zip(entries) {
        chunk.copy_from_slice(&e.encode().to_le_bytes());
    }
    Some(len)
}

/// Sets the header's `cur_entry` (the host's progress report).
pub fn set_cur_entry(buf: &mut [u8], cur: u16) {
    if let Some(b) = buf.get_mut(..2) {
        b.copy_from_slice(&cur.to_le_bytes());
    }
}
