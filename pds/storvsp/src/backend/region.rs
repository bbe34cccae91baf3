//! A disk held in a memory region (bare metal, where there is no file system).

use ipc::Region;

use super::{check_range, Backend, BackendError, UnmapSupport};

/// A disk whose blocks are the bytes of a granted region. Writes are durable as
/// soon as they are stored, so flush has nothing to do.
#[derive(Debug)]
pub struct RegionBackend<'a> {
    region: Region<'a>,
    block_size: u32,
}

impl<'a> RegionBackend<'a> {
    /// Uses the whole blocks of `region`; a trailing partial block is ignored.
    pub fn new(region: Region<'a>) -> Self {
        Self {
            region,
            block_size: 512,
        }
    }

    fn size(&self) -> u64 {
        self.block_count() * u64::from(self.block_size)
    }
}

impl Backend for RegionBackend<'_> {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn block_count(&self) -> u64 {
        (self.region.len() / self.block_size as usize) as u64
    }

    fn read_only(&self) -> bool {
        !self.region.perms().write
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        check_range(offset, buf.len(), self.size())?;
        self.region
            .read_bytes(offset as usize, buf)
            .map_err(|_| BackendError::Read)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        if self.read_only() {
            return Err(BackendError::ReadOnly);
        }
        check_range(offset, data.len(), self.size())?;
        self.region
            .write_bytes(offset as usize, data)
            .map_err(|_| BackendError::Write)
    }

    fn flush(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn unmap_support(&self) -> UnmapSupport {
        if self.read_only() {
            UnmapSupport::None
        } else {
            UnmapSupport::Zeroes
        }
    }

    fn unmap(&self, offset: u64, len: u64) -> Result<(), BackendError> {
        if self.read_only() {
            return Err(BackendError::ReadOnly);
        }
        let len = usize::try_from(len).map_err(|_| BackendError::OutOfRange)?;
        check_range(offset, len, self.size())?;
        self.region
            .fill(offset as usize, len, 0)
            .map_err(|_| BackendError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use ipc::Perms;
    use std::vec::Vec;

    #[test]
    fn read_write_unmap_and_bounds() {
        let words: Vec<AtomicU64> = (0..256).map(|_| AtomicU64::new(0)).collect();
        let b = RegionBackend::new(Region::from_atomics(&words, Perms::RW));
        assert_eq!(b.block_count(), 4);
        b.write(512, &[7u8; 1024]).unwrap();
        let mut out = [0u8; 1024];
        b.read(512, &mut out).unwrap();
        assert_eq!(out, [7u8; 1024]);
        b.unmap(1024, 512).unwrap();
        b.read(512, &mut out).unwrap();
        assert_eq!(&out[..512], &[7u8; 512][..]);
        assert_eq!(&out[512..], &[0u8; 512][..]);
        assert_eq!(b.write(1536, &[0; 1024]), Err(BackendError::OutOfRange));
        assert_eq!(b.read(u64::MAX, &mut out), Err(BackendError::OutOfRange));
        let ro = RegionBackend::new(Region::from_atomics(&words, Perms::R));
        assert!(ro.read_only());
        assert_eq!(ro.write(0, &[0; 512]), Err(BackendError::ReadOnly));
        assert_eq!(ro.unmap_support(), UnmapSupport::None);
    }
}
