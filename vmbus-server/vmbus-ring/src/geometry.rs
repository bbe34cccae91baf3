//! Index arithmetic on the data area and accesses that wrap past its end. Packets are
//! not double-mapped (Linux's writer splits them at the end), so every access that
//! can cross the end is done here in at most two pieces.

use core::ops::Range;
use core::sync::atomic::Ordering;

use ipc::RegionError;

use crate::error::{AttachError, Corruption};
use crate::mem::RingMem;
use crate::protocol::PAGE_SIZE;

/// Largest data area: keeps `index + length` inside u32 for any in-ring length.
const MAX_DATA_LEN: usize = 1 << 31;

/// A span of the data area, possibly wrapping past its end. Only the ring creates
/// these, so `start < size` and `len < size` hold for the ring that made it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct RingRange {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl RingRange {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first byte in the data area (for logs and tests).
    pub fn start(&self) -> u32 {
        self.start
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    size: u32,
}

/// Which end of a ring attaches, so which index of the control page is its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Owns `read_index`.
    Reader,
    /// Owns `write_index`.
    Writer,
}

/// A ring end as attached: the data area's geometry, the end's own index and the
/// peer's, both as found in the control page and validated.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Attached {
    pub geo: Geometry,
    pub own: u32,
    pub peer: u32,
}

impl Geometry {
    /// Any non-zero whole number of pages is accepted: Linux sizes rings from module
    /// parameters, so power-of-two sizes cannot be assumed.
    pub fn new(data_len: usize) -> Result<Self, AttachError> {
        if data_len == 0 || !data_len.is_multiple_of(PAGE_SIZE) || data_len > MAX_DATA_LEN {
            return Err(AttachError::BadDataSize { len: data_len });
        }
        let size =
            u32::try_from(data_len).map_err(|_| AttachError::BadDataSize { len: data_len })?;
        Ok(Self { size })
    }

    /// Attaches `end` to a ring whose indices are whatever the creator and the peer
    /// left. Our own index is only ever stored by us (Relaxed); the peer's is
    /// loaded with Acquire so what it published before moving it is visible.
    pub fn attach<M: RingMem>(mem: &M, end: End) -> Result<Attached, AttachError> {
        let geo = Self::new(mem.data_len())?;
        let control = mem.control();
        let (own, peer) = match end {
            End::Reader => (control.read_index(), control.write_index()),
            End::Writer => (control.write_index(), control.read_index()),
        };
        let own = geo
            .validate(own.load(Ordering::Relaxed))
            .map_err(AttachError::Corrupt)?;
        let peer = geo
            .validate(peer.load(Ordering::Acquire))
            .map_err(AttachError::Corrupt)?;
        Ok(Attached { geo, own, peer })
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Checks an index read from shared memory.
    pub fn validate(&self, index: u32) -> Result<u32, Corruption> {
        if index >= self.size {
            Err(Corruption::IndexOutOfRange { index })
        } else if !index.is_multiple_of(8) {
            Err(Corruption::IndexMisaligned { index })
        } else {
            Ok(index)
        }
    }

    /// `index + n` around the ring; `index < size` and `n <= size`.
    pub fn add(&self, index: u32, n: u32) -> u32 {
        let sum = index + n;
        if sum >= self.size {
            sum - self.size
        } else {
            sum
        }
    }

    /// Bytes from `from` forward to `to`.
    pub fn distance(&self, from: u32, to: u32) -> u32 {
        if to >= from {
            to - from
        } else {
            self.size - from + to
        }
    }

    /// A range of `len` bytes starting `skip` bytes after `index`.
    pub fn range(&self, index: u32, skip: u32, len: u32) -> RingRange {
        RingRange {
            start: self.add(index, skip),
            len,
        }
    }

    /// Whether `range` could have come from this ring (guards against a range from a
    /// differently sized ring being passed in).
    pub fn owns(&self, range: &RingRange) -> bool {
        range.start < self.size && range.len < self.size
    }

    /// The word at `at`, which the caller got from `validate`/`add` on 8-aligned
    /// values, so it never straddles the end.
    #[inline]
    pub fn read_word<M: RingMem>(&self, mem: &M, at: u32) -> Result<u64, Corruption> {
        mem.read_word(at as usize).map_err(Corruption::Memory)
    }

    #[inline]
    pub fn write_word<M: RingMem>(&self, mem: &M, at: u32, value: u64) -> Result<(), Corruption> {
        mem.write_word(at as usize, value)
            .map_err(Corruption::Memory)
    }

    #[inline]
    pub fn read<M: RingMem>(&self, mem: &M, at: u32, buf: &mut [u8]) -> Result<(), Corruption> {
        self.in_pieces(at, buf.len(), |offset, piece| {
            mem.read_data(offset, &mut buf[piece])
        })
    }

    #[inline]
    pub fn write<M: RingMem>(&self, mem: &M, at: u32, data: &[u8]) -> Result<(), Corruption> {
        self.in_pieces(at, data.len(), |offset, piece| {
            mem.write_data(offset, &data[piece])
        })
    }

    /// Splits `len` bytes from `at` where the data area ends: `access` gets the
    /// data-area offset and the caller's buffer range of the piece up to the end,
    /// then of the piece that wrapped to offset 0, if any.
    #[inline]
    fn in_pieces(
        &self,
        at: u32,
        len: usize,
        mut access: impl FnMut(usize, Range<usize>) -> Result<(), RegionError>,
    ) -> Result<(), Corruption> {
        let at = at as usize;
        let first = (self.size as usize).saturating_sub(at).min(len);
        access(at, 0..first).map_err(Corruption::Memory)?;
        if first < len {
            access(0, first..len).map_err(Corruption::Memory)?;
        }
        Ok(())
    }

    /// Copies up to `buf.len()` bytes of `range` from `offset` on; returns how many.
    #[inline]
    pub fn read_range<M: RingMem>(
        &self,
        mem: &M,
        range: &RingRange,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<usize, Corruption> {
        if !self.owns(range) || offset >= range.len() {
            return Ok(0);
        }
        let n = buf.len().min(range.len() - offset);
        // offset < range.len < size, so it fits in u32.
        let at = self.add(range.start, offset as u32);
        self.read(mem, at, &mut buf[..n])?;
        Ok(n)
    }
}
