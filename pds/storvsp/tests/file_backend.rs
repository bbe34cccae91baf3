//! A pseudo-random pattern written at random offsets and sizes over a 64 MiB
//! sparse image through the SRB path (guest memory = an in-process region), then
//! read back through the SRB path and compared with a model and with the image
//! file itself.

#[path = "common/rng.rs"]
mod rng;

use std::io::Read;

use rng::Rng;
use storvsc_client::wire::{rw10, rw16};
use storvsp::harness::{Harness, Srb};
use storvsp::FileBackend;

const IMAGE: u64 = 64 << 20;
const BLOCKS: u64 = IMAGE / 512;
const RAM_PAGES: usize = 160; // 640 KiB of guest RAM
const MAX_IO_BLOCKS: u64 = 1024; // 512 KiB, the advertised maximum transfer

/// A controller negotiated over a fresh, sparse image file of [`IMAGE`] bytes; the
/// file lives as long as the returned handle.
fn negotiated_on_image() -> (tempfile::NamedTempFile, Harness) {
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    tmp.as_file().set_len(IMAGE).expect("image size");
    let backend = FileBackend::open(tmp.path(), false).expect("open the image");
    let mut h = Harness::new(Box::new(backend), RAM_PAGES);
    h.negotiate();
    (tmp, h)
}

#[test]
fn random_writes_read_back_through_srbs_and_match_the_file() {
    let (tmp, mut h) = negotiated_on_image();

    let mut model = vec![0u8; IMAGE as usize];
    let mut rng = Rng::new(0x5eed_1234_abcd_0001);
    let mut written = 0u64;
    for i in 0..400 {
        let blocks = 1 + rng.below(MAX_IO_BLOCKS);
        let lba = rng.below(BLOCKS - blocks + 1);
        let len = (blocks * 512) as usize;
        // Buffers start at a random offset inside a random page.
        let first_page = 1 + rng.below(8);
        let offset = rng.below(4096) as u32;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        h.write_guest(first_page * 4096 + u64::from(offset), &data);
        let cdb: Vec<u8> = if i % 2 == 0 && blocks <= 0xffff {
            rw10(0x2A, lba as u32, blocks as u16).to_vec()
        } else {
            rw16(0x8A, lba, blocks as u32).to_vec()
        };
        let mut srb = Srb::write(&cdb, len as u32, first_page);
        srb.buffer = storvsp::harness::Buffer::Pages {
            first: first_page,
            offset,
            byte_count: len as u32,
        };
        let c = h.srb(&srb);
        let r = c.srb();
        assert_eq!(
            (r.scsi_status, r.data_transfer_length),
            (0, len as u32),
            "write {i}"
        );
        model[lba as usize * 512..][..len].copy_from_slice(&data);
        written += len as u64;
    }
    assert!(
        written > 64 << 20,
        "exercise more than the image size: {written}"
    );

    // Flush, as the guest would before trusting the data.
    let c = h.srb(&Srb::none(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(c.srb().scsi_status, 0);

    // Read the whole disk back through READ(16) in 512 KiB pieces.
    let chunk = MAX_IO_BLOCKS;
    let mut lba = 0;
    while lba < BLOCKS {
        let c = h.srb(&Srb::read(
            &rw16(0x88, lba, chunk as u32),
            (chunk * 512) as u32,
            1,
        ));
        assert_eq!(c.srb().scsi_status, 0, "read at {lba}");
        let got = h.read_guest(4096, (chunk * 512) as usize);
        let want = &model[lba as usize * 512..][..got.len()];
        assert!(got == want, "mismatch in the chunk at lba {lba}");
        lba += chunk;
    }

    // And the file itself holds exactly the model.
    let mut file = Vec::new();
    std::fs::File::open(tmp.path())
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    assert_eq!(file.len(), model.len());
    assert!(file == model, "image file differs from what was written");
}

#[test]
fn unmap_punches_holes_in_the_image() {
    use std::os::unix::fs::MetadataExt;
    let (tmp, mut h) = negotiated_on_image();
    h.write_guest(4096, &vec![0x5A; 512 * 1024]);
    for k in 0..8 {
        let c = h.srb(&Srb::write(&rw16(0x8A, k * 1024, 1024), 512 * 1024, 1));
        assert_eq!(c.srb().scsi_status, 0);
    }
    h.srb(&Srb::none(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    let before = tmp.as_file().metadata().unwrap().blocks();
    // UNMAP the first 2 MiB.
    let mut list = vec![0u8; 24];
    list[0..2].copy_from_slice(&22u16.to_be_bytes());
    list[2..4].copy_from_slice(&16u16.to_be_bytes());
    list[8..16].copy_from_slice(&0u64.to_be_bytes());
    list[16..20].copy_from_slice(&4096u32.to_be_bytes());
    h.write_guest(4096, &list);
    let cdb = [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0];
    let c = h.srb(&Srb::write(&cdb, 24, 1));
    assert_eq!(c.srb().scsi_status, 0);
    let after = tmp.as_file().metadata().unwrap().blocks();
    let mut head = vec![0u8; 2 << 20];
    std::fs::File::open(tmp.path())
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert!(head.iter().all(|&b| b == 0), "unmapped range reads zero");
    // Where the file system can punch holes the blocks are freed.
    assert!(after <= before, "{after} > {before}");
}
