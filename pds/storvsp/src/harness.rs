//! An in-process stand-in for the guest side (feature `test-util`): guest RAM in
//! process memory with a pair of real VMBus rings per channel, a storvsp
//! instance served through the device layer's ring path exactly as the PD serves
//! it, and helpers that build requests the way Linux's storvsc does. Used by the
//! table tests, the fuzz target and benchmarks.

use std::boxed::Box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::vec::Vec;

use ipc::{Perms, Region};
use isolation::GuestMemory;
use storvsp_protocol::{DataDirection, Operation, ProtocolVersion, VersionPayload};
use vmbus_device::{serve, PacketBuf, RingBroken, RingTransport, Served};
use vmbus_protocol::Relid;
use vmbus_ring::{
    GpaRangeRef, GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket,
    OutgoingRing, RingMem,
};
use zerocopy::IntoBytes;

use crate::backend::Backend;
use crate::data_buffer::pages_needed;
use crate::device::StorvspChannel;
use crate::scsi::{Controller, DiskConfig, ScsiAddress, ScsiDisk};
use crate::state_machine::{Completion, NoSubChannels, Storvsp, StorvspConfig, SubChannels};

const PAGE_SIZE: usize = hvdef::HV_PAGE_SIZE as usize;
/// Channels a harness has rings for (0 is the primary).
pub const CHANNELS: u16 = 4;
/// Pages of one ring: the control page and three data pages.
const RING_PAGES: u64 = 4;

/// Where an SRB's data buffer is.
#[derive(Clone, Debug)]
pub enum Buffer {
    /// No page list (an in-band packet).
    None,
    /// Guest pages `first..` contiguous, starting `offset` bytes into the first.
    Pages {
        first: u64,
        offset: u32,
        byte_count: u32,
    },
    /// An explicit page list.
    List {
        pfns: Vec<u64>,
        offset: u32,
        byte_count: u32,
    },
}

/// One SRB as a test describes it.
#[derive(Clone, Debug)]
pub struct Srb {
    pub addr: ScsiAddress,
    pub cdb: Vec<u8>,
    pub dir: DataDirection,
    pub data_transfer_length: u32,
    pub buffer: Buffer,
}

impl Srb {
    /// Data-in (`dir` READ) of `len` bytes into guest pages from page `first`.
    pub fn read(cdb: &[u8], len: u32, first: u64) -> Self {
        Self {
            addr: ScsiAddress::default(),
            cdb: cdb.to_vec(),
            dir: DataDirection::READ,
            data_transfer_length: len,
            buffer: Buffer::Pages {
                first,
                offset: 0,
                byte_count: len,
            },
        }
    }

    /// Data-out of `len` bytes from guest pages from page `first`.
    pub fn write(cdb: &[u8], len: u32, first: u64) -> Self {
        Self {
            dir: DataDirection::WRITE,
            ..Self::read(cdb, len, first)
        }
    }

    /// No data.
    pub fn none(cdb: &[u8]) -> Self {
        Self {
            addr: ScsiAddress::default(),
            cdb: cdb.to_vec(),
            dir: DataDirection::UNKNOWN,
            data_transfer_length: 0,
            buffer: Buffer::None,
        }
    }

    /// The `vstor_packet` Linux would send for it.
    pub fn payload(&self) -> [u8; 64] {
        let mut req = storvsc_client::wire::srb(&self.cdb, self.dir, self.data_transfer_length);
        req.path_id = self.addr.path;
        req.target_id = self.addr.target;
        req.lun = self.addr.lun;
        storvsc_client::wire::srb_payload_of(&req)
    }

    /// The page list: `(byte_count, byte_offset, pfns)`. An empty buffer goes
    /// in-band, as Linux sends it (the ring format has no empty range).
    pub fn pages(&self) -> Option<(u32, u32, Vec<u64>)> {
        match &self.buffer {
            Buffer::None
            | Buffer::Pages { byte_count: 0, .. }
            | Buffer::List { byte_count: 0, .. } => None,
            Buffer::Pages {
                first,
                offset,
                byte_count,
            } => {
                let pages = pages_needed(*offset, *byte_count) as u64;
                Some((*byte_count, *offset, (*first..first + pages).collect()))
            }
            Buffer::List {
                pfns,
                offset,
                byte_count,
            } => Some((*byte_count, *offset, pfns.clone())),
        }
    }
}

/// Channel `channel`'s guest-to-host (`false`) or host-to-guest ring, in the
/// pages above the data pages.
fn ring(
    ram: &[AtomicU64],
    ram_pages: usize,
    channel: u16,
    to_guest: bool,
) -> GpadlRingMem<'_, Vec<u64>> {
    let first =
        ram_pages as u64 + (u64::from(channel % CHANNELS) * 2 + u64::from(to_guest)) * RING_PAGES;
    GpadlRingMem::new(
        Region::from_atomics(ram, Perms::RW),
        (first..first + RING_PAGES).collect(),
    )
    .expect("ring pages inside RAM")
}

pub struct Harness {
    ram: Vec<AtomicU64>,
    ram_pages: usize,
    pub vsp: Storvsp,
    pub subchannels: Box<dyn SubChannels>,
    next_id: u64,
    buf: PacketBuf,
    reply: Vec<u8>,
    /// Channels whose rings broke (and were set up afresh).
    pub broken_rings: u64,
}

ipc::debug_fields!(Harness: ram_pages, vsp);

impl Harness {
    /// A controller with one disk at 0:0:0 and `ram_pages` pages of guest RAM at
    /// guest physical address 0 (the rings sit in further pages above them).
    pub fn new(backend: Box<dyn Backend + Send>, ram_pages: usize) -> Self {
        Self::with_disk(ScsiDisk::new(backend, DiskConfig::default()), ram_pages)
    }

    pub fn with_disk(disk: ScsiDisk, ram_pages: usize) -> Self {
        let mut controller = Controller::new();
        // A fresh controller has no disks, so attaching cannot collide.
        let _ = controller.attach(ScsiAddress::default(), disk);
        Self::with_controller(controller, ram_pages)
    }

    pub fn with_controller(controller: Controller, ram_pages: usize) -> Self {
        let config = StorvspConfig::default();
        let ring_pages = usize::from(CHANNELS) * 2 * RING_PAGES as usize;
        let h = Self {
            ram: (0..(ram_pages + ring_pages) * PAGE_SIZE / 8)
                .map(|_| AtomicU64::new(0))
                .collect(),
            ram_pages,
            vsp: Storvsp::new(controller, config),
            subchannels: Box::new(NoSubChannels),
            next_id: 1,
            buf: PacketBuf::new(crate::device::limits(&config)),
            reply: Vec::new(),
            broken_rings: 0,
        };
        for channel in 0..CHANNELS {
            h.reset_rings(channel);
        }
        h
    }

    pub fn ram_pages(&self) -> usize {
        self.ram_pages
    }

    /// The guest RAM data buffers may use (not the rings).
    pub fn ram(&self) -> Region<'_> {
        Region::from_atomics(&self.ram, Perms::RW)
            .subregion(0, self.ram_pages * PAGE_SIZE)
            .expect("RAM holds its data pages")
    }

    pub fn write_guest(&self, gpa: u64, data: &[u8]) {
        // Tests choose addresses inside RAM; a bad one is a test bug.
        self.ram()
            .write_bytes(gpa as usize, data)
            .expect("test wrote outside guest RAM");
    }

    pub fn read_guest(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut out = std::vec![0u8; len];
        self.ram()
            .read_bytes(gpa as usize, &mut out)
            .expect("test read outside guest RAM");
        out
    }

    fn ring(&self, channel: u16, to_guest: bool) -> GpadlRingMem<'_, Vec<u64>> {
        ring(&self.ram, self.ram_pages, channel, to_guest)
    }

    /// Zeroes and initializes both rings of `channel`, as a guest does before OPEN.
    fn reset_rings(&self, channel: u16) {
        for to_guest in [false, true] {
            let ring = self.ring(channel, to_guest);
            for offset in (0..ring.data_len()).step_by(8) {
                let _ = ring.write_word(offset, 0);
            }
            ring.control().initialize();
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Writes a packet into `channel`'s guest-to-host ring without serving it;
    /// `false` if the ring has no room.
    pub fn queue(&mut self, channel: u16, packet: &OutgoingPacket<'_>, payload: &[u8]) -> bool {
        let Ok(mut ring) = OutgoingRing::new(self.ring(channel, false)) else {
            return false;
        };
        ring.write_packet(packet, &[payload]).is_ok() && ring.commit().is_ok()
    }

    /// Writes raw bytes as the next packet of `channel`'s guest-to-host ring (a
    /// trailer is added), whatever they say: how a hostile guest fills its ring.
    pub fn queue_raw(&mut self, channel: u16, raw: &[u8]) -> bool {
        let ring = self.ring(channel, false);
        let size = ring.data_len();
        let control = ring.control();
        let write = control.write_index().load(Ordering::SeqCst) as usize;
        let read = control.read_index().load(Ordering::SeqCst) as usize;
        let mut bytes = raw.to_vec();
        bytes.resize(raw.len().next_multiple_of(8), 0);
        bytes.extend_from_slice(&((write as u64) << 32).to_le_bytes());
        let used = (write + size - read % size) % size;
        if write >= size || used + bytes.len() >= size {
            return false;
        }
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let at = (write + i * 8) % size;
            if ring.write_data(at, chunk).is_err() {
                return false;
            }
        }
        let next = (write + bytes.len()) % size;
        control.write_index().store(next as u32, Ordering::SeqCst);
        true
    }

    /// Serves `channel` as the PD does when the guest signals. A ring that broke
    /// is set up afresh, as a guest reopening the channel would.
    pub fn serve(&mut self, channel: u16) -> Result<Served, RingBroken> {
        let ram = Region::from_atomics(&self.ram, Perms::RW);
        let mem = GuestMemory::private(
            0,
            ram.subregion(0, self.ram_pages * PAGE_SIZE)
                .expect("data pages"),
        )
        .expect("page-sized RAM");
        let up = ring(&self.ram, self.ram_pages, channel, false);
        let down = ring(&self.ram, self.ram_pages, channel, true);
        let mut rings = RingTransport::new(up, down).expect("initialized rings");
        let mut device = StorvspChannel {
            vsp: &mut self.vsp,
            subchannels: self.subchannels.as_mut(),
            index: channel,
        };
        let result = serve(
            &mut device,
            Relid(u32::from(channel)),
            &mut rings,
            &mem,
            &mut self.buf,
            &mut self.reply,
        );
        if result.is_err() {
            self.broken_rings += 1;
            self.reset_rings(channel);
        }
        result
    }

    /// Takes every completion the VSP wrote on `channel`, as the guest reads them.
    pub fn completions(&mut self, channel: u16) -> Vec<Completion> {
        let mut out = Vec::new();
        let Ok(mut ring) = IncomingRing::new(self.ring(channel, true)) else {
            return out;
        };
        while let Ok(p) = ring.read() {
            if p.kind != IncomingKind::Completion {
                continue;
            }
            let mut bytes = [0u8; 64];
            let n = ring.copy_from(&p.payload, 0, &mut bytes).unwrap_or(0);
            out.push(Completion::from_wire(p.transaction_id, &bytes[..n]));
        }
        let _ = ring.commit();
        out
    }

    /// Sends a packet on `channel` and serves it: its completion, if any.
    pub fn send_packet(
        &mut self,
        channel: u16,
        packet: &OutgoingPacket<'_>,
        payload: &[u8],
    ) -> Result<Option<Completion>, RingBroken> {
        assert!(self.queue(channel, packet, payload), "ring has room");
        self.serve(channel)?;
        Ok(self.completions(channel).pop())
    }

    /// Sends raw packet bytes on `channel` and serves them.
    pub fn send_raw(&mut self, channel: u16, raw: &[u8]) -> Result<Option<Completion>, RingBroken> {
        if !self.queue_raw(channel, raw) {
            return Ok(None);
        }
        self.serve(channel)?;
        Ok(self.completions(channel).pop())
    }

    /// An in-band packet with `payload` that asks for a completion.
    pub fn send_in_band(&mut self, channel: u16, id: u64, payload: &[u8]) -> Option<Completion> {
        let packet = OutgoingPacket {
            transaction_id: id,
            completion_requested: true,
            kind: OutgoingKind::InBand,
        };
        self.send_packet(channel, &packet, payload)
            .expect("a well-formed packet keeps the ring sound")
    }

    /// A control operation with `body` after the header, in a 64-byte packet.
    pub fn control_on(&mut self, channel: u16, op: Operation, body: &[u8]) -> Completion {
        let p = storvsc_client::wire::control_payload(op, body);
        let id = self.id();
        let c = self
            .send_in_band(channel, id, &p)
            .expect("completion requested");
        assert_eq!(c.transaction_id, id);
        c
    }

    pub fn control(&mut self, op: Operation, body: &[u8]) -> Completion {
        self.control_on(0, op, body)
    }

    /// Runs Linux's negotiation, offering `versions` newest first; returns the
    /// version accepted.
    pub fn negotiate_with(&mut self, versions: &[ProtocolVersion]) -> Option<ProtocolVersion> {
        let c = self.control(Operation::BEGIN_INITIALIZATION, &[]);
        assert_eq!(c.header().status.0, 0);
        let mut chosen = None;
        for v in versions {
            let body = VersionPayload {
                major_minor: v.0,
                revision: 0,
            };
            let c = self.control(Operation::QUERY_PROTOCOL_VERSION, body.as_bytes());
            assert_eq!(c.header().operation, Operation::COMPLETE_IO);
            if c.header().status.0 == 0 {
                chosen = Some(*v);
                break;
            }
        }
        chosen?;
        let c = self.control(Operation::QUERY_PROPERTIES, &[]);
        assert_eq!(c.header().status.0, 0);
        let c = self.control(Operation::END_INITIALIZATION, &[]);
        assert_eq!(c.header().status.0, 0);
        chosen
    }

    /// Negotiates the way a current Linux does.
    pub fn negotiate(&mut self) {
        let v = self.negotiate_with(&ProtocolVersion::SUPPORTED);
        assert_eq!(v, Some(ProtocolVersion::WIN10));
    }

    /// Sends `payload` with `srb`'s page list (if any) on `channel`, as Linux does:
    /// GPA-direct with one range, or in-band. `Err` if the ring broke (a page list
    /// the ring format cannot carry is a broken ring, as in the PD).
    pub fn send_srb_payload(
        &mut self,
        channel: u16,
        srb: &Srb,
        payload: &[u8],
    ) -> Result<(u64, Option<Completion>), RingBroken> {
        let id = self.id();
        let pages = srb.pages();
        let range;
        let packet = OutgoingPacket {
            transaction_id: id,
            completion_requested: true,
            kind: match &pages {
                None => OutgoingKind::InBand,
                Some((byte_count, byte_offset, pfns)) => {
                    range = [GpaRangeRef {
                        byte_count: *byte_count,
                        byte_offset: *byte_offset,
                        pfns,
                    }];
                    OutgoingKind::GpaDirect(&range)
                }
            },
        };
        if !self.queue(channel, &packet, payload) {
            // The writer refuses what the format cannot say (a page list that
            // does not match its byte range, more pages than a ring holds).
            return Ok((id, None));
        }
        self.serve(channel)?;
        Ok((id, self.completions(channel).pop()))
    }

    pub fn srb_on(&mut self, channel: u16, srb: &Srb) -> Completion {
        let (id, c) = self
            .send_srb_payload(channel, srb, &srb.payload())
            .expect("ring sound");
        let c = c.expect("completion requested");
        assert_eq!(c.transaction_id, id);
        c
    }

    pub fn srb(&mut self, srb: &Srb) -> Completion {
        self.srb_on(0, srb)
    }
}

/// Sense key, ASC, ASCQ of a completion (zeros when no sense came back).
pub fn sense_of(c: &Completion) -> (u8, u8, u8) {
    c.srb().sense()
}

/// A disk in a `Vec`, with counters, for tests and fuzzing.
#[derive(Debug)]
pub struct MemBackend {
    data: std::sync::Mutex<Vec<u8>>,
    pub read_only: bool,
    pub unmap: bool,
    flushes: std::sync::atomic::AtomicU64,
}

impl MemBackend {
    pub fn new(blocks: u64) -> Self {
        Self {
            data: std::sync::Mutex::new(std::vec![0u8; blocks as usize * 512]),
            read_only: false,
            unmap: true,
            flushes: AtomicU64::new(0),
        }
    }

    /// A handle that shares the disk, so a test can look at it after handing
    /// the backend to the VSP.
    pub fn shared(blocks: u64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::new(blocks))
    }

    pub fn flushes(&self) -> u64 {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn contents(&self) -> Vec<u8> {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl Backend for MemBackend {
    fn block_count(&self) -> u64 {
        self.data.lock().map(|d| d.len() as u64 / 512).unwrap_or(0)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), crate::backend::BackendError> {
        let d = self
            .data
            .lock()
            .map_err(|_| crate::backend::BackendError::Read)?;
        let s = d
            .get(offset as usize..offset as usize + buf.len())
            .ok_or(crate::backend::BackendError::OutOfRange)?;
        buf.copy_from_slice(s);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), crate::backend::BackendError> {
        if self.read_only {
            return Err(crate::backend::BackendError::ReadOnly);
        }
        let mut d = self
            .data
            .lock()
            .map_err(|_| crate::backend::BackendError::Write)?;
        d.get_mut(offset as usize..offset as usize + data.len())
            .ok_or(crate::backend::BackendError::OutOfRange)?
            .copy_from_slice(data);
        Ok(())
    }

    fn flush(&self) -> Result<(), crate::backend::BackendError> {
        self.flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn unmap_support(&self) -> crate::backend::UnmapSupport {
        if self.unmap && !self.read_only {
            crate::backend::UnmapSupport::Zeroes
        } else {
            crate::backend::UnmapSupport::None
        }
    }

    fn unmap(&self, offset: u64, len: u64) -> Result<(), crate::backend::BackendError> {
        let mut d = self
            .data
            .lock()
            .map_err(|_| crate::backend::BackendError::Write)?;
        d.get_mut(offset as usize..(offset + len) as usize)
            .ok_or(crate::backend::BackendError::OutOfRange)?
            .fill(0);
        Ok(())
    }
}
