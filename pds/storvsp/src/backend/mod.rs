//! Where a disk's blocks live. The SCSI target only ever talks to this trait.

use crate::data_buffer::IoSegment;

mod region;
pub use region::RegionBackend;
mod service;
pub use service::{BlockCall, ServiceBackend};

#[cfg(feature = "std")]
mod file;
#[cfg(feature = "std")]
pub use file::FileBackend;

/// Why a backend operation failed; the SCSI layer turns it into sense data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The medium could not deliver the data.
    Read,
    /// The medium did not accept the data.
    Write,
    /// Data may not have reached stable storage.
    Flush,
    /// A thinly provisioned image ran out of space.
    NoSpace,
    /// The disk is read-only.
    ReadOnly,
    /// Offset/length outside the disk (the SCSI layer checks first, so a bug).
    OutOfRange,
}

/// What UNMAP does on this backend.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnmapSupport {
    /// UNMAP is not offered to the guest.
    None,
    /// Unmapped blocks read back as zeros (LBPRZ).
    Zeroes,
}

/// A block device. Offsets and lengths are in bytes and multiples of
/// [`Backend::block_size`]. Methods take `&self` so that one backend can serve
/// several channels.
pub trait Backend {
    /// Logical block size in bytes.
    fn block_size(&self) -> u32 {
        512
    }

    /// Number of logical blocks.
    fn block_count(&self) -> u64;

    fn read_only(&self) -> bool;

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;

    /// Returns only once the backend has accepted the data (it may still sit in a
    /// volatile cache until [`Backend::flush`]).
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError>;

    /// Makes every accepted write durable.
    fn flush(&self) -> Result<(), BackendError>;

    fn unmap_support(&self) -> UnmapSupport {
        UnmapSupport::None
    }

    /// Reads `offset..` straight into guest memory. `Ok(false)`: not supported
    /// here, the caller bounces through its own buffer instead.
    fn read_into(&self, _offset: u64, _segs: &[IoSegment<'_>]) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// Writes guest memory straight to `offset..`; `Ok(false)` if not supported.
    /// Like [`Backend::write`], returns once the backend accepted the data.
    fn write_from(&self, _offset: u64, _segs: &[IoSegment<'_>]) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// Deallocates `len` bytes at `offset`; afterwards they read as zeros if
    /// [`UnmapSupport::Zeroes`].
    fn unmap(&self, _offset: u64, _len: u64) -> Result<(), BackendError> {
        Err(BackendError::Write)
    }
}

/// A shared backend, e.g. one disk served on several channels, or a test that
/// keeps a handle to look at the disk.
impl<B: Backend + ?Sized> Backend for alloc::sync::Arc<B> {
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn block_count(&self) -> u64 {
        (**self).block_count()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        (**self).read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        (**self).write(offset, data)
    }
    fn flush(&self) -> Result<(), BackendError> {
        (**self).flush()
    }
    fn unmap_support(&self) -> UnmapSupport {
        (**self).unmap_support()
    }
    fn read_into(&self, offset: u64, segs: &[IoSegment<'_>]) -> Result<bool, BackendError> {
        (**self).read_into(offset, segs)
    }
    fn write_from(&self, offset: u64, segs: &[IoSegment<'_>]) -> Result<bool, BackendError> {
        (**self).write_from(offset, segs)
    }
    fn unmap(&self, offset: u64, len: u64) -> Result<(), BackendError> {
        (**self).unmap(offset, len)
    }
}

/// Checks `offset..offset+len` against a backend of `size` bytes.
pub(crate) fn check_range(offset: u64, len: usize, size: u64) -> Result<(), BackendError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(BackendError::OutOfRange),
    }
}
