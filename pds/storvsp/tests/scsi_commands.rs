//! Table tests: every SCSI command through the whole SRB path (packet bytes in,
//! completion bytes out), well-formed and malformed, each checking the SCSI
//! status, SRB status and sense key / ASC / ASCQ.

use std::sync::Arc;

use storvsc_client::wire::{rw10, rw16};
use storvsp::harness::{sense_of, Buffer, Harness, MemBackend, Srb};
use storvsp::scsi::ScsiAddress;
use storvsp::Completion;
use storvsp_protocol::{DataDirection, NtStatus, SrbStatus};

const BLOCKS: u64 = 2048; // 1 MiB disk
const RAM_PAGES: usize = 64;
/// Guest page the tests put data buffers at.
const BUF: u64 = 4;
const BUF_GPA: u64 = BUF * 4096;

fn setup() -> (Harness, Arc<MemBackend>) {
    let disk = MemBackend::shared(BLOCKS);
    let mut h = Harness::new(Box::new(disk.clone()), RAM_PAGES);
    h.negotiate();
    (h, disk)
}

/// What a table row expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// GOOD with this many bytes transferred.
    Good(u32),
    /// CHECK CONDITION with key/asc/ascq.
    Check(u8, u8, u8),
}

const ILLEGAL: u8 = 0x5;
const ABORTED: u8 = 0xB;
const INVALID_OPCODE: Want = Want::Check(ILLEGAL, 0x20, 0);
const INVALID_FIELD: Want = Want::Check(ILLEGAL, 0x24, 0);
const LBA_RANGE: Want = Want::Check(ILLEGAL, 0x21, 0);
const DATA_PHASE: Want = Want::Check(ABORTED, 0x4B, 0x00);
const IN_OVERFLOW: Want = Want::Check(ABORTED, 0x4B, 0x08);
const IN_DESC_OVERFLOW: Want = Want::Check(ABORTED, 0x4B, 0x09);
const IN_BUFFER_ERROR: Want = Want::Check(ABORTED, 0x4B, 0x0A);
const OUT_OVERFLOW: Want = Want::Check(ABORTED, 0x4B, 0x0B);
const OUT_DESC_OVERFLOW: Want = Want::Check(ABORTED, 0x4B, 0x0C);
const OUT_BUFFER_ERROR: Want = Want::Check(ABORTED, 0x4B, 0x0D);

fn check(h: &mut Harness, name: &str, srb: &Srb, want: Want) -> Completion {
    let c = h.srb(srb);
    let r = c.srb();
    let got = if r.scsi_status == 0 {
        assert_eq!(r.srb_status, SrbStatus::SUCCESS.0, "{name}: srb status");
        assert_eq!(c.header().status, NtStatus::SUCCESS, "{name}: nt status");
        Want::Good(r.data_transfer_length)
    } else {
        assert_eq!(r.scsi_status, 2, "{name}: scsi status");
        assert_ne!(
            r.srb_status & SrbStatus::AUTOSENSE_VALID,
            0,
            "{name}: autosense"
        );
        assert_eq!(r.data_transfer_length, 0, "{name}: no data on error");
        assert_ne!(c.header().status, NtStatus::SUCCESS, "{name}: nt status");
        let (k, a, q) = sense_of(&c);
        Want::Check(k, a, q)
    };
    assert_eq!(got, want, "{name}");
    c
}

/// [`check`] of the three SRB shapes most rows use, the data buffer (if any) at
/// page [`BUF`]: one line a row.
trait Rows {
    /// Data-in of `len` bytes.
    fn data_in(&mut self, name: &str, cdb: &[u8], len: u32, want: Want) -> Completion;
    /// Data-out of `len` bytes.
    fn data_out(&mut self, name: &str, cdb: &[u8], len: u32, want: Want) -> Completion;
    /// No data transfer.
    fn no_data(&mut self, name: &str, cdb: &[u8], want: Want) -> Completion;
}

impl Rows for Harness {
    fn data_in(&mut self, name: &str, cdb: &[u8], len: u32, want: Want) -> Completion {
        check(self, name, &Srb::read(cdb, len, BUF), want)
    }
    fn data_out(&mut self, name: &str, cdb: &[u8], len: u32, want: Want) -> Completion {
        check(self, name, &Srb::write(cdb, len, BUF), want)
    }
    fn no_data(&mut self, name: &str, cdb: &[u8], want: Want) -> Completion {
        check(self, name, &Srb::none(cdb), want)
    }
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    rw10(0x28, lba, blocks)
}

fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    rw10(0x2A, lba, blocks)
}

fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 6] {
    let a = alloc.to_be_bytes();
    [0x12, evpd as u8, page, a[0], a[1], 0]
}

#[test]
fn test_unit_ready_and_request_sense() {
    let (mut h, _) = setup();
    h.no_data("tur", &[0; 6], Want::Good(0));
    // Only 3 CDB bytes for a 6-byte opcode.
    h.no_data("tur short cdb", &[0; 3], INVALID_FIELD);
    h.data_in("request sense", &[0x03, 0, 0, 0, 18, 0], 18, Want::Good(18));
    let s = h.read_guest(BUF_GPA, 18);
    assert_eq!((s[0], s[2], s[12]), (0x70, 0, 0));
    h.data_in(
        "request sense desc",
        &[0x03, 1, 0, 0, 18, 0],
        18,
        INVALID_FIELD,
    );
}

#[test]
fn inquiry_standard_and_malformed() {
    let (mut h, _) = setup();
    h.data_in("std 36", &inquiry(false, 0, 36), 36, Want::Good(36));
    let d = h.read_guest(BUF_GPA, 36);
    assert_eq!(d[0], 0x00, "direct-access block device");
    assert_eq!(d[2], 0x06);
    assert_eq!(d[3] & 0x0f, 2, "response data format");
    assert_eq!(d[4], 31);
    assert_eq!(&d[8..16], b"Msft    ");
    assert_eq!(&d[16..32], b"Virtual Disk    ");
    assert_ne!(d[7] & 0x02, 0, "CMDQUE");
    h.data_in("std alloc 5", &[0x12, 0, 0, 0, 5, 0], 5, Want::Good(5));
    h.data_in("std alloc 0", &[0x12, 0, 0, 0, 0, 0], 0, Want::Good(0));
    // A larger allocation length than there is data: the data length wins.
    h.data_in(
        "std alloc 255",
        &[0x12, 0, 0, 0, 255, 0],
        255,
        Want::Good(36),
    );
    h.data_in(
        "page without evpd",
        &inquiry(false, 0x80, 36),
        36,
        INVALID_FIELD,
    );
    h.data_in("cmddt", &[0x12, 2, 0, 0, 36, 0], 36, INVALID_FIELD);
    h.data_in("unknown vpd", &inquiry(true, 0x89, 64), 64, INVALID_FIELD);
    h.data_in(
        "buffer smaller than data",
        &inquiry(false, 0, 36),
        8,
        IN_OVERFLOW,
    );
    h.data_out("data-out direction", &inquiry(false, 0, 36), 36, DATA_PHASE);
    h.data_in("short cdb", &[0x12, 0, 0, 0], 36, INVALID_FIELD);
    // The field pointer names CDB byte 2 for the bad page code.
    let c = h.srb(&Srb::read(&inquiry(false, 0x80, 36), 36, BUF));
    let s = c.srb().cdb_or_sense;
    assert_eq!(s[15] & 0xC0, 0xC0);
    assert_eq!(&s[16..18], &[0, 2]);
}

#[test]
fn inquiry_vpd_pages() {
    let (mut h, _) = setup();
    h.data_in("vpd 00", &inquiry(true, 0, 255), 255, Want::Good(10));
    let d = h.read_guest(BUF_GPA, 10);
    assert_eq!(&d[..4], &[0, 0, 0, 6]);
    assert_eq!(&d[4..10], &[0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]);

    h.data_in("vpd 80", &inquiry(true, 0x80, 255), 255, Want::Good(20));
    assert_eq!(&h.read_guest(BUF_GPA + 4, 16), b"0000000000000000");

    h.data_in("vpd 83", &inquiry(true, 0x83, 255), 255, Want::Good(68));
    let d = h.read_guest(BUF_GPA, 68);
    assert_eq!(d[1], 0x83);
    assert_eq!(u16::from_be_bytes([d[2], d[3]]), 64);
    assert_eq!(d[5] & 0x0f, 1, "T10 vendor id designator");
    assert_eq!(&d[8..16], b"Msft    ");

    h.data_in("vpd b0", &inquiry(true, 0xB0, 64), 64, Want::Good(64));
    let d = h.read_guest(BUF_GPA, 64);
    assert_eq!(u16::from_be_bytes([d[2], d[3]]), 0x3C);
    assert_eq!(d[4] & 1, 1, "WSNZ");
    let max_xfer = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
    assert_eq!(max_xfer, 512 * 1024 / 512);
    let max_unmap = u32::from_be_bytes([d[20], d[21], d[22], d[23]]);
    assert!(max_unmap > 0);
    let max_desc = u32::from_be_bytes([d[24], d[25], d[26], d[27]]);
    assert!(max_desc > 0);

    h.data_in("vpd b1", &inquiry(true, 0xB1, 64), 64, Want::Good(64));
    let d = h.read_guest(BUF_GPA, 6);
    assert_eq!(u16::from_be_bytes([d[4], d[5]]), 1, "non-rotating");

    h.data_in("vpd b2", &inquiry(true, 0xB2, 8), 8, Want::Good(8));
    let d = h.read_guest(BUF_GPA, 8);
    assert_eq!(d[5] & 0x80, 0x80, "LBPU");
    assert_eq!(d[5] & 0x04, 0x04, "LBPRZ");
    assert_eq!(d[6] & 0x7, 2, "thin");
    // Truncated by the allocation length.
    h.data_in("vpd b0 alloc 4", &inquiry(true, 0xB0, 4), 4, Want::Good(4));
}

#[test]
fn report_luns_and_absent_luns() {
    let (mut h, _) = setup();
    let rl = |alloc: u32, select: u8| {
        let mut c = [0u8; 12];
        c[0] = 0xA0;
        c[2] = select;
        c[6..10].copy_from_slice(&alloc.to_be_bytes());
        c
    };
    h.data_in("report luns", &rl(256, 0), 256, Want::Good(16));
    let d = h.read_guest(BUF_GPA, 16);
    assert_eq!(u32::from_be_bytes([d[0], d[1], d[2], d[3]]), 8);
    assert_eq!(&d[8..16], &[0; 8]);
    h.data_in("alloc < 4", &rl(3, 0), 3, INVALID_FIELD);
    h.data_in("bad select", &rl(256, 7), 256, INVALID_FIELD);
    h.data_in("header only", &rl(4, 0), 4, Want::Good(4));
    let cdb = rl(256, 0);
    let mut other = Srb::read(&cdb, 256, BUF);
    other.addr = ScsiAddress {
        path: 0,
        target: 1,
        lun: 0,
    };
    check(&mut h, "other target", &other, Want::Good(8));
    assert_eq!(&h.read_guest(BUF_GPA, 4), &[0, 0, 0, 0]);

    // A LUN that is not there: INQUIRY says so, anything else is INVALID_LUN.
    let inq = inquiry(false, 0, 36);
    let mut srb = Srb::read(&inq, 36, BUF);
    srb.addr.lun = 3;
    check(&mut h, "absent inquiry", &srb, Want::Good(36));
    assert_eq!(h.read_guest(BUF_GPA, 1)[0], 0x7F);
    let mut tur = Srb::none(&[0; 6]);
    tur.addr.lun = 3;
    let c = h.srb(&tur);
    assert_eq!(c.srb().srb_status & 0x3f, SrbStatus::INVALID_LUN.0);
    assert_eq!(c.header().status, NtStatus::DEVICE_DOES_NOT_EXIST);
    assert_eq!(sense_of(&c), (ILLEGAL, 0x25, 0));
}

/// READ CAPACITY(16) with an allocation length of 32.
fn read_capacity16() -> [u8; 16] {
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9E;
    rc16[1] = 0x10;
    rc16[13] = 32;
    rc16
}

#[test]
fn read_capacity() {
    let (mut h, _) = setup();
    let rc10 = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.data_in("rc10", &rc10, 8, Want::Good(8));
    let d = h.read_guest(BUF_GPA, 8);
    assert_eq!(
        u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
        BLOCKS as u32 - 1
    );
    assert_eq!(u32::from_be_bytes([d[4], d[5], d[6], d[7]]), 512);
    let bad = [0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    h.data_in("rc10 lba without pmi", &bad, 8, INVALID_FIELD);
    h.data_in("rc10 small buffer", &rc10, 4, IN_OVERFLOW);
    h.no_data("rc10 no data direction", &rc10, DATA_PHASE);

    let rc16 = read_capacity16();
    h.data_in("rc16", &rc16, 32, Want::Good(32));
    let d = h.read_guest(BUF_GPA, 32);
    assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), BLOCKS - 1);
    assert_eq!(u32::from_be_bytes(d[8..12].try_into().unwrap()), 512);
    assert_eq!(d[13], 3, "8 logical blocks per physical block");
    assert_eq!(d[14] & 0xC0, 0xC0, "LBPME + LBPRZ");
    let mut short = rc16;
    short[13] = 12;
    h.data_in("rc16 alloc 12", &short, 32, Want::Good(12));
    let mut sa = rc16;
    sa[1] = 0x11;
    h.data_in("rc16 bad service action", &sa, 32, INVALID_FIELD);
}

#[test]
fn mode_sense() {
    let (mut h, _) = setup();
    let ms6 = |page: u8, sub: u8, alloc: u8| [0x1A, 0x08, page, sub, alloc, 0];
    h.data_in("caching", &ms6(0x08, 0, 255), 255, Want::Good(24));
    let d = h.read_guest(BUF_GPA, 24);
    assert_eq!(d[0], 23, "mode data length");
    assert_eq!(d[2] & 0x80, 0, "not write protected");
    assert_eq!(d[2] & 0x10, 0x10, "DPOFUA");
    assert_eq!(d[3], 0, "no block descriptors");
    assert_eq!((d[4], d[5]), (0x08, 0x12));
    assert_eq!(d[6] & 0x04, 0x04, "WCE");
    h.data_in("all pages, header only", &ms6(0x3F, 0, 4), 4, Want::Good(4));
    h.data_in("all pages", &ms6(0x3F, 0, 255), 255, Want::Good(36));
    h.data_in("control", &ms6(0x0A, 0, 255), 255, Want::Good(16));
    assert_eq!(h.read_guest(BUF_GPA + 4, 1)[0], 0x0A);
    let saved = Want::Check(ILLEGAL, 0x39, 0);
    h.data_in("saved values", &ms6(0x08 | 0xC0, 0, 255), 255, saved);
    h.data_in("changeable", &ms6(0x08 | 0x40, 0, 255), 255, Want::Good(24));
    assert_eq!(h.read_guest(BUF_GPA + 6, 1)[0], 0, "nothing changeable");
    h.data_in("unsupported page", &ms6(0x1C, 0, 255), 255, INVALID_FIELD);
    h.data_in("subpage", &ms6(0x08, 1, 255), 255, INVALID_FIELD);
    h.data_in("buffer too small", &ms6(0x08, 0, 255), 10, IN_OVERFLOW);

    let ms10 = [0x5A, 0x08, 0x3F, 0, 0, 0, 0, 1, 0, 0];
    h.data_in("mode sense 10", &ms10, 256, Want::Good(40));
    let d = h.read_guest(BUF_GPA, 8);
    assert_eq!(u16::from_be_bytes([d[0], d[1]]), 38);
    assert_eq!(&d[6..8], &[0, 0], "block descriptor length");
}

#[test]
fn read_write_round_trip_all_cdb_sizes() {
    let (mut h, disk) = setup();
    let pattern: Vec<u8> = (0..8192u32).map(|i| (i * 31 + 7) as u8).collect();
    h.write_guest(BUF_GPA, &pattern);
    h.data_out("write10", &write10(10, 16), 8192, Want::Good(8192));
    assert_eq!(&disk.contents()[10 * 512..26 * 512], &pattern[..]);
    h.write_guest(BUF_GPA, &[0u8; 8192]);
    h.data_in("read10", &read10(10, 16), 8192, Want::Good(8192));
    assert_eq!(h.read_guest(BUF_GPA, 8192), pattern);

    // Reads into the pages past the pattern, so what they read cannot be left
    // over from it.
    let far = BUF + 8;
    let far_read = |h: &mut Harness, name: &str, cdb: &[u8], len: u32| {
        check(h, name, &Srb::read(cdb, len, far), Want::Good(len));
        h.read_guest(far * 4096, len as usize)
    };
    let r16 = rw16(0x88, 12, 2);
    assert_eq!(far_read(&mut h, "read16", &r16, 1024), &pattern[1024..2048]);
    let r12 = [0xA8, 0, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0];
    assert_eq!(far_read(&mut h, "read12", &r12, 512), &pattern[..512]);
    let r6 = [0x08, 0, 0, 11, 1, 0];
    assert_eq!(far_read(&mut h, "read6", &r6, 512), &pattern[512..1024]);
    h.write_guest(BUF_GPA, &[0xEE; 512]);
    let w6 = [0x0A, 0, 0x07, 0xFF, 1, 0];
    h.data_out("write6", &w6, 512, Want::Good(512));
    assert_eq!(&disk.contents()[2047 * 512..], &[0xEE; 512][..]);
    h.data_out("write16", &rw16(0x8A, 0, 1), 512, Want::Good(512));
    assert_eq!(&disk.contents()[..512], &[0xEE; 512][..]);

    // A buffer that starts mid-page and spans pages.
    let mut srb = Srb::read(&read10(10, 16), 8192, BUF + 16);
    srb.buffer = Buffer::Pages {
        first: BUF + 16,
        offset: 100,
        byte_count: 8192,
    };
    check(&mut h, "unaligned buffer", &srb, Want::Good(8192));
    assert_eq!(h.read_guest((BUF + 16) * 4096 + 100, 8192), pattern);
}

#[test]
fn read_write_malformed() {
    let (mut h, disk) = setup();
    let last = BLOCKS as u32 - 1;
    let rd = read10(0, 8);
    let wr = write10(0, 8);
    let mut rdprotect = read10(0, 1);
    rdprotect[1] = 0x20;
    h.data_in("read past capacity", &read10(last, 2), 1024, LBA_RANGE);
    h.data_in(
        "lba = capacity, length 0",
        &read10(last + 1, 0),
        0,
        LBA_RANGE,
    );
    h.data_out("write past capacity", &write10(last, 2), 1024, LBA_RANGE);
    h.data_in(
        "read16 lba overflow",
        &rw16(0x88, u64::MAX, 1),
        512,
        LBA_RANGE,
    );
    h.data_in("read length 0", &read10(5, 0), 0, Want::Good(0));
    h.data_in("read bigger than buffer", &rd, 2048, IN_OVERFLOW);
    h.data_out("write bigger than buffer", &wr, 2048, OUT_OVERFLOW);
    h.data_out("read with data-out direction", &rd, 4096, DATA_PHASE);
    h.data_in("write with data-in direction", &wr, 4096, DATA_PHASE);
    h.no_data("read with no direction", &rd, DATA_PHASE);
    h.data_in("rdprotect", &rdprotect, 512, INVALID_FIELD);
    h.data_in("short read10 cdb", &rd[..6], 4096, INVALID_FIELD);

    // The page list covers fewer bytes than the SRB's transfer length.
    let mut short = Srb::read(&rd, 4096, BUF);
    short.buffer = Buffer::Pages {
        first: BUF,
        offset: 0,
        byte_count: 2048,
    };
    check(&mut h, "page list too short (in)", &short, IN_DESC_OVERFLOW);
    short.dir = DataDirection::WRITE;
    short.cdb = wr.to_vec();
    let name = "page list too short (out)";
    check(&mut h, name, &short, OUT_DESC_OVERFLOW);
    let mut inband = Srb::read(&rd, 4096, BUF);
    inband.buffer = Buffer::None;
    check(&mut h, "no page list at all", &inband, IN_DESC_OVERFLOW);

    // Pages outside the guest memory this PD was granted.
    for (dir, cdb, want) in [
        (DataDirection::READ, &rd, IN_BUFFER_ERROR),
        (DataDirection::WRITE, &wr, OUT_BUFFER_ERROR),
    ] {
        let srb = Srb {
            dir,
            buffer: Buffer::List {
                pfns: vec![BUF, RAM_PAGES as u64 + 5],
                offset: 2048,
                byte_count: 4096,
            },
            ..Srb::read(cdb, 4096, BUF)
        };
        let c = check(&mut h, "page outside guest memory", &srb, want);
        assert_eq!(c.header().status, NtStatus::INVALID_PARAMETER);
    }
    // Nothing was written by any of the refused writes.
    assert!(disk.contents().iter().all(|&b| b == 0));
}

#[test]
fn srb_level_malformations() {
    let (mut h, _) = setup();
    let long = [0u8; 17];
    let c = h.srb(&Srb::none(&long));
    // cdb_length 17 > 16
    assert_eq!(sense_of(&c), (ILLEGAL, 0x24, 0));
    let c = h.srb(&Srb::none(&[]));
    assert_eq!(sense_of(&c), (ILLEGAL, 0x24, 0));
    for op in [0x04u8, 0x1B, 0xC0, 0xFF, 0x7F] {
        let cdb = [op, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        h.no_data("unsupported opcode", &cdb, INVALID_OPCODE);
    }
}

#[test]
fn write_protected_disk() {
    let mut disk = MemBackend::new(64);
    disk.read_only = true;
    let mut h = Harness::new(Box::new(disk), RAM_PAGES);
    h.negotiate();
    let wp = Want::Check(0x7, 0x27, 0);
    h.data_out("write", &write10(0, 1), 512, wp);
    h.data_in("read still works", &read10(0, 1), 512, Want::Good(512));
    let ms = [0x1A, 0x08, 0x08, 0, 255, 0];
    h.data_in("mode sense", &ms, 255, Want::Good(24));
    assert_eq!(h.read_guest(BUF_GPA + 2, 1)[0] & 0x80, 0x80, "WP bit");
    let unmap = [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0];
    h.data_out("no unmap on read-only", &unmap, 24, INVALID_OPCODE);
}

#[test]
fn synchronize_cache_and_fua() {
    let (mut h, disk) = setup();
    let sc10 = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.no_data("sync cache 10", &sc10, Want::Good(0));
    assert_eq!(disk.flushes(), 1);
    h.no_data("sync cache 16", &rw16(0x91, 0, 0), Want::Good(0));
    assert_eq!(disk.flushes(), 2);
    h.no_data("sync cache past end", &rw16(0x91, BLOCKS, 1), LBA_RANGE);
    assert_eq!(disk.flushes(), 2);
    let mut fua = write10(0, 1);
    fua[1] = 0x08;
    h.data_out("write fua", &fua, 512, Want::Good(512));
    assert_eq!(disk.flushes(), 3);
    h.data_out("write no fua", &write10(0, 1), 512, Want::Good(512));
    assert_eq!(disk.flushes(), 3);
}

fn unmap_list(descs: &[(u64, u32)]) -> Vec<u8> {
    let mut p = vec![0u8; 8];
    p[0..2].copy_from_slice(&((6 + 16 * descs.len()) as u16).to_be_bytes());
    p[2..4].copy_from_slice(&((16 * descs.len()) as u16).to_be_bytes());
    for (lba, n) in descs {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

#[test]
fn unmap() {
    let (mut h, disk) = setup();
    h.write_guest(BUF_GPA, &[0xAB; 8192]);
    h.data_out("fill", &write10(0, 16), 8192, Want::Good(8192));
    let list = unmap_list(&[(2, 4), (10, 2)]);
    h.write_guest(BUF_GPA, &list);
    let n = list.len() as u16;
    let cdb = [0x42, 0, 0, 0, 0, 0, 0, (n >> 8) as u8, n as u8, 0];
    h.data_out("unmap", &cdb, n as u32, Want::Good(n as u32));
    let c = disk.contents();
    assert!(c[..1024].iter().all(|&b| b == 0xAB));
    assert!(c[1024..3072].iter().all(|&b| b == 0));
    assert!(c[3072..5120].iter().all(|&b| b == 0xAB));
    assert!(c[5120..6144].iter().all(|&b| b == 0));

    let zero_len = [0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.no_data("empty list", &zero_len, Want::Good(0));
    let short = [0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0];
    let list_error = Want::Check(ILLEGAL, 0x1A, 0);
    h.data_out("list shorter than header", &short, 4, list_error);
    let anchor = [0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0];
    h.data_out("anchor", &anchor, 24, INVALID_FIELD);
    let list = unmap_list(&[(0, 1), (BLOCKS - 1, 2)]);
    h.write_guest(BUF_GPA, &list);
    let n = list.len() as u8;
    let cdb = [0x42, 0, 0, 0, 0, 0, 0, 0, n, 0];
    h.data_out("descriptor past end", &cdb, n as u32, LBA_RANGE);
    assert!(
        disk.contents()[..512].iter().all(|&b| b == 0xAB),
        "nothing unmapped"
    );
    h.data_out("list bigger than buffer", &cdb, 8, OUT_OVERFLOW);
    h.data_in("unmap with data-in", &cdb, n as u32, DATA_PHASE);

    let mut no_unmap = MemBackend::new(64);
    no_unmap.unmap = false;
    let mut h2 = Harness::new(Box::new(no_unmap), RAM_PAGES);
    h2.negotiate();
    h2.data_out("unmap unsupported", &cdb, n as u32, INVALID_OPCODE);
    h2.data_in("rc16", &read_capacity16(), 32, Want::Good(32));
    assert_eq!(h2.read_guest(BUF_GPA + 14, 1)[0] & 0x80, 0, "no LBPME");
}

#[test]
fn write_same() {
    let (mut h, disk) = setup();
    let block: Vec<u8> = (0..512u32).map(|i| i as u8).collect();
    h.write_guest(BUF_GPA, &block);
    let ws16 = rw16(0x93, 100, 300);
    h.data_out("write same 16", &ws16, 512, Want::Good(512));
    let c = disk.contents();
    for b in 100..400 {
        assert_eq!(&c[b * 512..(b + 1) * 512], &block[..], "block {b}");
    }
    assert!(c[400 * 512..401 * 512].iter().all(|&b| b == 0));
    let ws10 = [0x41, 0, 0, 0, 0, 5, 0, 0, 2, 0];
    h.data_out("write same 10", &ws10, 512, Want::Good(512));
    h.data_out("length 0 (WSNZ)", &rw16(0x93, 100, 0), 512, INVALID_FIELD);
    h.data_out("past end", &rw16(0x93, BLOCKS - 1, 2), 512, LBA_RANGE);
    h.data_out("no data block", &ws16, 100, OUT_OVERFLOW);
    let mut ndob = rw16(0x93, 100, 10);
    ndob[1] = 0x01 | 0x08; // NDOB + UNMAP: zeros, may deallocate
    h.no_data("ndob unmap", &ndob, Want::Good(0));
    assert!(disk.contents()[100 * 512..110 * 512]
        .iter()
        .all(|&b| b == 0));
    assert_eq!(&disk.contents()[110 * 512..111 * 512], &block[..]);
}

#[test]
fn sense_is_suppressed_when_the_initiator_has_no_room() {
    let (mut h, _) = setup();
    let srb = Srb::none(&[0x04, 0, 0, 0, 0, 0]);
    let mut payload = srb.payload();
    // sense_info_length lives at SRB offset 9; the SRB follows the vstor header.
    payload[12 + 9] = 0;
    let c = h.send_srb_payload(0, &srb, &payload).unwrap().1.unwrap();
    let r = c.srb();
    assert_eq!(r.scsi_status, 2);
    assert_eq!(r.srb_status & SrbStatus::AUTOSENSE_VALID, 0);
    assert_eq!(r.sense_info_length, 0);
}
