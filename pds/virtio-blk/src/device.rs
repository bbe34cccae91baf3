//! Bringing a virtio-blk function up (virtio 1.x, 3.1.1: reset, ACKNOWLEDGE,
//! DRIVER, features, FEATURES_OK, queue 0, DRIVER_OK) and its requests (5.2.6:
//! a header the device reads, the data, a status byte it writes).

use crate::bus::{Bus, Dma};
use crate::caps::{self, Layout, Window};
use crate::queue::{Buffer, Split, MAX_SIZE};
use crate::{Error, SECTOR};

/// Common configuration registers (4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0c;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const CONFIG_GENERATION: u64 = 0x15;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

mod status {
    pub const ACKNOWLEDGE: u64 = 1;
    pub const DRIVER: u64 = 2;
    pub const DRIVER_OK: u64 = 4;
    pub const FEATURES_OK: u64 = 8;
    pub const NEEDS_RESET: u64 = 0x40;
    pub const FAILED: u64 = 0x80;
}

const F_RO: u64 = 1 << 5;
const F_FLUSH: u64 = 1 << 9;
const F_VERSION_1: u64 = 1 << 32;
/// What we accept if offered; anything else stays off.
const WANTED: u64 = F_VERSION_1 | F_RO | F_FLUSH;

const PCI_COMMAND: u8 = 0x04;
/// The device decodes its BARs and may master the bus (DMA).
const COMMAND_MEMORY_AND_MASTER: u32 = (1 << 1) | (1 << 2);
/// No MSI-X vector: the queue interrupts through INTx.
const NO_VECTOR: u64 = 0xffff;
/// (register reads before we stop waiting for a reset, capacity reads while
/// the config generation keeps changing)
const PATIENCE: (u32, u32) = (1_000_000, 16);
/// type, reserved, sector
const HEADER_LEN: usize = 16;

/// What the disk is, as the device said when we brought it up.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    pub read_only: bool,
    /// FLUSH was negotiated; without it the device writes through, so a flush
    /// has nothing to do.
    pub flush: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Read,
    Write,
    Flush,
}

/// `len` bytes at `data_offset` of the data window, to or from `sector`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: RequestKind,
    pub sector: u64,
    pub data_offset: usize,
    pub len: u32,
}

/// The device's verdict (5.2.6).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    IoError,
    Unsupported,
    /// Not a status the spec defines (or the byte was never written).
    Other(u8),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What [`Driver::submit`] returned for the request.
    pub slot: usize,
    pub status: Status,
}

/// A running virtio-blk device: its registers, the DMA region it owns (the queue,
/// request headers and status bytes), the data window requests name (memory
/// the driver never touches itself: only the device and the client PD do) and
/// the geometry.
pub struct Driver<B: Bus, D: Dma> {
    bus: B,
    dma: D,
    layout: Layout,
    queue: Split,
    notify_at: u64,
    geometry: Geometry,
    headers: usize,
    statuses: usize,
    data: DataWindow,
}

/// Where request data lives on the bus: `len` bytes at `bus_addr`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DataWindow {
    pub bus_addr: u64,
    pub len: u64,
}

impl<B: Bus, D: Dma> core::fmt::Debug for Driver<B, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("layout", &self.layout)
            .field("geometry", &self.geometry)
            .field("in_flight", &self.queue.in_flight())
            .finish_non_exhaustive()
    }
}

impl<B: Bus, D: Dma> Driver<B, D> {
    /// Finds the registers, negotiates, sets up queue 0 in `dma` and starts the
    /// device; requests move data through `data`. On an error the device is left
    /// FAILED where we got that far.
    pub fn init(mut bus: B, dma: D, data: DataWindow) -> Result<Self, Error> {
        if data.len == 0 || data.bus_addr.checked_add(data.len).is_none() {
            return Err(Error::OutOfRange);
        }
        let layout = caps::find(&mut bus)?;
        let command = bus.config_read(PCI_COMMAND, 2)?;
        bus.config_write(PCI_COMMAND, 2, command | COMMAND_MEMORY_AND_MASTER)?;
        let mut d = Self {
            bus,
            dma,
            layout,
            queue: Split::new(0, 0),
            notify_at: 0,
            geometry: Geometry {
                sectors: 0,
                read_only: false,
                flush: false,
            },
            headers: 0,
            statuses: 0,
            data,
        };
        let result = d.start();
        if result.is_err() {
            let now = d.common(common::DEVICE_STATUS, 1);
            d.set_common(common::DEVICE_STATUS, 1, now | status::FAILED);
        }
        result.map(|()| d)
    }

    fn start(&mut self) -> Result<(), Error> {
        self.set_common(common::DEVICE_STATUS, 1, 0);
        let mut polls = 0;
        while self.common(common::DEVICE_STATUS, 1) != 0 {
            polls += 1;
            if polls > PATIENCE.0 {
                return Err(Error::ResetTimeout);
            }
        }
        self.add_status(status::ACKNOWLEDGE | status::DRIVER);
        let offered = self.features();
        if offered & F_VERSION_1 == 0 {
            return Err(Error::NotModern);
        }
        let accepted = offered & WANTED;
        for half in 0..2u64 {
            self.set_common(common::DRIVER_FEATURE_SELECT, 4, half);
            self.set_common(
                common::DRIVER_FEATURE,
                4,
                (accepted >> (32 * half)) & 0xffff_ffff,
            );
        }
        self.add_status(status::FEATURES_OK);
        if self.common(common::DEVICE_STATUS, 1) & status::FEATURES_OK == 0 {
            return Err(Error::FeaturesRejected);
        }
        self.setup_queue()?;
        self.geometry = Geometry {
            sectors: self.capacity()?,
            read_only: accepted & F_RO != 0,
            flush: accepted & F_FLUSH != 0,
        };
        self.add_status(status::DRIVER_OK);
        Ok(())
    }

    fn features(&mut self) -> u64 {
        let mut f = 0;
        for half in 0..2u64 {
            self.set_common(common::DEVICE_FEATURE_SELECT, 4, half);
            f |= self.common(common::DEVICE_FEATURE, 4) << (32 * half);
        }
        f
    }

    fn setup_queue(&mut self) -> Result<(), Error> {
        self.set_common(common::QUEUE_SELECT, 2, 0);
        let max = self.common(common::QUEUE_SIZE, 2) as u16;
        // Split queue sizes are powers of two (2.7); we need room for a slot.
        if max < crate::queue::SLOT_DESCRIPTORS || !max.is_power_of_two() {
            return Err(Error::QueueSize(max));
        }
        let size = max.min(MAX_SIZE);
        let queue = Split::new(size, 0);
        let (desc, avail, used, end) = queue.areas();
        self.headers = end.next_multiple_of(HEADER_LEN);
        self.statuses = self.headers + HEADER_LEN * queue.slots();
        if self.statuses + queue.slots() > self.dma.len() {
            return Err(Error::DmaTooSmall);
        }
        let off = self.common(common::QUEUE_NOTIFY_OFF, 2);
        let at = off
            .checked_mul(u64::from(self.layout.notify_multiplier))
            .filter(|&at| at.saturating_add(2) <= self.layout.notify.len)
            .ok_or(Error::Capability("notify"))?;
        self.notify_at = self.layout.notify.offset + at;
        self.set_common(common::QUEUE_SIZE, 2, u64::from(size));
        self.set_common(common::QUEUE_MSIX_VECTOR, 2, NO_VECTOR);
        let base = self.dma.bus_addr();
        for (reg, off) in [
            (common::QUEUE_DESC, desc),
            (common::QUEUE_DRIVER, avail),
            (common::QUEUE_DEVICE, used),
        ] {
            let addr = base + off as u64;
            self.set_common(reg, 4, addr & 0xffff_ffff);
            self.set_common(reg + 4, 4, addr >> 32);
        }
        self.set_common(common::QUEUE_ENABLE, 2, 1);
        self.queue = queue;
        Ok(())
    }

    /// The capacity, read until the config generation holds still across it.
    fn capacity(&mut self) -> Result<u64, Error> {
        for _ in 0..PATIENCE.1 {
            let before = self.common(common::CONFIG_GENERATION, 1);
            let dev = self.layout.device;
            let lo = self.bus.read(dev.bar, dev.offset, 4);
            let hi = self.bus.read(dev.bar, dev.offset + 4, 4);
            if self.common(common::CONFIG_GENERATION, 1) == before {
                return Ok((hi << 32) | (lo & 0xffff_ffff));
            }
        }
        Err(Error::ConfigUnstable)
    }

    fn add_status(&mut self, bits: u64) {
        let now = self.common(common::DEVICE_STATUS, 1);
        self.set_common(common::DEVICE_STATUS, 1, now | bits);
    }

    fn common(&mut self, reg: u64, width: u8) -> u64 {
        let w: Window = self.layout.common;
        self.bus.read(w.bar, w.offset + reg, width)
    }

    fn set_common(&mut self, reg: u64, width: u8, value: u64) {
        let w: Window = self.layout.common;
        self.bus.write(w.bar, w.offset + reg, width, value);
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The data window requests name their buffers in.
    pub fn data_window(&self) -> DataWindow {
        self.data
    }

    pub fn dma(&self) -> &D {
        &self.dma
    }

    pub fn dma_mut(&mut self) -> &mut D {
        &mut self.dma
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.in_flight()
    }

    /// Queues `req` and rings the doorbell; the slot names its completion.
    pub fn submit(&mut self, req: Request) -> Result<usize, Error> {
        let slot = self.queue.free_slot().ok_or(Error::Busy)?;
        let (kind, data) = match req.kind {
            // VIRTIO_BLK_T_IN, _OUT, _FLUSH
            RequestKind::Read => (0u32, Some(self.data_buffer(req, true)?)),
            RequestKind::Write if self.geometry.read_only => return Err(Error::OutOfRange),
            RequestKind::Write => (1, Some(self.data_buffer(req, false)?)),
            RequestKind::Flush => (4, None),
        };
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header[8..].copy_from_slice(&req.sector.to_le_bytes());
        let header_at = self.headers + HEADER_LEN * slot;
        let status_at = self.statuses + slot;
        self.dma.write(header_at, &header);
        // A device that never writes the status must not look like success.
        self.dma.write(status_at, &[0xff]);
        let base = self.dma.bus_addr();
        let head = Buffer {
            addr: base + header_at as u64,
            len: HEADER_LEN as u32,
            device_writes: false,
        };
        let tail = Buffer {
            addr: base + status_at as u64,
            len: 1,
            device_writes: true,
        };
        match data {
            Some(d) => self.queue.post(&mut self.dma, slot, &[head, d, tail]),
            None => self.queue.post(&mut self.dma, slot, &[head, tail]),
        }
        let n = self.layout.notify;
        self.bus.write(n.bar, self.notify_at, 2, 0);
        Ok(slot)
    }

    fn data_buffer(&self, req: Request, device_writes: bool) -> Result<Buffer, Error> {
        let bytes = u64::from(req.len);
        let fits = req.len != 0
            && bytes.is_multiple_of(SECTOR)
            && (req.data_offset as u64)
                .checked_add(bytes)
                .is_some_and(|e| e <= self.data.len)
            && req
                .sector
                .checked_add(bytes / SECTOR)
                .is_some_and(|e| e <= self.geometry.sectors);
        if !fits {
            return Err(Error::OutOfRange);
        }
        Ok(Buffer {
            addr: self.data.bus_addr + req.data_offset as u64,
            len: req.len,
            device_writes,
        })
    }

    /// The next finished request, if any.
    pub fn poll(&mut self) -> Result<Option<Completion>, Error> {
        let Some((slot, _len)) = self.queue.take_used(&self.dma)? else {
            return Ok(None);
        };
        let mut byte = [0u8];
        self.dma.read(self.statuses + slot, &mut byte);
        let status = match byte[0] {
            0 => Status::Ok,
            1 => Status::IoError,
            2 => Status::Unsupported,
            other => Status::Other(other),
        };
        Ok(Some(Completion { slot, status }))
    }

    /// Reads (and so clears) the ISR after an interrupt; a configuration change
    /// that says the device needs a reset is an error.
    pub fn ack_interrupt(&mut self) -> Result<u8, Error> {
        let isr = self.layout.isr;
        let v = self.bus.read(isr.bar, isr.offset, 1) as u8;
        if v & 2 != 0 && self.common(common::DEVICE_STATUS, 1) & status::NEEDS_RESET != 0 {
            return Err(Error::NeedsReset);
        }
        Ok(v)
    }
}
