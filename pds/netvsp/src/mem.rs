//! Guest buffers as the NIC sees them: a byte range it may read and write at
//! offsets, whatever pages lie underneath.

use alloc::vec::Vec;
use core::cell::RefCell;

use ipc::Region;
use vmbus_ring::PAGE_SIZE;

/// An access outside the buffer or its mapping.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemError;

/// A guest buffer: a receive or send buffer GPADL, or the ranges of a GPA-direct
/// packet. Offsets are the buffer's own, from 0 to `len()`.
pub trait GuestBuffer {
    fn len(&self) -> usize;
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemError>;
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), MemError>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whole pages of one mapping, in the order a GPADL lists them: page `i` of the
/// buffer is page `pages[i]` of `region`.
#[derive(Clone, Debug)]
pub struct PagedBuffer<'a> {
    region: Region<'a>,
    pages: Vec<u64>,
}

impl<'a> PagedBuffer<'a> {
    /// `None` if a page lies outside the region.
    pub fn new(region: Region<'a>, pages: Vec<u64>) -> Option<Self> {
        let count = (region.len() / PAGE_SIZE) as u64;
        pages
            .iter()
            .all(|&p| p < count)
            .then_some(Self { region, pages })
    }

    /// Splits an access into the pieces that lie within one page each.
    fn walk(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(usize, core::ops::Range<usize>) -> Result<(), MemError>,
    ) -> Result<(), MemError> {
        let end = offset.checked_add(len).ok_or(MemError)?;
        if end > self.len() {
            return Err(MemError);
        }
        let mut at = offset;
        while at < end {
            let page = self.pages[at / PAGE_SIZE] as usize;
            let within = at % PAGE_SIZE;
            let n = (PAGE_SIZE - within).min(end - at);
            f(page * PAGE_SIZE + within, at - offset..at - offset + n)?;
            at += n;
        }
        Ok(())
    }
}

impl GuestBuffer for PagedBuffer<'_> {
    fn len(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemError> {
        self.walk(offset, buf.len(), |at, part| {
            self.region
                .read_bytes(at, &mut buf[part])
                .map_err(|_| MemError)
        })
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), MemError> {
        self.walk(offset, data.len(), |at, part| {
            self.region
                .write_bytes(at, &data[part])
                .map_err(|_| MemError)
        })
    }
}

/// A plain byte buffer (GPA-direct data already copied, tests).
#[derive(Debug, Default)]
pub struct SliceBuffer(pub RefCell<Vec<u8>>);

impl SliceBuffer {
    pub fn new(len: usize) -> Self {
        Self(RefCell::new(alloc::vec![0; len]))
    }
}

impl GuestBuffer for SliceBuffer {
    fn len(&self) -> usize {
        self.0.borrow().len()
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemError> {
        let v = self.0.borrow();
        let end = offset.checked_add(buf.len()).ok_or(MemError)?;
        buf.copy_from_slice(v.get(offset..end).ok_or(MemError)?);
        Ok(())
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), MemError> {
        let mut v = self.0.borrow_mut();
        let end = offset.checked_add(data.len()).ok_or(MemError)?;
        v.get_mut(offset..end)
            .ok_or(MemError)?
            .copy_from_slice(data);
        Ok(())
    }
}

impl<T: GuestBuffer + ?Sized> GuestBuffer for &T {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), MemError> {
        (**self).write_at(offset, data)
    }
}
