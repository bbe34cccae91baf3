//! A disk served by another PD (the virtio-blk driver PD on bare metal) over
//! protected calls (`virtio_blk::service`): the data goes through a shared
//! window this PD maps read-write and the device reaches by DMA, the call
//! carries the operation and where. SYNCHRONIZE CACHE becomes the driver's
//! FLUSH, which becomes virtio's VIRTIO_BLK_T_FLUSH.

use ipc::Region;
use virtio_blk::service::{encode, label, Op, Reply, FLAG_READ_ONLY};
use virtio_blk::SECTOR;

use super::{check_range, Backend, BackendError};

/// One protected call to the driver PD: the reply label and its first two
/// message registers, or `None` if the call itself failed (the PD is gone).
pub trait BlockCall {
    fn call(&self, label: u64, mrs: &[u64]) -> Option<(u64, [u64; 2])>;
}

/// The driver PD's disk, in chunks of the data window.
#[derive(Debug)]
pub struct ServiceBackend<C> {
    call: C,
    data: Region<'static>,
    sectors: u64,
    read_only: bool,
}

impl<C: BlockCall> ServiceBackend<C> {
    /// Asks the driver for the disk's geometry; `None` if it does not answer.
    pub fn connect(call: C, data: Region<'static>) -> Option<Self> {
        let (reply, [sectors, flags]) = call.call(label::GEOMETRY, &[])?;
        // A window smaller than a sector could move nothing.
        (Reply::from_label(reply) == Reply::Ok && data.len() as u64 >= SECTOR).then_some(Self {
            call,
            data,
            sectors,
            read_only: flags & FLAG_READ_ONLY != 0,
        })
    }

    fn request(&self, op: Op, err: BackendError) -> Result<(), BackendError> {
        let (label, mrs, count) = encode(op);
        match self.call.call(label, &mrs[..count]) {
            Some((reply, _)) if Reply::from_label(reply) == Reply::Ok => Ok(()),
            _ => Err(err),
        }
    }

    /// Window-sized pieces of `offset..offset+len`: (disk offset, piece offset, length).
    fn chunks(&self, offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
        let step = (self.data.len() / SECTOR as usize) * SECTOR as usize;
        (0..len)
            .step_by(step.max(1))
            .map(move |at| (offset + at as u64, at, step.min(len - at)))
    }
}

impl<C: BlockCall> Backend for ServiceBackend<C> {
    fn block_count(&self) -> u64 {
        self.sectors
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        check_range(offset, buf.len(), self.sectors * SECTOR)?;
        for (disk, at, len) in self.chunks(offset, buf.len()) {
            let op = Op::Read {
                sector: disk / SECTOR,
                offset: 0,
                len: len as u32,
            };
            self.request(op, BackendError::Read)?;
            self.data
                .read_bytes(0, &mut buf[at..at + len])
                .map_err(|_| BackendError::Read)?;
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        if self.read_only {
            return Err(BackendError::ReadOnly);
        }
        check_range(offset, data.len(), self.sectors * SECTOR)?;
        for (disk, at, len) in self.chunks(offset, data.len()) {
            self.data
                .write_bytes(0, &data[at..at + len])
                .map_err(|_| BackendError::Write)?;
            let op = Op::Write {
                sector: disk / SECTOR,
                offset: 0,
                len: len as u32,
            };
            self.request(op, BackendError::Write)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), BackendError> {
        self.request(Op::Flush, BackendError::Flush)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use core::cell::RefCell;
    use core::sync::atomic::AtomicU64;
    use std::boxed::Box;
    use std::vec::Vec;

    use ipc::Perms;
    use virtio_blk::service::{decode, FLAG_FLUSH};

    use super::*;

    /// The driver PD's side over a disk in memory, sharing the window; it can
    /// be told to fail every call from the `fail_from`-th on.
    struct FakeDriver<'a> {
        disk: RefCell<Vec<u8>>,
        window: Region<'a>,
        calls: RefCell<Vec<Op>>,
        fail_from: usize,
    }

    impl BlockCall for &FakeDriver<'static> {
        fn call(&self, label: u64, mrs: &[u64]) -> Option<(u64, [u64; 2])> {
            let op = decode(label, mrs).ok()?;
            self.calls.borrow_mut().push(op);
            if self.calls.borrow().len() > self.fail_from {
                return Some((Reply::IoError as u64, [0; 2]));
            }
            let mut disk = self.disk.borrow_mut();
            match op {
                Op::Geometry => return Some((0, [disk.len() as u64 / SECTOR, FLAG_FLUSH])),
                Op::Read { sector, len, .. } => {
                    let at = (sector * SECTOR) as usize;
                    self.window
                        .write_bytes(0, &disk[at..at + len as usize])
                        .ok()?;
                }
                Op::Write { sector, len, .. } => {
                    let at = (sector * SECTOR) as usize;
                    self.window
                        .read_bytes(0, &mut disk[at..at + len as usize])
                        .ok()?;
                }
                Op::Flush => {}
            }
            Some((0, [0; 2]))
        }
    }

    fn fake(window_words: usize, fail_from: usize) -> &'static FakeDriver<'static> {
        let words: &'static [AtomicU64] =
            Vec::leak((0..window_words).map(|_| AtomicU64::new(0)).collect());
        Box::leak(Box::new(FakeDriver {
            disk: RefCell::new(std::vec![0; 64 * 1024]),
            window: Region::from_atomics(words, Perms::RW),
            calls: RefCell::new(Vec::new()),
            fail_from,
        }))
    }

    #[test]
    fn transfers_larger_than_the_window_go_in_window_sized_calls() {
        let driver = fake(1024 / 8, usize::MAX);
        let b = ServiceBackend::connect(driver, driver.window).unwrap();
        assert_eq!((b.block_count(), b.read_only()), (128, false));
        let pattern: Vec<u8> = (0..3072u32).map(|i| (i % 251) as u8).collect();
        b.write(1024, &pattern).unwrap();
        assert_eq!(&driver.disk.borrow()[1024..4096], &pattern[..]);
        let mut back = std::vec![0u8; 3072];
        b.read(1024, &mut back).unwrap();
        assert_eq!(back, pattern);
        b.flush().unwrap();
        let calls = driver.calls.borrow();
        let writes: Vec<_> = calls
            .iter()
            .filter_map(|op| match op {
                Op::Write { sector, len, .. } => Some((*sector, *len)),
                _ => None,
            })
            .collect();
        assert_eq!(writes, [(2, 1024), (4, 1024), (6, 1024)]);
        assert_eq!(calls.last(), Some(&Op::Flush));
    }

    #[test]
    fn failures_and_ranges_become_backend_errors() {
        let driver = fake(1024 / 8, 1);
        let b = ServiceBackend::connect(driver, driver.window).unwrap();
        let mut buf = [0u8; 512];
        assert_eq!(b.read(0, &mut buf), Err(BackendError::Read));
        assert_eq!(b.write(0, &buf), Err(BackendError::Write));
        assert_eq!(b.flush(), Err(BackendError::Flush));
        assert_eq!(b.read(64 * 1024, &mut buf), Err(BackendError::OutOfRange));
        // A driver that does not answer the geometry gives no backend.
        let silent = fake(1024 / 8, 0);
        assert!(ServiceBackend::connect(silent, silent.window).is_none());
    }
}
