//! End to end in one process: VMBus client -> vmbus-server (loopback) -> the
//! rings in guest RAM (`vmbus-ring`) -> storvsp -> a 64 MiB sparse image file.

mod common;

use std::io::Read;

use common::rng::Rng;
use common::vmbus::{rw10, rw16, GuestBuf, Machine, Storvsc, DATA_PFN, PAGE};
use storvsc_client::wire::{malformed_srbs, MalformedSrb};
use storvsp::FileBackend;
use storvsp_protocol::{DataDirection, NtStatus, ProtocolVersion};

const IMAGE: u64 = 64 << 20;
const BLOCKS: u64 = IMAGE / 512;
const RAM_PAGES: usize = 256;
const DATA_GPA: u64 = DATA_PFN * PAGE as u64;

#[test]
fn random_io_over_vmbus_rings_matches_the_image_file() {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.as_file().set_len(IMAGE).unwrap();
    let machine = Machine::new(RAM_PAGES);
    let backend = FileBackend::open(tmp.path(), false).unwrap();
    let (mut guest, mut vsp) = machine.parts(Box::new(backend));
    assert_eq!(guest.negotiate(&mut vsp), ProtocolVersion::WIN10);

    // The disk Linux would probe.
    let inq = [0x12, 0, 0, 0, 36, 0];
    let r = guest.srb(
        &mut vsp,
        &inq,
        DataDirection::READ,
        Some(&GuestBuf::at(DATA_GPA, 36)),
    );
    assert_eq!(r.srb().scsi_status, 0);
    let mut vendor = [0u8; 8];
    guest
        .region
        .read_bytes(DATA_GPA as usize + 8, &mut vendor)
        .unwrap();
    assert_eq!(&vendor, b"Msft    ");

    let mut model = vec![0u8; IMAGE as usize];
    let mut rng = Rng::new(0x0123_4567_89ab_cdef);
    let mut written = 0u64;
    for i in 0..300 {
        let blocks = 1 + rng.below(1024);
        let lba = rng.below(BLOCKS - blocks + 1);
        let len = (blocks * 512) as usize;
        let gpa = DATA_GPA + rng.below(4096);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        guest.region.write_bytes(gpa as usize, &data).unwrap();
        let cdb = if i % 3 == 0 {
            rw10(0x2A, lba as u32, blocks as u16).to_vec()
        } else {
            rw16(0x8A, lba, blocks as u32).to_vec()
        };
        let r = guest.srb(
            &mut vsp,
            &cdb,
            DataDirection::WRITE,
            Some(&GuestBuf::at(gpa, len as u32)),
        );
        assert_eq!(r.header.status, NtStatus::SUCCESS, "write {i}");
        assert_eq!(r.srb().data_transfer_length, len as u32);
        model[lba as usize * 512..][..len].copy_from_slice(&data);
        written += len as u64;
    }
    assert!(written > 64 << 20);
    let sync = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        guest
            .srb(&mut vsp, &sync, DataDirection::UNKNOWN, None)
            .srb()
            .scsi_status,
        0
    );

    // Read everything back through the rings, 512 KiB at a time.
    let chunk = 1024u64;
    let mut got = vec![0u8; (chunk * 512) as usize];
    for lba in (0..BLOCKS).step_by(chunk as usize) {
        let buf = GuestBuf::at(DATA_GPA + 100, got.len() as u32);
        let r = guest.srb(
            &mut vsp,
            &rw16(0x88, lba, chunk as u32),
            DataDirection::READ,
            Some(&buf),
        );
        assert_eq!(r.srb().scsi_status, 0, "read at {lba}");
        guest
            .region
            .read_bytes(DATA_GPA as usize + 100, &mut got)
            .unwrap();
        assert!(
            got[..] == model[lba as usize * 512..][..got.len()],
            "data at lba {lba}"
        );
    }
    let mut file = Vec::new();
    std::fs::File::open(tmp.path())
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    assert!(file == model, "image file differs");
}

#[test]
fn malformed_srbs_over_the_rings_get_sense_data() {
    const BLOCKS_IN_MEMORY: u64 = 2048;
    let machine = Machine::new(RAM_PAGES);
    let disk = storvsp::harness::MemBackend::new(BLOCKS_IN_MEMORY);
    let (mut guest, mut vsp) = machine.parts(Box::new(disk));
    guest.negotiate(&mut vsp);
    let buf = GuestBuf::at(DATA_GPA, 4096);
    let beyond = GuestBuf {
        gpa: (RAM_PAGES as u64 + 1) * PAGE as u64,
        len: 4096,
        pfns: vec![RAM_PAGES as u64 + 1],
    };
    let ring_pages = GuestBuf {
        gpa: RAM_PAGES as u64 * 4 * PAGE as u64,
        len: 4096,
        pfns: vec![RAM_PAGES as u64 * 4],
    };
    let ring_pages_srb = MalformedSrb {
        what: "ring pages as a data buffer are still guest memory",
        cdb: rw10(0x28, 0, 8).to_vec(),
        dir: DataDirection::READ,
        buf: Some(&ring_pages),
        sense: (0xB, 0x4B, 0x0A),
    };
    let cases = malformed_srbs(BLOCKS_IN_MEMORY, &buf, &beyond);
    for c in cases.into_iter().chain([ring_pages_srb]) {
        let r = guest.srb(&mut vsp, &c.cdb, c.dir, c.buf);
        assert_eq!(r.srb().scsi_status, 2, "{}", c.what);
        assert_eq!(r.sense(), c.sense, "{}", c.what);
    }
    // The channel keeps working.
    let r = guest.srb(&mut vsp, &[0; 6], DataDirection::UNKNOWN, None);
    assert_eq!(r.srb().scsi_status, 0);
}

#[test]
fn a_full_completion_ring_waits_for_the_guest() {
    let machine = Machine::new(RAM_PAGES);
    let (mut guest, mut vsp) = machine.parts(Box::new(storvsp::harness::MemBackend::new(64)));
    guest.negotiate(&mut vsp);
    let tur = Storvsc::srb_payload(&[0; 6], DataDirection::UNKNOWN, 0);
    // Fill the host-to-guest ring with completions the guest does not read.
    let mut sent = 0;
    let mut handled = 0;
    // Each batch fits the guest-to-host ring; two batches overflow the answers.
    for _ in 0..2 {
        for _ in 0..1000 {
            guest.send(&tur, None);
            sent += 1;
        }
        handled += vsp.run();
    }
    assert!(
        handled < sent,
        "the VSP stopped when the ring filled ({handled}/{sent})"
    );
    // The guest drains; its read makes room and the VSP goes on.
    let mut received = 0;
    while received < sent {
        while let Some((_, r)) = guest.recv() {
            assert_eq!(r.srb().scsi_status, 0);
            received += 1;
        }
        if received < sent {
            let more = vsp.run();
            assert!(more > 0, "VSP made no progress at {received}/{sent}");
        }
    }
    assert_eq!(received, sent);
}
