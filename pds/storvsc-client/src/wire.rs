//! What storvsc puts in a packet's payload, and what comes back.

use alloc::vec::Vec;

use storvsp_protocol::{
    DataDirection, NtStatus, Operation, VmscsiRequest, VstorHeader, REQUEST_COMPLETION_FLAG,
    SENSE_BUFFER_SIZE, VMSCSI_REQUEST_SIZE, VSTOR_PACKET_SIZE,
};
use vmbus_ring::GpaRangeRef;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const PAGE: u64 = hvdef::HV_PAGE_SIZE;

pub const READ_10: u8 = 0x28;
pub const WRITE_10: u8 = 0x2A;
pub const READ_16: u8 = 0x88;
pub const WRITE_16: u8 = 0x8A;

/// A `vstor_packet` for operation `op` with `body` (cut to the payload union).
pub fn control_payload(op: Operation, body: &[u8]) -> [u8; VSTOR_PACKET_SIZE] {
    let mut p = [0u8; VSTOR_PACKET_SIZE];
    let h = VstorHeader {
        operation: op,
        flags: REQUEST_COMPLETION_FLAG,
        status: NtStatus::SUCCESS,
    };
    p[..12].copy_from_slice(h.as_bytes());
    let n = body.len().min(VSTOR_PACKET_SIZE - 12);
    p[12..12 + n].copy_from_slice(&body[..n]);
    p
}

/// The SRB storvsc_queuecommand builds for `cdb` at 0:0:0.
pub fn srb(cdb: &[u8], dir: DataDirection, len: u32) -> VmscsiRequest {
    let mut req = VmscsiRequest::new_zeroed();
    req.length = VMSCSI_REQUEST_SIZE as u16;
    req.cdb_length = cdb.len().min(255) as u8;
    req.sense_info_length = SENSE_BUFFER_SIZE as u8;
    req.data_in = dir.0;
    req.data_transfer_length = len;
    let n = cdb.len().min(req.cdb_or_sense.len());
    req.cdb_or_sense[..n].copy_from_slice(&cdb[..n]);
    req.time_out_value = 60;
    req
}

/// The EXECUTE_SRB packet carrying `req`.
pub fn srb_payload_of(req: &VmscsiRequest) -> [u8; VSTOR_PACKET_SIZE] {
    control_payload(Operation::EXECUTE_SRB, req.as_bytes())
}

/// The EXECUTE_SRB packet storvsc_queuecommand builds.
pub fn srb_payload(cdb: &[u8], dir: DataDirection, len: u32) -> [u8; VSTOR_PACKET_SIZE] {
    srb_payload_of(&srb(cdb, dir, len))
}

/// READ(16)/WRITE(16) (`op`) of `blocks` blocks at `lba`.
pub fn rw16(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// READ(10)/WRITE(10) (`op`) of `blocks` blocks at `lba`.
pub fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// A guest buffer: `len` bytes at guest physical `gpa`, as one GPA-direct range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestBuf {
    pub gpa: u64,
    pub len: u32,
    pub pfns: Vec<u64>,
}

impl GuestBuf {
    pub fn at(gpa: u64, len: u32) -> Self {
        let first = gpa / PAGE;
        let pages = ((gpa % PAGE) + u64::from(len)).div_ceil(PAGE);
        Self {
            gpa,
            len,
            pfns: (first..first + pages).collect(),
        }
    }

    pub fn range(&self) -> GpaRangeRef<'_> {
        GpaRangeRef {
            byte_count: self.len,
            byte_offset: (self.gpa % PAGE) as u32,
            pfns: &self.pfns,
        }
    }
}

/// A completion: its `vstor_packet` header and what follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub header: VstorHeader,
    pub body: Vec<u8>,
}

impl Reply {
    /// `None` when the bytes cannot hold a header.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (header, body) = VstorHeader::read_from_prefix(bytes).ok()?;
        Some(Self {
            header,
            body: body.to_vec(),
        })
    }

    pub fn srb(&self) -> VmscsiRequest {
        VmscsiRequest::read_from_prefix(&self.body)
            .map(|(s, _)| s)
            .unwrap_or_else(|_| VmscsiRequest::new_zeroed())
    }

    /// (sense key, ASC, ASCQ) of fixed-format sense data, zeros without sense.
    pub fn sense(&self) -> (u8, u8, u8) {
        self.srb().sense()
    }
}

/// An SRB a disk must fail with CHECK CONDITION, and the sense key, ASC and ASCQ
/// it must give.
#[derive(Clone, Debug)]
pub struct MalformedSrb<'a> {
    pub what: &'static str,
    pub cdb: Vec<u8>,
    pub dir: DataDirection,
    pub buf: Option<&'a GuestBuf>,
    pub sense: (u8, u8, u8),
}

/// The malformed SRBs every storvsp disk of `blocks` blocks must refuse: `buf` is
/// a 4 KiB data buffer the disk may use, `outside` one in no guest RAM.
pub fn malformed_srbs<'a>(
    blocks: u64,
    buf: &'a GuestBuf,
    outside: &'a GuestBuf,
) -> [MalformedSrb<'a>; 6] {
    let last = u32::try_from(blocks.saturating_sub(1)).unwrap_or(u32::MAX);
    let case = |what, cdb: &[u8], dir, buf, sense| MalformedSrb {
        what,
        cdb: cdb.to_vec(),
        dir,
        buf,
        sense,
    };
    [
        case(
            "unsupported opcode",
            &[0xC1, 0, 0, 0, 0, 0],
            DataDirection::UNKNOWN,
            None,
            (5, 0x20, 0),
        ),
        case(
            "READ(10) past the last block",
            &rw10(READ_10, last, 8),
            DataDirection::READ,
            Some(buf),
            (5, 0x21, 0),
        ),
        case(
            "WRITE(16) past the last block",
            &rw16(WRITE_16, blocks, 1),
            DataDirection::WRITE,
            Some(buf),
            (5, 0x21, 0),
        ),
        case(
            "INQUIRY page code without EVPD",
            &[0x12, 0, 0x80, 0, 36, 0],
            DataDirection::READ,
            Some(buf),
            (5, 0x24, 0),
        ),
        case(
            "READ with a write data direction",
            &rw10(READ_10, 0, 8),
            DataDirection::WRITE,
            Some(buf),
            (0xB, 0x4B, 0),
        ),
        case(
            "page list outside guest RAM",
            &rw10(READ_10, 0, 8),
            DataDirection::READ,
            Some(outside),
            (0xB, 0x4B, 0x0A),
        ),
    ]
}
