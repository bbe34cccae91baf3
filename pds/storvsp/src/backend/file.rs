//! A disk image file on the host (host-sim): pread/pwrite, fdatasync for flush and
//! hole punching for UNMAP.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{check_range, Backend, BackendError, UnmapSupport};

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

impl Backend for FileBackend {
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
