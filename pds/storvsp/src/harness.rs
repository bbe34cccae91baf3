//! An in-process stand-in for the guest side: guest RAM in process memory, a
//! storvsp instance, and helpers that build packets the way Linux's storvsc does.
//! Used by the table tests, the fuzz target and benchmarks.

use std::boxed::Box;
use std::sync::atomic::AtomicU64;
use std::vec::Vec;

use ipc::{Perms, Region};
use zerocopy::{FromZeros, IntoBytes};

use crate::backend::Backend;
use crate::channel::{Completion, NoSubChannels, Storvsp, StorvspConfig, SubChannels};
use crate::guest_mem::RegionGuestMemory;
use crate::packet::{build, PAGE_SIZE};
use crate::protocol::{
    DataDirection, Operation, ProtocolVersion, VersionPayload, VmscsiRequest, VstorHeader,
    REQUEST_COMPLETION_FLAG, SENSE_BUFFER_SIZE, VMSCSI_REQUEST_SIZE,
};
use crate::scsi::{Controller, DiskConfig, ScsiAddress, ScsiDisk};

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
}

pub struct Harness {
    ram: Vec<AtomicU64>,
    pub vsp: Storvsp,
    pub subchannels: Box<dyn SubChannels>,
    next_id: u64,
}

impl core::fmt::Debug for Harness {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Harness")
            .field("ram_pages", &self.ram_pages())
            .field("vsp", &self.vsp)
            .finish()
    }
}

impl Harness {
    /// A controller with one disk at 0:0:0 and `ram_pages` pages of guest RAM at
    /// guest physical address 0.
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
        Self {
            ram: (0..ram_pages * PAGE_SIZE / 8)
                .map(|_| AtomicU64::new(0))
                .collect(),
            vsp: Storvsp::new(controller, StorvspConfig::default()),
            subchannels: Box::new(NoSubChannels),
            next_id: 1,
        }
    }

    pub fn ram_pages(&self) -> usize {
        self.ram.len() * 8 / PAGE_SIZE
    }

    pub fn ram(&self) -> Region<'_> {
        Region::from_atomics(&self.ram, Perms::RW)
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

    /// Hands a raw packet to channel `channel`.
    pub fn send_on(&mut self, channel: u16, raw: &[u8]) -> Option<Completion> {
        let mem = RegionGuestMemory::single(0, Region::from_atomics(&self.ram, Perms::RW))
            .expect("page-sized RAM");
        self.vsp
            .handle_packet(channel, raw, &mem, self.subchannels.as_mut())
    }

    pub fn send(&mut self, raw: &[u8]) -> Option<Completion> {
        self.send_on(0, raw)
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A control operation with `body` after the header, in a 64-byte packet.
    pub fn control_on(&mut self, channel: u16, op: Operation, body: &[u8]) -> Completion {
        let mut p = [0u8; 64];
        let h = VstorHeader {
            operation: op,
            flags: REQUEST_COMPLETION_FLAG,
            status: crate::protocol::NtStatus::SUCCESS,
        };
        p[..12].copy_from_slice(h.as_bytes());
        p[12..12 + body.len()].copy_from_slice(body);
        let id = self.id();
        let raw = build::in_band(id, &p);
        let c = self.send_on(channel, &raw).expect("completion requested");
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

    /// The packet Linux would send for `srb`.
    pub fn srb_packet(&mut self, srb: &Srb) -> (u64, Vec<u8>) {
        let mut req = VmscsiRequest::new_zeroed();
        req.length = VMSCSI_REQUEST_SIZE as u16;
        req.path_id = srb.addr.path;
        req.target_id = srb.addr.target;
        req.lun = srb.addr.lun;
        req.cdb_length = srb.cdb.len().min(255) as u8;
        req.sense_info_length = SENSE_BUFFER_SIZE as u8;
        req.data_in = srb.dir.0;
        req.data_transfer_length = srb.data_transfer_length;
        let n = srb.cdb.len().min(16);
        req.cdb_or_sense[..n].copy_from_slice(&srb.cdb[..n]);
        req.time_out_value = 60;
        let mut payload = [0u8; 64];
        let h = VstorHeader {
            operation: Operation::EXECUTE_SRB,
            flags: REQUEST_COMPLETION_FLAG,
            status: crate::protocol::NtStatus::SUCCESS,
        };
        payload[..12].copy_from_slice(h.as_bytes());
        payload[12..].copy_from_slice(req.as_bytes());
        let id = self.id();
        let raw = match &srb.buffer {
            Buffer::None => build::in_band(id, &payload),
            Buffer::Pages {
                first,
                offset,
                byte_count,
            } => {
                let pages = (*offset as usize + *byte_count as usize).div_ceil(PAGE_SIZE);
                let pfns: Vec<u64> = (0..pages as u64).map(|i| first + i).collect();
                build::gpa_direct(id, *byte_count, *offset, &pfns, &payload)
            }
            Buffer::List {
                pfns,
                offset,
                byte_count,
            } => build::gpa_direct(id, *byte_count, *offset, pfns, &payload),
        };
        (id, raw)
    }

    pub fn srb_on(&mut self, channel: u16, srb: &Srb) -> Completion {
        let (id, raw) = self.srb_packet(srb);
        let c = self.send_on(channel, &raw).expect("completion requested");
        assert_eq!(c.transaction_id, id);
        c
    }

    pub fn srb(&mut self, srb: &Srb) -> Completion {
        self.srb_on(0, srb)
    }
}

/// Sense key, ASC, ASCQ of a completion (zeros when no sense came back).
pub fn sense_of(c: &Completion) -> (u8, u8, u8) {
    let srb = c.srb();
    if srb.sense_info_length == 0 {
        return (0, 0, 0);
    }
    let s = srb.cdb_or_sense;
    (s[2] & 0xf, s[12], s[13])
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

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), crate::BackendError> {
        let d = self.data.lock().map_err(|_| crate::BackendError::Read)?;
        let s = d
            .get(offset as usize..offset as usize + buf.len())
            .ok_or(crate::BackendError::OutOfRange)?;
        buf.copy_from_slice(s);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), crate::BackendError> {
        if self.read_only {
            return Err(crate::BackendError::ReadOnly);
        }
        let mut d = self.data.lock().map_err(|_| crate::BackendError::Write)?;
        d.get_mut(offset as usize..offset as usize + data.len())
            .ok_or(crate::BackendError::OutOfRange)?
            .copy_from_slice(data);
        Ok(())
    }

    fn flush(&self) -> Result<(), crate::BackendError> {
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

    fn unmap(&self, offset: u64, len: u64) -> Result<(), crate::BackendError> {
        let mut d = self.data.lock().map_err(|_| crate::BackendError::Write)?;
        d.get_mut(offset as usize..(offset + len) as usize)
            .ok_or(crate::BackendError::OutOfRange)?
            .fill(0);
        Ok(())
    }
}
