//! The protected-call protocol between a block client (storvsp on bare metal)
//! and the virtio-blk driver PD. Data moves through a shared data window the
//! client maps read-write and the device reaches by DMA; the call carries only
//! the operation (the label) and where: message registers `[sector, offset,
//! len]`, `offset` and `len` in bytes of the window. The reply label is a
//! [`Reply`]; GEOMETRY's reply carries `[sectors, flags]`.
//!
//! The client is another PD: [`decode`] checks everything it sends.

use crate::{Bus, Dma, Driver, Error, Request, RequestKind, Status};

/// Call labels.
pub mod label {
    pub const GEOMETRY: u64 = 1;
    pub const READ: u64 = 2;
    pub const WRITE: u64 = 3;
    pub const FLUSH: u64 = 4;
}

/// GEOMETRY reply flags.
pub const FLAG_READ_ONLY: u64 = 1;
pub const FLAG_FLUSH: u64 = 2;

/// A decoded call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Geometry,
    Read { sector: u64, offset: u64, len: u32 },
    Write { sector: u64, offset: u64, len: u32 },
    Flush,
}

/// The reply label.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Reply {
    Ok = 0,
    /// The device reported an I/O error.
    IoError = 1,
    /// The device does not do this.
    Unsupported = 2,
    /// The call was malformed or out of range; the device never saw it.
    BadRequest = 3,
    /// The device stopped answering or broke the protocol; it is not used again.
    DeviceFailed = 4,
}

impl Reply {
    pub fn from_label(label: u64) -> Self {
        match label {
            0 => Self::Ok,
            1 => Self::IoError,
            2 => Self::Unsupported,
            3 => Self::BadRequest,
            _ => Self::DeviceFailed,
        }
    }
}

/// The label and message registers for `op`.
pub fn encode(op: Op) -> (u64, [u64; 3], usize) {
    match op {
        Op::Geometry => (label::GEOMETRY, [0; 3], 0),
        Op::Flush => (label::FLUSH, [0; 3], 0),
        Op::Read {
            sector,
            offset,
            len,
        } => (label::READ, [sector, offset, u64::from(len)], 3),
        Op::Write {
            sector,
            offset,
            len,
        } => (label::WRITE, [sector, offset, u64::from(len)], 3),
    }
}

/// The client's call, or why it is refused. Range checks against the disk and
/// the window are the driver's (it knows both).
pub fn decode(label: u64, mrs: &[u64]) -> Result<Op, Reply> {
    let io = |mrs: &[u64]| match *mrs {
        [sector, offset, len] => u32::try_from(len)
            .map(|len| (sector, offset, len))
            .map_err(|_| Reply::BadRequest),
        _ => Err(Reply::BadRequest),
    };
    match (label, mrs.len()) {
        (label::GEOMETRY, 0) => Ok(Op::Geometry),
        (label::FLUSH, 0) => Ok(Op::Flush),
        (label::READ, _) => io(mrs).map(|(sector, offset, len)| Op::Read {
            sector,
            offset,
            len,
        }),
        (label::WRITE, _) => io(mrs).map(|(sector, offset, len)| Op::Write {
            sector,
            offset,
            len,
        }),
        _ => Err(Reply::BadRequest),
    }
}

/// The driver PD's side: one call at a time, each submitted and polled to its
/// completion (the client waits in its call anyway). A device that breaks the
/// protocol or stops answering is failed for good: every later call gets
/// [`Reply::DeviceFailed`].
#[derive(Debug)]
pub struct Server<B: Bus, D: Dma> {
    driver: Driver<B, D>,
    failed: bool,
    /// Polls of the used ring before a request counts as lost.
    patience: u64,
}

impl<B: Bus, D: Dma> Server<B, D> {
    pub fn new(driver: Driver<B, D>, patience: u64) -> Self {
        Self {
            driver,
            failed: false,
            patience,
        }
    }

    pub fn driver(&mut self) -> &mut Driver<B, D> {
        &mut self.driver
    }

    /// Answers one call: the reply and its message registers.
    pub fn serve(&mut self, label: u64, mrs: &[u64]) -> (Reply, [u64; 2], usize) {
        let op = match decode(label, mrs) {
            Ok(op) => op,
            Err(r) => return (r, [0; 2], 0),
        };
        if self.failed {
            return (Reply::DeviceFailed, [0; 2], 0);
        }
        let geometry = self.driver.geometry();
        let (kind, sector, offset, len) = match op {
            Op::Geometry => {
                let flags = if geometry.read_only {
                    FLAG_READ_ONLY
                } else {
                    0
                } | if geometry.flush { FLAG_FLUSH } else { 0 };
                return (Reply::Ok, [geometry.sectors, flags], 2);
            }
            // Without FLUSH negotiated the device writes through: nothing to do.
            Op::Flush if !geometry.flush => return (Reply::Ok, [0; 2], 0),
            Op::Flush => (RequestKind::Flush, 0, 0, 0),
            Op::Read {
                sector,
                offset,
                len,
            } => (RequestKind::Read, sector, offset, len),
            Op::Write {
                sector,
                offset,
                len,
            } => (RequestKind::Write, sector, offset, len),
        };
        let Ok(data_offset) = usize::try_from(offset) else {
            return (Reply::BadRequest, [0; 2], 0);
        };
        let req = Request {
            kind,
            sector,
            data_offset,
            len,
        };
        // Nothing is in flight between calls: a completion waiting now is a
        // stale or duplicate one, which would pass for the next request's.
        if !matches!(self.driver.poll(), Ok(None)) {
            self.failed = true;
            return (Reply::DeviceFailed, [0; 2], 0);
        }
        let reply = match self.driver.submit(req) {
            Ok(slot) => self.wait(slot),
            Err(Error::OutOfRange) => Reply::BadRequest,
            Err(_) => Reply::DeviceFailed,
        };
        self.failed |= reply == Reply::DeviceFailed;
        (reply, [0; 2], 0)
    }

    fn wait(&mut self, slot: usize) -> Reply {
        for _ in 0..self.patience {
            match self.driver.poll() {
                Ok(None) => core::hint::spin_loop(),
                Ok(Some(c)) if c.slot == slot => {
                    return match c.status {
                        Status::Ok => Reply::Ok,
                        Status::IoError => Reply::IoError,
                        Status::Unsupported => Reply::Unsupported,
                        Status::Other(_) => Reply::DeviceFailed,
                    };
                }
                // One call at a time: any other completion is the device's lie.
                Ok(Some(_)) | Err(_) => return Reply::DeviceFailed,
            }
        }
        Reply::DeviceFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_and_malformed_ones_are_refused() {
        let ops = [
            Op::Geometry,
            Op::Flush,
            Op::Read {
                sector: 7,
                offset: 4096,
                len: 512,
            },
            Op::Write {
                sector: u64::MAX,
                offset: 0,
                len: u32::MAX,
            },
        ];
        for op in ops {
            let (label, mrs, count) = encode(op);
            assert_eq!(decode(label, &mrs[..count]), Ok(op));
        }
        let bad: [(u64, &[u64]); 7] = [
            (0, &[]),
            (label::GEOMETRY, &[1]),
            (label::FLUSH, &[0, 0, 0]),
            (label::READ, &[1, 2]),
            (label::READ, &[1, 2, 3, 4]),
            (label::WRITE, &[1, 2, 1 << 32]),
            (u64::MAX, &[1, 2, 3]),
        ];
        for (label, mrs) in bad {
            assert_eq!(
                decode(label, mrs),
                Err(Reply::BadRequest),
                "{label} {mrs:?}"
            );
        }
        for r in [
            Reply::Ok,
            Reply::IoError,
            Reply::Unsupported,
            Reply::BadRequest,
            Reply::DeviceFailed,
        ] {
            assert_eq!(Reply::from_label(r as u64), r);
        }
        assert_eq!(Reply::from_label(99), Reply::DeviceFailed);
    }
}
