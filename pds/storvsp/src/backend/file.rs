//! A disk image file on the host (host-sim): pread/pwrite, fdatasync for flush and
//! hole punching for UNMAP.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use smallvec::SmallVec;

use super::{check_range, Backend, BackendError, UnmapSupport};
use crate::data_buffer::IoSegment;

/// Zeros are written in chunks of this size where the file system cannot punch.
const ZERO_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct FileBackend {
    file: File,
    block_count: u64,
    read_only: bool,
    /// Cleared the first time the file system refuses to punch a hole.
    can_punch: AtomicBool,
}

fn map_io(e: &io::Error, default: BackendError) -> BackendError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => BackendError::NoSpace,
        Some(libc::EROFS) | Some(libc::EBADF) => BackendError::ReadOnly,
        _ => default,
    }
}

impl FileBackend {
    /// Opens an image; its size is rounded down to whole 512-byte blocks.
    pub fn open(path: impl AsRef<Path>, read_only: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        Self::from_file(file, read_only)
    }

    pub fn from_file(file: File, read_only: bool) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            block_count: len / 512,
            read_only,
            can_punch: AtomicBool::new(true),
        })
    }

    fn size(&self) -> u64 {
        self.block_count * 512
    }

    fn punch(&self, offset: u64, len: u64) -> io::Result<()> {
        let off = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: fallocate only takes integers; the descriptor is owned by self.file
        // and stays open for the call.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn write_zeros(&self, mut offset: u64, len: u64) -> Result<(), BackendError> {
        let zeros = [0u8; ZERO_CHUNK];
        let end = offset + len;
        while offset < end {
            let n = (end - offset).min(ZERO_CHUNK as u64) as usize;
            self.write(offset, &zeros[..n])?;
            offset += n as u64;
        }
        Ok(())
    }
}

/// Most iovecs one preadv/pwritev takes (Linux's IOV_MAX).
const IOV_MAX: usize = 1024;

impl FileBackend {
    /// preadv/pwritev over `segs` until all of it moved; a short transfer resumes
    /// where it stopped.
    fn vectored(
        &self,
        offset: u64,
        segs: &[IoSegment<'_>],
        write: bool,
    ) -> Result<(), BackendError> {
        let total: usize = segs.iter().map(|s| s.len()).sum();
        check_range(offset, total, self.size())?;
        let error = if write {
            BackendError::Write
        } else {
            BackendError::Read
        };
        let mut iov: SmallVec<[libc::iovec; 2]> = segs
            .iter()
            .map(|s| libc::iovec {
                iov_base: s.as_ptr().cast(),
                iov_len: s.len(),
            })
            .collect();
        let mut first = 0;
        let mut pos = offset;
        while first < iov.len() {
            let end = (first + IOV_MAX).min(iov.len());
            let batch = &iov[first..end];
            let off = libc::off_t::try_from(pos).map_err(|_| BackendError::OutOfRange)?;
            let fd = self.file.as_raw_fd();
            // SAFETY: every iovec comes from an IoSegment, which this crate makes only
            // from Region::io_ptr (bounds- and, for reads into it, write-checked) and
            // which borrows the guest memory for the duration of this call. The kernel
            // copies into or out of that mapping; no Rust reference to it exists.
            let n = unsafe {
                match (write, batch) {
                    // One segment (a request in contiguous guest pages, the usual
                    // case): pread/pwrite, which spare the kernel the iovec.
                    (true, [one]) => libc::pwrite(fd, one.iov_base, one.iov_len, off),
                    (false, [one]) => libc::pread(fd, one.iov_base, one.iov_len, off),
                    (true, _) => libc::pwritev(fd, batch.as_ptr(), batch.len() as libc::c_int, off),
                    (false, _) => libc::preadv(fd, batch.as_ptr(), batch.len() as libc::c_int, off),
                }
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(map_io(&e, error));
            }
            if n == 0 {
                // End of file inside the disk: the image shrank under us.
                return Err(error);
            }
            let mut n = n as usize;
            pos += n as u64;
            while n > 0 && first < iov.len() {
                let v = &mut iov[first];
                if n >= v.iov_len {
                    n -= v.iov_len;
                    first += 1;
                } else {
                    // SAFETY: n < iov_len, so the advanced base stays inside the
                    // same segment.
                    v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n).cast() };
                    v.iov_len -= n;
                    n = 0;
                }
            }
        }
        Ok(())
    }
}

impl Backend for FileBackend {
    fn read_into(&self, offset: u64, segs: &[IoSegment<'_>]) -> Result<bool, BackendError> {
        self.vectored(offset, segs, false).map(|()| true)
    }

    fn write_from(&self, offset: u64, segs: &[IoSegment<'_>]) -> Result<bool, BackendError> {
        if self.read_only {
            return Err(BackendError::ReadOnly);
        }
        self.vectored(offset, segs, true).map(|()| true)
    }

    fn block_count(&self) -> u64 {
        self.block_count
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        check_range(offset, buf.len(), self.size())?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| map_io(&e, BackendError::Read))
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        if self.read_only {
            return Err(BackendError::ReadOnly);
        }
        check_range(offset, data.len(), self.size())?;
        self.file
            .write_all_at(data, offset)
            .map_err(|e| map_io(&e, BackendError::Write))
    }

    fn flush(&self) -> Result<(), BackendError> {
        if self.read_only {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| map_io(&e, BackendError::Flush))
    }

    fn unmap_support(&self) -> UnmapSupport {
        if self.read_only {
            UnmapSupport::None
        } else {
            UnmapSupport::Zeroes
        }
    }

    fn unmap(&self, offset: u64, len: u64) -> Result<(), BackendError> {
        if self.read_only {
            return Err(BackendError::ReadOnly);
        }
        let len_usize = usize::try_from(len).map_err(|_| BackendError::OutOfRange)?;
        check_range(offset, len_usize, self.size())?;
        if self.can_punch.load(Ordering::Relaxed) {
            match self.punch(offset, len) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    self.can_punch.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(map_io(&e, BackendError::Write)),
            }
        }
        // We promised zeros after unmap (LBPRZ), so write them where we cannot punch.
        self.write_zeros(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn punch_hole_reads_zero_and_frees_blocks() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(4 << 20).unwrap();
        let b = FileBackend::open(tmp.path(), false).unwrap();
        assert_eq!(b.block_count(), 8192);
        let data = std::vec![0xA5u8; 1 << 20];
        b.write(1 << 20, &data).unwrap();
        b.flush().unwrap();
        let used_before = tmp.as_file().metadata().unwrap().blocks();
        b.unmap(1 << 20, 1 << 20).unwrap();
        let mut back = std::vec![1u8; 1 << 20];
        b.read(1 << 20, &mut back).unwrap();
        assert!(back.iter().all(|&x| x == 0));
        let used_after = tmp.as_file().metadata().unwrap().blocks();
        if b.can_punch.load(Ordering::Relaxed) {
            assert!(used_after < used_before, "{used_after} !< {used_before}");
        }
    }

    #[test]
    fn vectored_io_moves_one_or_several_segments_in_order() {
        use crate::data_buffer::{DataBuffer, GpaBuffer};
        use core::sync::atomic::AtomicU64;
        use ipc::{Perms, Region};
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(1 << 20).unwrap();
        let b = FileBackend::open(tmp.path(), false).unwrap();
        let words: std::vec::Vec<AtomicU64> = (0..4 * 512).map(|_| AtomicU64::new(0)).collect();
        let region = Region::from_atomics(&words, Perms::RW);
        let mem = isolation::GuestMemory::private(0, region).unwrap();
        let data: std::vec::Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        // 6000 bytes from 1000 into the first page: pages 0 and 3 are two
        // segments (preadv/pwritev), adjacent pages 1 and 2 one (pread/pwrite).
        for (pfns, segments) in [(&[0u64, 3][..], 2), (&[1, 2][..], 1)] {
            region.fill(0, 4 * 4096, 0).unwrap();
            let range = vmbus_ring::GpaRangeRef {
                byte_count: 6000,
                byte_offset: 1000,
                pfns,
            };
            let buf = GpaBuffer::new(&mem, range, 6000, true).unwrap();
            DataBuffer::write_at(&buf, 0, &data).unwrap();
            let segs = DataBuffer::io_segments(&buf, false).unwrap();
            assert_eq!(segs.len(), segments, "{pfns:?}");
            assert!(b.write_from(4096, &segs).unwrap());
            let mut back = std::vec![0u8; 6000];
            b.read(4096, &mut back).unwrap();
            assert_eq!(back, data, "{pfns:?}");
            region.fill(0, 4 * 4096, 0).unwrap();
            let segs = DataBuffer::io_segments(&buf, true).unwrap();
            assert!(b.read_into(4096, &segs).unwrap());
            let mut got = std::vec![0u8; 6000];
            DataBuffer::read_at(&buf, 0, &mut got).unwrap();
            assert_eq!(got, data, "{pfns:?}");
            // Past the end of the image: refused before any I/O.
            assert_eq!(
                b.read_into((1 << 20) - 512, &segs),
                Err(BackendError::OutOfRange)
            );
            tmp.as_file().set_len(0).unwrap();
            tmp.as_file().set_len(1 << 20).unwrap();
        }
    }

    #[test]
    fn bounds_and_read_only() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(1000).unwrap(); // one whole block
        let b = FileBackend::open(tmp.path(), true).unwrap();
        assert_eq!(b.block_count(), 1);
        assert_eq!(b.write(0, &[0; 512]), Err(BackendError::ReadOnly));
        let mut buf = [0u8; 512];
        assert_eq!(b.read(512, &mut buf), Err(BackendError::OutOfRange));
        b.read(0, &mut buf).unwrap();
    }
}
