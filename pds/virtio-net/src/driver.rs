//! Bringing a virtio-net function up and moving frames through its receive and
//! transmit queues (virtio 1.x, 5.1).

use virtio::{Buffer, Bus, Dma, Queue, Transport};

use crate::header::{self, NetHeader, HEADER_LEN};
use crate::Error;

const F_MAC: u64 = 1 << 5;
/// The device window holds the MAC (and, with STATUS, the link state we do not ask for).
const DEVICE_LEN: u64 = 6;
const RX: u16 = 0;
const TX: u16 = 1;

/// Entries per queue: a frame per slot, so this many frames in flight each way.
pub const QUEUE_SIZE: u16 = 32;
/// One slot's buffer: the header and a 1514-byte frame (1518 with a VLAN tag) fit.
pub const BUF_LEN: usize = 2048;
pub const MAX_FRAME: usize = BUF_LEN - HEADER_LEN;
/// Both queues' rings live in the first page, the buffers after it.
const BUFFERS: usize = 4096;
/// The DMA region the driver needs: the rings' page, then each queue's buffers.
pub const DMA_LEN: usize = BUFFERS + 2 * QUEUE_SIZE as usize * BUF_LEN;

/// Frames the driver dropped, by cause.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rx_runt: u64,
    pub rx_offload: u64,
    /// Received frames longer than the caller's buffer.
    pub rx_too_long: u64,
}

/// A running virtio-net device: registers, the DMA region with both queues and
/// their buffers, the MAC it reported.
pub struct Driver<B: Bus, D: Dma> {
    transport: Transport<B>,
    dma: D,
    rx: Queue,
    tx: Queue,
    mac: Option<[u8; 6]>,
    stats: Stats,
}

impl<B: Bus, D: Dma> core::fmt::Debug for Driver<B, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("mac", &self.mac)
            .field("rx_posted", &self.rx.split.in_flight())
            .field("tx_in_flight", &self.tx.split.in_flight())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<B: Bus, D: Dma> Driver<B, D> {
    /// Finds the registers, negotiates, sets both queues up in `dma` (at least
    /// [`DMA_LEN`] bytes), gives every receive buffer to the device and starts
    /// it. On an error the device is left FAILED where we got that far.
    pub fn init(bus: B, dma: D) -> Result<Self, Error> {
        let mut transport = Transport::new(bus, DEVICE_LEN)?;
        match Self::start(&mut transport, &dma) {
            Ok((rx, tx, mac)) => {
                let mut d = Self {
                    transport,
                    dma,
                    rx,
                    tx,
                    mac,
                    stats: Stats::default(),
                };
                for slot in 0..d.rx.split.slots() {
                    d.post_rx(slot);
                }
                d.transport.notify(&d.rx);
                d.transport.driver_ok();
                Ok(d)
            }
            Err(e) => {
                transport.fail();
                Err(e)
            }
        }
    }

    fn start(
        transport: &mut Transport<B>,
        dma: &D,
    ) -> Result<(Queue, Queue, Option<[u8; 6]>), Error> {
        if dma.len() < DMA_LEN {
            return Err(Error::DmaTooSmall);
        }
        let accepted = transport.negotiate(F_MAC)?;
        let rx = transport.queue(RX, dma, 0, QUEUE_SIZE, 1)?;
        let tx_at = rx.split.areas().3.next_multiple_of(16);
        let tx = transport.queue(TX, dma, tx_at, QUEUE_SIZE, 1)?;
        if tx.split.areas().3 > BUFFERS {
            return Err(Error::DmaTooSmall);
        }
        let mac = if accepted & F_MAC != 0 {
            Some(transport.device_config(|bus, dev| {
                core::array::from_fn(|i| bus.read(dev.bar, dev.offset + i as u64, 1) as u8)
            })?)
        } else {
            None
        };
        Ok((rx, tx, mac))
    }

    /// The MAC the device reported (None if it offered none).
    pub fn mac(&self) -> Option<[u8; 6]> {
        self.mac
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn buffer(&self, queue: u16, slot: usize) -> usize {
        let per_queue = usize::from(QUEUE_SIZE) * BUF_LEN;
        BUFFERS + usize::from(queue) * per_queue + slot * BUF_LEN
    }

    fn post_rx(&mut self, slot: usize) {
        let at = self.buffer(RX, slot);
        let buf = Buffer {
            addr: self.dma.bus_addr() + at as u64,
            len: BUF_LEN as u32,
            device_writes: true,
        };
        self.rx.split.post(&mut self.dma, slot, &[buf]);
    }

    /// Copies the next received frame into `out`: its length, or `None` when
    /// nothing waits. Frames the header or `out` cannot take are dropped and
    /// counted; an error means the device broke the ring and is not used again.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        let mut reposted = false;
        let result = loop {
            let Some((slot, written)) = self.rx.split.take_used(&self.dma)? else {
                break None;
            };
            let written = written as usize;
            if written < HEADER_LEN {
                return Err(Error::UsedLen(written as u32));
            }
            let mut buf = [0u8; BUF_LEN];
            self.dma.read(self.buffer(RX, slot), &mut buf[..written]);
            self.post_rx(slot);
            reposted = true;
            match header::rx_frame(&buf, written) {
                Ok(frame) => match out.get_mut(..frame.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(&buf[frame.clone()]);
                        break Some(frame.len());
                    }
                    None => self.stats.rx_too_long += 1,
                },
                Err(header::Drop::Runt) => self.stats.rx_runt += 1,
                Err(header::Drop::Offload) => self.stats.rx_offload += 1,
            }
        };
        if reposted {
            self.transport.notify(&self.rx);
        }
        Ok(result)
    }

    /// Queues `frame` for the wire: false when every transmit slot is in flight.
    /// A frame shorter than an Ethernet header or longer than [`MAX_FRAME`] is
    /// refused.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<bool, Error> {
        if !(header::MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            return Err(Error::OutOfRange);
        }
        self.reclaim_tx()?;
        let Some(slot) = self.tx.split.free_slot() else {
            return Ok(false);
        };
        let at = self.buffer(TX, slot);
        self.dma.write(at, &NetHeader::default().bytes());
        self.dma.write(at + HEADER_LEN, frame);
        let buf = Buffer {
            addr: self.dma.bus_addr() + at as u64,
            len: (HEADER_LEN + frame.len()) as u32,
            device_writes: false,
        };
        self.tx.split.post(&mut self.dma, slot, &[buf]);
        self.transport.notify(&self.tx);
        Ok(true)
    }

    /// Frees the transmit slots the device is done with.
    pub fn reclaim_tx(&mut self) -> Result<usize, Error> {
        let mut n = 0;
        while self.tx.split.take_used(&self.dma)?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Whether [`Self::transmit`] would take a frame now.
    pub fn can_transmit(&mut self) -> Result<bool, Error> {
        self.reclaim_tx()?;
        Ok(self.tx.split.free_slot().is_some())
    }

    /// Frames still in the transmit queue.
    pub fn tx_in_flight(&self) -> usize {
        self.tx.split.in_flight()
    }

    /// Reads (and so clears) the ISR after an interrupt.
    pub fn ack_interrupt(&mut self) -> Result<u8, Error> {
        self.transport.ack_interrupt()
    }

    pub fn dma_mut(&mut self) -> &mut D {
        &mut self.dma
    }
}
