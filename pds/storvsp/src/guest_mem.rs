//! Guest memory as this PD was granted it, and the data buffers of requests.
//!
//! A GPA-direct request names guest pages by number. Every page is checked against
//! the ranges of guest RAM mapped into this PD before any byte moves, so a guest
//! that names memory it does not own (or the PD was not given) gets an error
//! status instead of the PD touching anything else.

use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ptr::NonNull;

use ipc::{Region, RegionError};

use crate::packet::{GpaRange, PAGE_SIZE};

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

impl From<RegionError> for GuestMemError {
    fn from(e: RegionError) -> Self {
        Self::Region(e)
    }
}

/// Guest physical memory, page-granular.
pub trait GuestMemory {
    /// Checks that page `gpn` may be read (and written, if `write`).
    fn check_page(&self, gpn: u64, write: bool) -> Result<(), GuestMemError>;
    /// Copies out of one page, `offset + buf.len() <= PAGE_SIZE`.
    fn read_page(&self, gpn: u64, offset: usize, buf: &mut [u8]) -> Result<(), GuestMemError>;
    /// Copies into one page, `offset + data.len() <= PAGE_SIZE`.
    fn write_page(&self, gpn: u64, offset: usize, data: &[u8]) -> Result<(), GuestMemError>;

    /// Where `offset..offset+len` of page `gpn` is mapped, for the OS to copy to
    /// or from directly; `None` if this memory cannot be handed to the OS.
    fn page_io_ptr(
        &self,
        _gpn: u64,
        _offset: usize,
        _len: usize,
        _write: bool,
    ) -> Option<NonNull<u8>> {
        None
    }
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

/// Why a range could not be granted when building [`RegionGuestMemory`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The region's length or base is not a whole number of pages.
    NotPageAligned,
    /// Two ranges overlap in guest physical address space.
    Overlap,
}

/// Guest RAM made of one or more regions, each mapped at a guest physical base.
#[derive(Clone, Debug, Default)]
pub struct RegionGuestMemory<'a> {
    /// Sorted by base page, non-overlapping.
    ranges: Vec<(u64, Region<'a>)>,
}

impl<'a> RegionGuestMemory<'a> {
    pub fn new() -> Self {
        Self { ranges: Vec::new() }
    }

    /// Grants `region` as guest RAM starting at guest physical address `base_gpa`.
    pub fn add(&mut self, base_gpa: u64, region: Region<'a>) -> Result<(), LayoutError> {
        if !base_gpa.is_multiple_of(PAGE_SIZE as u64) || !region.len().is_multiple_of(PAGE_SIZE) {
            return Err(LayoutError::NotPageAligned);
        }
        let base = base_gpa / PAGE_SIZE as u64;
        let pages = (region.len() / PAGE_SIZE) as u64;
        let end = base.checked_add(pages).ok_or(LayoutError::Overlap)?;
        for (b, r) in &self.ranges {
            let e = b + (r.len() / PAGE_SIZE) as u64;
            if base < e && *b < end {
                return Err(LayoutError::Overlap);
            }
        }
        let at = self.ranges.partition_point(|(b, _)| *b < base);
        self.ranges.insert(at, (base, region));
        Ok(())
    }

    pub fn single(base_gpa: u64, region: Region<'a>) -> Result<Self, LayoutError> {
        let mut m = Self::new();
        m.add(base_gpa, region)?;
        Ok(m)
    }

    fn locate(&self, gpn: u64) -> Result<(&Region<'a>, usize), GuestMemError> {
        let at = self.ranges.partition_point(|(b, _)| *b <= gpn);
        let (base, region) = at
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .ok_or(GuestMemError::NotGranted { gpn })?;
        let index = gpn - base;
        if index >= (region.len() / PAGE_SIZE) as u64 {
            return Err(GuestMemError::NotGranted { gpn });
        }
        Ok((region, index as usize * PAGE_SIZE))
    }
}

impl GuestMemory for RegionGuestMemory<'_> {
    fn page_io_ptr(&self, gpn: u64, offset: usize, len: usize, write: bool) -> Option<NonNull<u8>> {
        let (region, at) = self.locate(gpn).ok()?;
        if offset + len > PAGE_SIZE {
            return None;
        }
        region.io_ptr(at + offset, len, write).ok()
    }

    fn check_page(&self, gpn: u64, write: bool) -> Result<(), GuestMemError> {
        let (region, _) = self.locate(gpn)?;
        if write && !region.perms().write {
            return Err(GuestMemError::ReadOnly { gpn });
        }
        Ok(())
    }

    fn read_page(&self, gpn: u64, offset: usize, buf: &mut [u8]) -> Result<(), GuestMemError> {
        let (region, at) = self.locate(gpn)?;
        if offset + buf.len() > PAGE_SIZE {
            return Err(RegionError::OutOfBounds {
                offset,
                len: buf.len(),
                region_len: PAGE_SIZE,
            }
            .into());
        }
        Ok(region.read_bytes(at + offset, buf)?)
    }

    fn write_page(&self, gpn: u64, offset: usize, data: &[u8]) -> Result<(), GuestMemError> {
        let (region, at) = self.locate(gpn)?;
        if offset + data.len() > PAGE_SIZE {
            return Err(RegionError::OutOfBounds {
                offset,
                len: data.len(),
                region_len: PAGE_SIZE,
            }
            .into());
        }
        Ok(region.write_bytes(at + offset, data)?)
    }
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
    fn io_segments(&self, _write: bool) -> Option<Vec<IoSegment<'_>>> {
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
pub struct GpaBuffer<'a, M: ?Sized> {
    mem: &'a M,
    range: GpaRange<'a>,
    len: usize,
}

impl<'a, M: GuestMemory + ?Sized> GpaBuffer<'a, M> {
    /// Validates that `range` covers `len` bytes, all in granted memory, writable
    /// when `write` (the data-in direction) is asked for.
    pub fn new(
        mem: &'a M,
        range: GpaRange<'a>,
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
        let last = GpaRange::pages_needed(range.byte_offset, len as u32);
        for i in first..last {
            let gpn = range.pfn(i).ok_or(BufferError::TooShort {
                needed: len,
                available: range.byte_count as usize,
            })?;
            mem.check_page(gpn, write).map_err(BufferError::Memory)?;
        }
        Ok(Self { mem, range, len })
    }

    /// Walks `offset..offset+total` page by page, calling `f(gpn, page_offset,
    /// chunk_start, chunk_len)`.
    fn for_each_chunk(
        &self,
        offset: usize,
        total: usize,
        mut f: impl FnMut(u64, usize, usize, usize) -> Result<(), GuestMemError>,
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
            let gpn = self.range.pfn(page).ok_or(BufferError::OutOfBounds)?;
            f(gpn, in_page, done, n).map_err(BufferError::Memory)?;
            pos += n;
            done += n;
        }
        Ok(())
    }
}

impl<M: GuestMemory + ?Sized> DataBuffer for GpaBuffer<'_, M> {
    fn len(&self) -> usize {
        self.len
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), BufferError> {
        let total = buf.len();
        self.for_each_chunk(offset, total, |gpn, in_page, at, n| {
            self.mem.read_page(gpn, in_page, &mut buf[at..at + n])
        })
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), BufferError> {
        self.for_each_chunk(offset, data.len(), |gpn, in_page, at, n| {
            self.mem.write_page(gpn, in_page, &data[at..at + n])
        })
    }

    fn io_segments(&self, write: bool) -> Option<Vec<IoSegment<'_>>> {
        let mut segs: Vec<IoSegment<'_>> = Vec::new();
        let mut failed = false;
        self.for_each_chunk(0, self.len, |gpn, in_page, _, n| {
            let Some(ptr) = self.mem.page_io_ptr(gpn, in_page, n, write) else {
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
    use crate::packet::build;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;

    fn ram(pages: usize) -> Vec<AtomicU64> {
        (0..pages * PAGE_SIZE / 8)
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    fn range_of<'a>(raw: &'a [u8]) -> GpaRange<'a> {
        crate::packet::parse(raw).unwrap().buffer.unwrap().unwrap()
    }

    #[test]
    fn pages_outside_the_grant_are_refused() {
        let words = ram(4);
        let mem =
            RegionGuestMemory::single(0x10_0000, Region::from_atomics(&words, Perms::RW)).unwrap();
        // Pages 0x100..0x104 are granted.
        let raw = build::gpa_direct(1, 8192, 0, &[0x103, 0x104], &[]);
        assert_eq!(
            GpaBuffer::new(&mem, range_of(&raw), 8192, true).unwrap_err(),
            BufferError::Memory(GuestMemError::NotGranted { gpn: 0x104 })
        );
        // Only the first page is touched by a 4 KiB transfer.
        assert!(GpaBuffer::new(&mem, range_of(&raw), 4096, true).is_ok());
        let raw = build::gpa_direct(1, 100, 0, &[0xff], &[]);
        assert!(GpaBuffer::new(&mem, range_of(&raw), 100, false).is_err());
    }

    #[test]
    fn read_only_grants_refuse_data_in() {
        let words = ram(1);
        let mem = RegionGuestMemory::single(
            0,
            Region::from_atomics(&words, Perms::RW).restrict(Perms::R),
        )
        .unwrap();
        let raw = build::gpa_direct(1, 512, 0, &[0], &[]);
        assert_eq!(
            GpaBuffer::new(&mem, range_of(&raw), 512, true).unwrap_err(),
            BufferError::Memory(GuestMemError::ReadOnly { gpn: 0 })
        );
        assert!(GpaBuffer::new(&mem, range_of(&raw), 512, false).is_ok());
    }

    #[test]
    fn transfer_longer_than_the_range_is_too_short() {
        let words = ram(1);
        let mem = RegionGuestMemory::single(0, Region::from_atomics(&words, Perms::RW)).unwrap();
        let raw = build::gpa_direct(1, 512, 0, &[0], &[]);
        assert_eq!(
            GpaBuffer::new(&mem, range_of(&raw), 1024, true).unwrap_err(),
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
        let mem = RegionGuestMemory::single(0, region).unwrap();
        // Pages deliberately out of order: 3 then 1.
        let raw = build::gpa_direct(1, 5000, 3000, &[3, 1, 2], &[]);
        let buf = GpaBuffer::new(&mem, range_of(&raw), 5000, true).unwrap();
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
        let mem = RegionGuestMemory::single(0, region).unwrap();
        // Pages 2,3 are adjacent; 6 is not; start 100 bytes into page 2.
        let raw = build::gpa_direct(1, 3 * 4096, 100, &[2, 3, 6, 7], &[]);
        let buf = GpaBuffer::new(&mem, range_of(&raw), 3 * 4096, true).unwrap();
        let segs = buf.io_segments(true).unwrap();
        let lens: Vec<usize> = segs.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [2 * 4096 - 100, 4096 + 100]);
        assert_eq!(
            segs[0].as_ptr() as usize,
            region.base_address() + 2 * 4096 + 100
        );
        assert_eq!(segs[1].as_ptr() as usize, region.base_address() + 6 * 4096);
        // Read-only guest memory cannot be handed out for data-in.
        let ro = RegionGuestMemory::single(0, region.restrict(Perms::R)).unwrap();
        let buf = GpaBuffer::new(&ro, range_of(&raw), 100, false).unwrap();
        assert!(buf.io_segments(true).is_none());
        assert!(buf.io_segments(false).is_some());
    }

    #[test]
    fn overlapping_grants_are_refused() {
        let a = ram(2);
        let b = ram(2);
        let mut mem = RegionGuestMemory::new();
        mem.add(0, Region::from_atomics(&a, Perms::RW)).unwrap();
        assert_eq!(
            mem.add(4096, Region::from_atomics(&b, Perms::RW)),
            Err(LayoutError::Overlap)
        );
        mem.add(0x10000, Region::from_atomics(&b, Perms::RW))
            .unwrap();
        assert!(mem.check_page(0x11, false).is_ok());
        assert!(mem.check_page(0x12, false).is_err());
        assert!(mem.check_page(2, false).is_err());
    }
}
