//! What the storage scenario checks: the pattern written and read back, and
//! malformed SRBs failing with the sense data SBC says.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use storvsc_client::wire::{malformed_srbs, rw10, rw16, MalformedSrb, READ_16, WRITE_10, WRITE_16};
use storvsc_client::{GuestBuf as Buf, Request};
use storvsp_protocol::DataDirection;

use super::disk::Disk;
use super::pattern::{splitmix, Pattern};
use super::{ok_srb, read_gpa, write_gpa, BLOCK, DATA_END, DATA_GPA, MAX_WRITE_BLOCKS};
use crate::config::PAGE;
use crate::vcpu::Vcpu;
use crate::{ensure, Result};

/// Two buffers of the largest write plus a page, so two writes are in flight.
const SLOT: u64 = (MAX_WRITE_BLOCKS as u64 * BLOCK + PAGE).next_multiple_of(PAGE);

/// Writes the pattern, two requests at a time, each at a pattern-chosen offset in
/// its page so the page lists start and end mid-page. Returns the bytes written.
pub(super) fn write_pattern(
    disk: &mut Disk,
    vcpu: &mut Vcpu<'_>,
    pattern: &Pattern,
) -> Result<u64> {
    let mut written = 0u64;
    let mut data = Vec::new();
    for (pair, writes) in pattern.writes.chunks(2).enumerate() {
        let mut bufs = Vec::new();
        let mut cdbs: Vec<Vec<u8>> = Vec::new();
        for (k, w) in writes.iter().enumerate() {
            let index = (pair * 2 + k) as u32;
            let len = u64::from(w.blocks) * BLOCK;
            // A block-aligned offset within the page (Linux's bios are 512-aligned).
            let gpa = DATA_GPA + k as u64 * SLOT + (splitmix(u64::from(index)) % 8) * BLOCK;
            ensure!(gpa + len <= DATA_END, "data buffer past guest RAM");
            data.resize(len as usize, 0);
            for (b, chunk) in data.chunks_mut(BLOCK as usize).enumerate() {
                pattern.fill_block(index, w.lba + b as u64, chunk);
            }
            write_gpa(vcpu, gpa, &data)?;
            bufs.push(Buf::at(gpa, len as u32));
            // WRITE(10) where it can say it, as sd does; every third as WRITE(16).
            let cdb = match (u32::try_from(w.lba), u16::try_from(w.blocks)) {
                (Ok(lba), Ok(n)) if !index.is_multiple_of(3) => rw10(WRITE_10, lba, n).to_vec(),
                _ => rw16(WRITE_16, w.lba, w.blocks).to_vec(),
            };
            cdbs.push(cdb);
            written += len;
        }
        let reqs: Vec<Request<'_>> = cdbs
            .iter()
            .zip(&bufs)
            .map(|(c, b)| Request {
                cdb: c,
                dir: DataDirection::WRITE,
                buf: Some(b),
            })
            .collect();
        for (k, r) in disk.run(vcpu, &reqs)?.iter().enumerate() {
            ok_srb(r, bufs[k].len, &format!("write {}", pair * 2 + k))?;
        }
    }
    Ok(written)
}

/// Reads the whole disk back, 256 KiB per READ(16), and checks every block.
pub(super) fn verify_disk(
    disk: &mut Disk,
    vcpu: &mut Vcpu<'_>,
    pattern: &Pattern,
    blocks: u64,
) -> Result<()> {
    const CHUNK: u64 = 512;
    let mut got = vec![0u8; (CHUNK * BLOCK) as usize];
    let mut want = vec![0u8; BLOCK as usize];
    let mut lba = 0;
    while lba < blocks {
        let n = CHUNK.min(blocks - lba);
        let len = (n * BLOCK) as usize;
        // Odd 512-byte offsets in the page on alternate reads.
        let gpa = DATA_GPA + (lba / CHUNK % 2) * 7 * BLOCK;
        let buf = Buf::at(gpa, len as u32);
        let cdb = rw16(READ_16, lba, n as u32);
        let r = disk.srb(vcpu, &cdb, DataDirection::READ, Some(&buf))?;
        ok_srb(&r, len as u32, &format!("read at {lba}"))?;
        read_gpa(vcpu, gpa, &mut got[..len])?;
        for (b, block) in got[..len].chunks(BLOCK as usize).enumerate() {
            pattern.expected_block(lba + b as u64, &mut want);
            ensure!(
                block == &want[..],
                "block {} differs from what was written",
                lba + b as u64
            );
        }
        lba += n;
    }
    Ok(())
}

/// Malformed SRBs: each must fail with CHECK CONDITION and the sense data SBC says,
/// and the channel must keep working after them.
pub(super) fn malformed(disk: &mut Disk, vcpu: &mut Vcpu<'_>, blocks: u64) -> Result<()> {
    let buf = Buf::at(DATA_GPA, 4096);
    // A page beyond guest RAM, and one in the host-visible alias storvsp was not given.
    let beyond = Buf {
        gpa: DATA_END,
        len: 4096,
        pfns: vec![DATA_END / PAGE + 1],
    };
    let alias = Buf {
        gpa: crate::config::SHARED_GPA,
        len: 4096,
        pfns: vec![crate::config::SHARED_GPA / PAGE],
    };
    let not_granted = MalformedSrb {
        what: "page list in memory storvsp was not granted",
        cdb: rw10(WRITE_10, 0, 8).to_vec(),
        dir: DataDirection::WRITE,
        buf: Some(&alias),
        sense: (0xB, 0x4B, 0x0D),
    };
    let cases = malformed_srbs(blocks, &buf, &beyond);
    for c in cases.into_iter().chain([not_granted]) {
        let (what, want) = (c.what, c.sense);
        let r = disk.srb(vcpu, &c.cdb, c.dir, c.buf)?;
        let s = r.srb();
        ensure!(
            s.scsi_status == 2 && r.sense() == want,
            "{what}: SCSI status {}, sense {:x?}, expected CHECK CONDITION {want:x?}",
            s.scsi_status,
            r.sense()
        );
        println!(
            "guest_sim: {what}: CHECK CONDITION, sense {:x}/{:02x}/{:02x}",
            want.0, want.1, want.2
        );
    }
    let r = disk.srb(vcpu, &[0; 6], DataDirection::UNKNOWN, None)?;
    ensure!(
        r.srb().scsi_status == 0,
        "TEST UNIT READY after the malformed SRBs failed"
    );
    println!("guest_sim: the channel still serves after the malformed SRBs");
    Ok(())
}
