//! A direct-access block device (SBC) over a [`Backend`].

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::cdb::{op, Cdb};
use super::inquiry::{self, Limits};
use super::mode::{self, ModeState};
use super::{ScsiOutcome, Sense};
use crate::backend::{Backend, BackendError, UnmapSupport};
use crate::data_buffer::{DataBuffer, IoSegments};
use storvsp_protocol::DataDirection;

/// Size of the bounce buffer data moves through between guest memory and the
/// backend; larger transfers go in several pieces.
const CHUNK: usize = 128 * 1024;
const MAX_UNMAP_DESCRIPTORS: u32 = 256;
const MAX_UNMAP_BLOCKS: u32 = 0x0010_0000;
const MAX_WRITE_SAME_BLOCKS: u64 = 0x0001_0000;

/// How the disk introduces itself.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    pub vendor: [u8; 8],
    pub product: [u8; 16],
    pub revision: [u8; 4],
    /// Unit serial number (VPD 0x80), ASCII.
    pub serial: Vec<u8>,
    /// Stable identity for VPD 0x83.
    pub disk_id: [u8; 16],
    /// Largest single transfer the guest is told about (VPD 0xB0).
    pub max_transfer_bytes: u32,
    /// Report a volatile write cache, so the guest sends SYNCHRONIZE CACHE.
    pub write_cache: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            // "Msft" lets Linux's storvsc apply its Hyper-V disk quirks.
            vendor: *b"Msft    ",
            product: *b"Virtual Disk    ",
            revision: *b"1.0 ",
            serial: b"0000000000000000".to_vec(),
            disk_id: [0; 16],
            max_transfer_bytes: 512 * 1024,
            write_cache: true,
        }
    }
}

/// One logical unit.
pub struct ScsiDisk {
    backend: Box<dyn Backend + Send>,
    config: DiskConfig,
    block_size: u32,
    block_count: u64,
    scratch: Vec<u8>,
}

ipc::debug_fields!(ScsiDisk: config, block_size, block_count);

fn backend_sense(e: BackendError, writing: bool) -> Sense {
    match e {
        BackendError::NoSpace => Sense::SPACE_ALLOCATION_FAILED,
        BackendError::ReadOnly => Sense::WRITE_PROTECTED,
        BackendError::Read => Sense::UNRECOVERED_READ_ERROR,
        BackendError::Write | BackendError::Flush => Sense::WRITE_ERROR,
        BackendError::OutOfRange if writing => Sense::WRITE_ERROR,
        BackendError::OutOfRange => Sense::UNRECOVERED_READ_ERROR,
    }
}

impl ScsiDisk {
    pub fn new(backend: Box<dyn Backend + Send>, config: DiskConfig) -> Self {
        let block_size = backend.block_size();
        let block_count = backend.block_count();
        Self {
            backend,
            config,
            block_size,
            block_count,
            scratch: vec![0u8; CHUNK],
        }
    }

    pub fn config(&self) -> &DiskConfig {
        &self.config
    }

    pub fn block_count(&self) -> u64 {
        self.block_count
    }

    fn limits(&self) -> Limits {
        Limits {
            max_transfer_blocks: self.config.max_transfer_bytes / self.block_size,
            unmap: self.unmap_enabled(),
            max_unmap_blocks: MAX_UNMAP_BLOCKS,
            max_unmap_descriptors: MAX_UNMAP_DESCRIPTORS,
            max_write_same_blocks: MAX_WRITE_SAME_BLOCKS,
            granularity_blocks: (4096 / self.block_size).max(1) as u16,
        }
    }

    fn unmap_enabled(&self) -> bool {
        self.backend.unmap_support() == UnmapSupport::Zeroes
    }

    /// Runs one command. `dir` is the SRB's data direction, `data` its buffer.
    pub fn execute(
        &mut self,
        cdb: &[u8],
        dir: DataDirection,
        data: &dyn DataBuffer,
    ) -> ScsiOutcome {
        ScsiOutcome::from_result(self.dispatch(cdb, dir, data))
    }

    fn dispatch(
        &mut self,
        cdb: &[u8],
        dir: DataDirection,
        data: &dyn DataBuffer,
    ) -> Result<usize, Sense> {
        let cdb = Cdb::new(cdb)?;
        match cdb.opcode() {
            op::TEST_UNIT_READY => Ok(0),
            op::REQUEST_SENSE => {
                if cdb.bit(1, 0) {
                    return Err(Sense::invalid_cdb_field(1, Some(0)));
                }
                let sense = Sense::NO_SENSE.to_fixed();
                data_in(dir, data, &sense, usize::from(cdb.u8(4)))
            }
            op::INQUIRY => self.inquiry(&cdb, DataPhase(dir, data)),
            op::MODE_SENSE6 | op::MODE_SENSE10 => {
                let state = ModeState {
                    read_only: self.backend.read_only(),
                    write_cache: self.config.write_cache,
                };
                let (bytes, alloc) = mode::mode_sense(&cdb, &state)?;
                data_in(dir, data, &bytes, alloc)
            }
            op::READ_CAPACITY10 => {
                let pmi = cdb.bit(8, 0);
                if !pmi && cdb.u32(2) != 0 {
                    return Err(Sense::invalid_cdb_field(2, None));
                }
                let last = self.block_count.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
                let mut d = [0u8; 8];
                d[0..4].copy_from_slice(&last.to_be_bytes());
                d[4..8].copy_from_slice(&self.block_size.to_be_bytes());
                data_in(dir, data, &d, d.len())
            }
            op::SERVICE_ACTION_IN16 => {
                if cdb.u8(1) & 0x1f != op::SA_READ_CAPACITY16 {
                    return Err(Sense::invalid_cdb_field(1, Some(4)));
                }
                if !cdb.bit(14, 0) && cdb.u64(2) != 0 {
                    return Err(Sense::invalid_cdb_field(2, None));
                }
                let mut d = [0u8; 32];
                d[0..8].copy_from_slice(&self.block_count.saturating_sub(1).to_be_bytes());
                d[8..12].copy_from_slice(&self.block_size.to_be_bytes());
                // Logical blocks per physical block exponent: 4 KiB physical.
                d[13] = (4096 / self.block_size).max(1).trailing_zeros() as u8;
                if self.unmap_enabled() {
                    d[14] = 0x80 | 0x40; // LBPME, LBPRZ
                }
                data_in(dir, data, &d, cdb.u32(10) as usize)
            }
            op::READ6 | op::READ10 | op::READ12 | op::READ16 => {
                let (lba, blocks, fua) = rw_fields(&cdb)?;
                let _ = fua; // reads always see the latest accepted write
                self.io(lba, blocks, dir, data, true)
            }
            op::WRITE6 | op::WRITE10 | op::WRITE12 | op::WRITE16 => {
                let (lba, blocks, fua) = rw_fields(&cdb)?;
                let tx = self.io(lba, blocks, dir, data, false)?;
                if fua && tx > 0 {
                    self.backend.flush().map_err(|e| backend_sense(e, true))?;
                }
                Ok(tx)
            }
            op::SYNCHRONIZE_CACHE10 | op::SYNCHRONIZE_CACHE16 => {
                let (lba, blocks) = if cdb.opcode() == op::SYNCHRONIZE_CACHE10 {
                    (u64::from(cdb.u32(2)), u64::from(cdb.u16(7)))
                } else {
                    (cdb.u64(2), u64::from(cdb.u32(10)))
                };
                self.check_lba(lba, blocks)?;
                self.backend.flush().map_err(|e| backend_sense(e, true))?;
                Ok(0)
            }
            op::UNMAP => self.unmap(&cdb, DataPhase(dir, data)),
            op::WRITE_SAME10 | op::WRITE_SAME16 => self.write_same(&cdb, DataPhase(dir, data)),
            _ => Err(Sense::INVALID_COMMAND_OPCODE),
        }
    }

    fn inquiry(&self, cdb: &Cdb<'_>, phase: DataPhase<'_>) -> Result<usize, Sense> {
        let DataPhase(dir, data) = phase;
        if cdb.bit(1, 1) {
            return Err(Sense::invalid_cdb_field(1, Some(1))); // CMDDT is obsolete
        }
        let alloc = usize::from(cdb.u16(3));
        let page = cdb.u8(2);
        if !cdb.bit(1, 0) {
            if page != 0 {
                return Err(Sense::invalid_cdb_field(2, None));
            }
            let d = inquiry::standard(inquiry::DEVICE_TYPE_DISK, &self.config);
            return data_in(dir, data, &d, alloc);
        }
        let d = inquiry::vpd(page, &self.config, &self.limits())
            .ok_or(Sense::invalid_cdb_field(2, None))?;
        data_in(dir, data, &d, alloc)
    }

    fn byte_len(&self, blocks: u64) -> Option<usize> {
        usize::try_from(blocks)
            .ok()?
            .checked_mul(self.block_size as usize)
    }

    /// The LBA must name a block on the medium even for a zero-length transfer
    /// (SBC-4), and the transfer must end inside it.
    fn check_lba(&self, lba: u64, blocks: u64) -> Result<(), Sense> {
        lba_in_range(lba, blocks, self.block_count)
    }

    /// A READ (`to_guest`) or a WRITE, checked in SBC-4's order: the LBA range,
    /// write protection, a zero-length transfer, the data direction, then the
    /// guest's buffer.
    fn io(
        &mut self,
        lba: u64,
        blocks: u64,
        dir: DataDirection,
        data: &dyn DataBuffer,
        to_guest: bool,
    ) -> Result<usize, Sense> {
        self.check_lba(lba, blocks)?;
        if !to_guest && self.backend.read_only() {
            return Err(Sense::WRITE_PROTECTED);
        }
        if blocks == 0 {
            return Ok(0);
        }
        let (want, overflow) = if to_guest {
            (DataDirection::READ, Sense::DATA_IN_OVERFLOW)
        } else {
            (DataDirection::WRITE, Sense::DATA_OUT_OVERFLOW)
        };
        if dir != want {
            return Err(Sense::DATA_PHASE_ERROR);
        }
        let bytes = self
            .byte_len(blocks)
            .filter(|&b| b <= data.len())
            .ok_or(overflow)?;
        self.transfer(lba, bytes, data, to_guest)
    }

    /// Moves `bytes` between the disk from block `lba` and `data`, into guest
    /// memory when `to_guest`. Straight between the backend and guest memory
    /// where both sides allow it (one copy, not two), else through the scratch
    /// buffer; a write is acknowledged only once the backend took it.
    fn transfer(
        &mut self,
        lba: u64,
        bytes: usize,
        data: &dyn DataBuffer,
        to_guest: bool,
    ) -> Result<usize, Sense> {
        let base = lba * u64::from(self.block_size);
        let writing = !to_guest;
        let backend_err = |e| backend_sense(e, writing);
        if let Some(segs) = data.io_segments(to_guest) {
            let segs = trim(segs, bytes);
            let direct = if to_guest {
                self.backend.read_into(base, &segs)
            } else {
                self.backend.write_from(base, &segs)
            };
            if direct.map_err(backend_err)? {
                return Ok(bytes);
            }
        }
        let mut done = 0;
        while done < bytes {
            let n = (bytes - done).min(self.scratch.len());
            let chunk = &mut self.scratch[..n];
            let at = base + done as u64;
            if to_guest {
                self.backend.read(at, chunk).map_err(backend_err)?;
                data.write_at(done, chunk)
                    .map_err(|_| Sense::DATA_IN_BUFFER_ERROR)?;
            } else {
                data.read_at(done, chunk)
                    .map_err(|_| Sense::DATA_OUT_BUFFER_ERROR)?;
                self.backend.write(at, chunk).map_err(backend_err)?;
            }
            done += n;
        }
        Ok(bytes)
    }

    fn unmap(&mut self, cdb: &Cdb<'_>, phase: DataPhase<'_>) -> Result<usize, Sense> {
        let DataPhase(dir, data) = phase;
        if !self.unmap_enabled() {
            return Err(Sense::INVALID_COMMAND_OPCODE);
        }
        if cdb.bit(1, 0) {
            return Err(Sense::invalid_cdb_field(1, Some(0))); // ANCHOR: ANC_SUP=0
        }
        let len = usize::from(cdb.u16(7));
        if len == 0 {
            return Ok(0);
        }
        if len < 8 {
            return Err(Sense::PARAMETER_LIST_LENGTH_ERROR);
        }
        if self.backend.read_only() {
            return Err(Sense::WRITE_PROTECTED);
        }
        check_data_out(dir, data, len)?;
        let max_len = 8 + MAX_UNMAP_DESCRIPTORS as usize * 16;
        let list = &mut self.scratch[..len.min(max_len)];
        data.read_at(0, list)
            .map_err(|_| Sense::DATA_OUT_BUFFER_ERROR)?;
        let descriptor_bytes = usize::from(u16::from_be_bytes([list[2], list[3]]));
        let count = descriptor_bytes.min(len - 8) / 16;
        if count > MAX_UNMAP_DESCRIPTORS as usize {
            return Err(Sense::invalid_parameter_field(2));
        }
        // Validate every descriptor before unmapping anything.
        let mut total: u64 = 0;
        let descriptor = |i: usize| {
            let d = &list[8 + i * 16..8 + i * 16 + 16];
            let mut lba = [0u8; 8];
            lba.copy_from_slice(&d[0..8]);
            (
                u64::from_be_bytes(lba),
                u64::from(u32::from_be_bytes([d[8], d[9], d[10], d[11]])),
            )
        };
        for i in 0..count {
            let (lba, blocks) = descriptor(i);
            lba_in_range(lba, blocks, self.block_count)?;
            total += blocks;
        }
        if total > u64::from(MAX_UNMAP_BLOCKS) {
            return Err(Sense::invalid_parameter_field(8));
        }
        let bs = u64::from(self.block_size);
        for i in 0..count {
            let (lba, blocks) = descriptor(i);
            if blocks > 0 {
                self.backend
                    .unmap(lba * bs, blocks * bs)
                    .map_err(|e| backend_sense(e, true))?;
            }
        }
        Ok(len)
    }

    fn write_same(&mut self, cdb: &Cdb<'_>, phase: DataPhase<'_>) -> Result<usize, Sense> {
        let DataPhase(dir, data) = phase;
        let sixteen = cdb.opcode() == op::WRITE_SAME16;
        let (lba, blocks, len_byte) = if sixteen {
            (cdb.u64(2), u64::from(cdb.u32(10)), 10)
        } else {
            (u64::from(cdb.u32(2)), u64::from(cdb.u16(7)), 7)
        };
        if cdb.u8(1) >> 5 != 0 {
            return Err(Sense::invalid_cdb_field(1, Some(7))); // WRPROTECT
        }
        if cdb.bit(1, 4) {
            return Err(Sense::invalid_cdb_field(1, Some(4))); // ANCHOR
        }
        let unmap = cdb.bit(1, 3);
        let ndob = sixteen && cdb.bit(1, 0);
        if blocks == 0 || blocks > MAX_WRITE_SAME_BLOCKS {
            return Err(Sense::invalid_cdb_field(len_byte, None));
        }
        self.check_lba(lba, blocks)?;
        if self.backend.read_only() {
            return Err(Sense::WRITE_PROTECTED);
        }
        let bs = self.block_size as usize;
        let mut block = vec![0u8; bs];
        let tx = if ndob {
            0
        } else {
            check_data_out(dir, data, bs)?;
            data.read_at(0, &mut block)
                .map_err(|_| Sense::DATA_OUT_BUFFER_ERROR)?;
            bs
        };
        let base = lba * bs as u64;
        let total = blocks * bs as u64;
        if unmap && self.unmap_enabled() && block.iter().all(|&b| b == 0) {
            self.backend
                .unmap(base, total)
                .map_err(|e| backend_sense(e, true))?;
            return Ok(tx);
        }
        let per_chunk = self.scratch.len() / bs;
        for i in 0..per_chunk {
            self.scratch[i * bs..(i + 1) * bs].copy_from_slice(&block);
        }
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min((per_chunk * bs) as u64) as usize;
            self.backend
                .write(base + done, &self.scratch[..n])
                .map_err(|e| backend_sense(e, true))?;
            done += n as u64;
        }
        Ok(tx)
    }
}

/// An SRB's data phase as a command handler takes it: the direction and the
/// initiator's buffer, which are only ever checked together.
#[derive(Copy, Clone)]
struct DataPhase<'a>(DataDirection, &'a dyn DataBuffer);

/// The first `len` bytes of `segs` (the buffer may be longer than the transfer).
fn trim(mut segs: IoSegments<'_>, len: usize) -> IoSegments<'_> {
    let mut left = len;
    let mut keep = 0;
    for s in segs.iter_mut() {
        if left == 0 {
            break;
        }
        if s.len() > left {
            s.truncate(left);
        }
        left -= s.len();
        keep += 1;
    }
    segs.truncate(keep);
    segs
}

fn lba_in_range(lba: u64, blocks: u64, capacity: u64) -> Result<(), Sense> {
    match lba.checked_add(blocks) {
        Some(end) if lba < capacity && end <= capacity => Ok(()),
        _ => Err(Sense::LBA_OUT_OF_RANGE),
    }
}

/// LBA, block count and FUA of a READ/WRITE CDB; protection fields must be zero
/// since the disk has no protection information.
fn rw_fields(cdb: &Cdb<'_>) -> Result<(u64, u64, bool), Sense> {
    Ok(match cdb.opcode() {
        op::READ6 | op::WRITE6 => {
            let lba = u64::from(cdb.u24(1) & 0x1f_ffff);
            let n = match cdb.u8(4) {
                0 => 256,
                n => u64::from(n),
            };
            (lba, n, false)
        }
        opcode => {
            if cdb.u8(1) >> 5 != 0 {
                return Err(Sense::invalid_cdb_field(1, Some(7)));
            }
            let fua = cdb.bit(1, 3);
            match opcode {
                op::READ10 | op::WRITE10 => (u64::from(cdb.u32(2)), u64::from(cdb.u16(7)), fua),
                op::READ12 | op::WRITE12 => (u64::from(cdb.u32(2)), u64::from(cdb.u32(6)), fua),
                _ => (cdb.u64(2), u64::from(cdb.u32(10)), fua),
            }
        }
    })
}

/// Sends `min(alloc, bytes.len())` bytes to the initiator.
pub(crate) fn data_in(
    dir: DataDirection,
    data: &dyn DataBuffer,
    bytes: &[u8],
    alloc: usize,
) -> Result<usize, Sense> {
    let n = alloc.min(bytes.len());
    if n == 0 {
        return Ok(0);
    }
    if dir != DataDirection::READ {
        return Err(Sense::DATA_PHASE_ERROR);
    }
    if n > data.len() {
        return Err(Sense::DATA_IN_OVERFLOW);
    }
    data.write_at(0, &bytes[..n])
        .map_err(|_| Sense::DATA_IN_BUFFER_ERROR)?;
    Ok(n)
}

/// Checks that `n` bytes of data-out can come from the initiator's buffer.
fn check_data_out(dir: DataDirection, data: &dyn DataBuffer, n: usize) -> Result<(), Sense> {
    if dir != DataDirection::WRITE {
        return Err(Sense::DATA_PHASE_ERROR);
    }
    if n > data.len() {
        return Err(Sense::DATA_OUT_OVERFLOW);
    }
    Ok(())
}
