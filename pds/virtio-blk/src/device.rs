//! Bringing a virtio-blk function up (virtio 1.x, 3.1.1: reset, ACKNOWLEDGE,
//! DRIVER, features, FEATURES_OK, queue 0, DRIVER_OK) and its requests (5.2.6:
//! a header the device reads, the data, a status byte it writes).

use virtio::{Buffer, Bus, Dma, Queue, Transport};

use crate::{Error, SECTOR};

const F_RO: u64 = 1 << 5;
const F_FLUSH: u64 = 1 << 9;
/// What we accept if offered; anything else stays off.
const WANTED: u64 = F_RO | F_FLUSH;
/// Each request: header, data, status.
pub const SLOT_DESCRIPTORS: u16 = 3;
/// type, reserved, sector
const HEADER_LEN: usize = 16;
/// The device window holds the u64 capacity.
const DEVICE_LEN: u64 = 8;

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
    transport: Transport<B>,
    dma: D,
    queue: Queue,
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
            .field("layout", &self.transport.layout())
            .field("geometry", &self.geometry)
            .field("in_flight", &self.queue.split.in_flight())
            .finish_non_exhaustive()
    }
}

impl<B: Bus, D: Dma> Driver<B, D> {
    /// Finds the registers, negotiates, sets up queue 0 in `dma` and starts the
    /// device; requests move data through `data`. On an error the device is left
    /// FAILED where we got that far.
    pub fn init(bus: B, dma: D, data: DataWindow) -> Result<Self, Error> {
        if data.len == 0 || data.bus_addr.checked_add(data.len).is_none() {
            return Err(Error::OutOfRange);
        }
        let mut transport = Transport::new(bus, DEVICE_LEN)?;
        match Self::start(&mut transport, &dma) {
            Ok((queue, geometry)) => {
                let headers = queue.split.areas().3.next_multiple_of(HEADER_LEN);
                Ok(Self {
                    transport,
                    dma,
                    statuses: headers + HEADER_LEN * queue.split.slots(),
                    queue,
                    geometry,
                    headers,
                    data,
                })
            }
            Err(e) => {
                transport.fail();
                Err(e)
            }
        }
    }

    fn start(transport: &mut Transport<B>, dma: &D) -> Result<(Queue, Geometry), Error> {
        let accepted = transport.negotiate(WANTED)?;
        let queue = transport.queue(0, dma, 0, virtio::MAX_SIZE, SLOT_DESCRIPTORS)?;
        let slots = queue.split.slots();
        let statuses = queue.split.areas().3.next_multiple_of(HEADER_LEN) + HEADER_LEN * slots;
        if statuses + slots > dma.len() {
            return Err(Error::DmaTooSmall);
        }
        // The capacity, read until the config generation holds still across it.
        let sectors = transport.device_config(|bus, dev| {
            let lo = bus.read(dev.bar, dev.offset, 4);
            let hi = bus.read(dev.bar, dev.offset + 4, 4);
            (hi << 32) | (lo & 0xffff_ffff)
        })?;
        transport.driver_ok();
        Ok((
            queue,
            Geometry {
                sectors,
                read_only: accepted & F_RO != 0,
                flush: accepted & F_FLUSH != 0,
            },
        ))
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
        self.queue.split.in_flight()
    }

    /// Queues `req` and rings the doorbell; the slot names its completion.
    pub fn submit(&mut self, req: Request) -> Result<usize, Error> {
        let slot = self.queue.split.free_slot().ok_or(Error::Busy)?;
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
            Some(d) => self.queue.split.post(&mut self.dma, slot, &[head, d, tail]),
            None => self.queue.split.post(&mut self.dma, slot, &[head, tail]),
        }
        self.transport.notify(&self.queue);
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
        let Some((slot, _len)) = self.queue.split.take_used(&self.dma)? else {
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
        self.transport.ack_interrupt()
    }
}
