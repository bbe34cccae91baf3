//! The data buffers of requests: where a command's data comes from or goes to.
//!
//! A GPA-direct request names guest pages by number. Every page is looked up in
//! the guest memory this PD was granted ([`isolation::GuestMemory`]) before any
//! byte moves, so a guest that names memory it does not own (or the PD was not
//! given) gets an error status instead of the PD touching anything else.

use core::marker::PhantomData;
use core::ptr::NonNull;

use hvdef::HV_PAGE_SIZE;
use ipc::{Region, RegionError};
use isolation::guest_memory::{GuestMemory, GuestPage};
use smallvec::SmallVec;
use vmbus_ring::GpaRangeRef;

const PAGE_SIZE: usize = HV_PAGE_SIZE as usize;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GuestMemError {
    /// No granted range holds this guest page.
    NotGranted {
        gpn: u64,
    },
    /// The page is granted read-only but the request would write it.
    ReadOnly {
        gpn: u64,
    },
    Region(RegionError),
}

ipc::wrap_from!(GuestMemError { Region(RegionError) });

/// Page `gpn`, if it is granted (and writable, for `write`).
fn page<'a>(mem: &GuestMemory<'a>, gpn: u64, write: bool) -> Result<GuestPage<'a>, GuestMemError> {
    let page = mem
        .page(gpn)
        .map_err(|e| GuestMemError::NotGranted { gpn: e.gpn })?;
    if write && !page.region.perms().write {
        return Err(GuestMemError::ReadOnly { gpn });
    }
    Ok(page)
}

/// A piece of guest memory the OS may read or write directly (preadv/pwritev),
/// valid while the guest memory it came from is borrowed (`'a`). Only this crate
/// makes them, from bounds- and permission-checked region pointers.
#[derive(Copy, Clone, Debug)]
pub struct IoSegment<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _memory: PhantomData<&'a [u8]>,
}

impl IoSegment<'_> {
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shortens the segment to its first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// A buffer's pieces, for one preadv/pwritev. A request in contiguous guest
/// pages (the usual case) is one piece, kept inline: serving it allocates
/// nothing.
pub type IoSegments<'a> = SmallVec<[IoSegment<'a>; 2]>;

/// Pages a range of this size and offset spans.
pub fn pages_needed(byte_offset: u32, byte_count: u32) -> usize {
    (byte_offset as usize + byte_count as usize).div_ceil(PAGE_SIZE)
}

/// Why a request's data buffer is unusable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BufferError {
    /// The page list covers fewer bytes than the SRB's data transfer length.
    TooShort { needed: usize, available: usize },
    /// A page is outside granted guest memory (or not writable for data-in).
    Memory(GuestMemError),
    /// An access past `len()` (a bug in the caller, reported rather than panicking).
    OutOfBounds,
}

/// Where a command's data comes from (data-out) or goes to (data-in).
pub trait DataBuffer {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `buf.len()` bytes of the initiator's data, starting at `offset`.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), BufferError>;

    /// Copies `data` into the initiator's buffer at `offset`.
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), BufferError>;

    /// The buffer as pieces of memory the OS can copy to (`write`) or from
    /// directly, so the backend can skip the bounce buffer. `None` when it cannot.
    fn io_segments(&self, _write: bool) -> Option<IoSegments<'_>> {
        None
    }
}

/// No buffer at all.
#[derive(Copy, Clone, Debug, Default)]
pub struct EmptyBuffer;

impl DataBuffer for EmptyBuffer {
    fn len(&self) -> usize {
        0
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), BufferError> {
        if offset == 0 && buf.is_empty() {
            Ok(())
        } else {
            Err(BufferError::OutOfBounds)
        }
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), BufferError> {
        if offset == 0 && data.is_empty() {
            Ok(())
        } else {
            Err(BufferError::OutOfBounds)
        }
    }
}

/// A region used directly as a buffer (in-process harnesses and tests).
impl DataBuffer for Region<'_> {
    fn len(&self) -> usize {
        Region::len(self)
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), BufferError> {
        self.read_bytes(offset, buf)
            .map_err(|_| BufferError::OutOfBounds)
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), BufferError> {
        self.write_bytes(offset, data)
            .map_err(|_| BufferError::OutOfBounds)
    }
}

/// The first `len` bytes of a GPA-direct range, every page checked up front.
#[derive(Debug)]
pub struct GpaBuffer<'a> {
    mem: &'a GuestMemory<'a>,
    range: GpaRangeRef<'a>,
    len: usize,
}

impl<'a> GpaBuffer<'a> {
    /// Validates that `range` covers `len` bytes, all in granted memory, writable
    /// when `write` (the data-in direction) is asked for.
    pub fn new(
        mem: &'a GuestMemory<'a>,
        range: GpaRangeRef<'a>,
        len: usize,
        write: bool,
    ) -> Result<Self, BufferError> {
        if len > range.byte_count as usize {
            return Err(BufferError::TooShort {
                needed: len,
                available: range.byte_count as usize,
            });
        }
        let first = range.byte_offset as usize / PAGE_SIZE;
        let last = pages_needed(range.byte_offset, len as u32);
        for i in first..last {
            let gpn = *range.pfns.get(i).ok_or(BufferError::TooShort {
                needed: len,
                available: range.byte_count as usize,
            })?;
            page(mem, gpn, write).map_err(BufferError::Memory)?;
        }
        Ok(Self { mem, range, len })
    }

    /// Walks `offset..offset+total` page by page, calling `f(gpn, page_offset,
    /// chunk_start, chunk_len)`.
    fn for_each_chunk(
        &self,
        offset: usize,
        total: usize,
        mut f: impl FnMut(GuestPage<'a>, usize, usize, usize) -> Result<(), GuestMemError>,
    ) -> Result<(), BufferError> {
        let end = offset.checked_add(total).ok_or(BufferError::OutOfBounds)?;
        if end > self.len {
            return Err(BufferError::OutOfBounds);
        }
        let mut pos = self.range.byte_offset as usize + offset;
        let mut done = 0;
        while done < total {
            let page = pos / PAGE_SIZE;
            let in_page = pos % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(total - done);
            let gpn = *self.range.pfns.get(page).ok_or(BufferError::OutOfBounds)?;
            let page = self
                .mem
                .page(gpn)
                .map_err(|e| BufferError::Memory(GuestMemError::NotGranted { gpn: e.gpn }))?;
            f(page, in_page, done, n).map_err(BufferError::Memory)?;
            pos += n;
            done += n;
        }
        Ok(())
    }
}

impl DataBuffer for GpaBuffer<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), BufferError> {
        let total = buf.len();
        self.for_each_chunk(offset, total, |page, in_page, at, n| {
            Ok(page.region.read_bytes(in_page, &mut buf[at..at + n])?)
        })
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), BufferError> {
        self.for_each_chunk(offset, data.len(), |page, in_page, at, n| {
            Ok(page.region.write_bytes(in_page, &data[at..at + n])?)
        })
    }

    fn io_segments(&self, write: bool) -> Option<IoSegments<'_>> {
        let mut segs = IoSegments::new();
        let mut failed = false;
        self.for_each_chunk(0, self.len, |page, in_page, _, n| {
            let Some(ptr) = page.region.io_ptr(in_page, n, write).ok() else {
                failed = true;
                return Ok(());
            };
            // Guest pages that are adjacent in this mapping become one segment.
            match segs.last_mut() {
                Some(last) if last.ptr.as_ptr().wrapping_add(last.len) == ptr.as_ptr() => {
                    last.len += n
                }
                _ => segs.push(IoSegment {
                    ptr,
                    len: n,
                    _memory: PhantomData,
                }),
            }
            Ok(())
        })
        .ok()?;
        (!failed).then_some(segs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;

    fn ram(pages: usize) -> Vec<AtomicU64> {
        (0..pages * PAGE_SIZE / 8)
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    fn range(byte_count: u32, byte_offset: u32, pfns: &[u64]) -> GpaRangeRef<'_> {
        GpaRangeRef {
            byte_count,
            byte_offset,
            pfns,
        }
    }

    #[test]
    fn pages_outside_the_grant_are_refused() {
        let words = ram(4);
        let mem = GuestMemory::private(0x10_0000, Region::from_atomics(&words, Perms::RW)).unwrap();
        // Pages 0x100..0x104 are granted.
        let raw = range(8192, 0, &[0x103, 0x104]);
        assert_eq!(
            GpaBuffer::new(&mem, raw, 8192, true).unwrap_err(),
            BufferError::Memory(GuestMemError::NotGranted { gpn: 0x104 })
        );
        // Only the first page is touched by a 4 KiB transfer.
        assert!(GpaBuffer::new(&mem, raw, 4096, true).is_ok());
        let raw = range(100, 0, &[0xff]);
        assert!(GpaBuffer::new(&mem, raw, 100, false).is_err());
    }

    #[test]
    fn read_only_grants_refuse_data_in() {
        let words = ram(1);
        let mem = GuestMemory::private(
            0,
            Region::from_atomics(&words, Perms::RW).restrict(Perms::R),
        )
        .unwrap();
        let raw = range(512, 0, &[0]);
        assert_eq!(
            GpaBuffer::new(&mem, raw, 512, true).unwrap_err(),
            BufferError::Memory(GuestMemError::ReadOnly { gpn: 0 })
        );
        assert!(GpaBuffer::new(&mem, raw, 512, false).is_ok());
    }

    #[test]
    fn transfer_longer_than_the_range_is_too_short() {
        let words = ram(1);
        let mem = GuestMemory::private(0, Region::from_atomics(&words, Perms::RW)).unwrap();
        let raw = range(512, 0, &[0]);
        assert_eq!(
            GpaBuffer::new(&mem, raw, 1024, true).unwrap_err(),
            BufferError::TooShort {
                needed: 1024,
                available: 512
            }
        );
    }

    #[test]
    fn copies_cross_pages_in_list_order() {
        let words = ram(4);
        let region = Region::from_atomics(&words, Perms::RW);
        let mem = GuestMemory::private(0, region).unwrap();
        // Pages deliberately out of order: 3 then 1.
        let raw = range(5000, 3000, &[3, 1, 2]);
        let buf = GpaBuffer::new(&mem, raw, 5000, true).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        buf.write_at(0, &data).unwrap();
        let mut back = std::vec![0u8; 5000];
        buf.read_at(0, &mut back).unwrap();
        assert_eq!(back, data);
        // The first 1096 bytes landed at the end of page 3, the rest at page 1.
        let mut tail = [0u8; 4];
        region.read_bytes(3 * PAGE_SIZE + 3000, &mut tail).unwrap();
        assert_eq!(&tail, &data[..4]);
        region.read_bytes(PAGE_SIZE, &mut tail).unwrap();
        assert_eq!(&tail, &data[1096..1100]);
        assert_eq!(buf.write_at(4999, &[0, 0]), Err(BufferError::OutOfBounds));
    }

    #[test]
    fn io_segments_merge_adjacent_pages_only() {
        let words = ram(8);
        let region = Region::from_atomics(&words, Perms::RW);
        let mem = GuestMemory::private(0, region).unwrap();
        // Pages 2,3 are adjacent; 6 is not; start 100 bytes into page 2.
        let raw = range(3 * 4096, 100, &[2, 3, 6, 7]);
        let buf = GpaBuffer::new(&mem, raw, 3 * 4096, true).unwrap();
        let segs = buf.io_segments(true).unwrap();
        let lens: Vec<usize> = segs.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [2 * 4096 - 100, 4096 + 100]);
        assert_eq!(
            segs[0].as_ptr() as usize,
            region.base_address() + 2 * 4096 + 100
        );
        assert_eq!(segs[1].as_ptr() as usize, region.base_address() + 6 * 4096);
        // Read-only guest memory cannot be handed out for data-in.
        let ro = GuestMemory::private(0, region.restrict(Perms::R)).unwrap();
        let buf = GpaBuffer::new(&ro, raw, 100, false).unwrap();
        assert!(buf.io_segments(true).is_none());
        assert!(buf.io_segments(false).is_some());
    }
}
