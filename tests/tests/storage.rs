//! The root system.xml on host-sim with its disk backed by an image file
//! (`SimOptions::region_files`, `paravisor sim --region-file disk0=...`): the guest
//! runs the storage scenario against storvsp (negotiation, probe, a seeded random
//! write pattern, full read-back, malformed SRBs), then this test compares the image
//! file itself with the pattern regenerated from the same seed.

mod common;

use std::io::Read;
use std::path::PathBuf;

use common::{logged, printed};
use guest_sim::storage::{Pattern, BLOCK, MAX_WRITE_BLOCKS, SEED, WRITES};
use hostsim::{SimOutcome, Simulation};

const DISK_REGION: &str = "disk0";

fn root_system() -> sdf::System {
    common::load("../system.xml")
}

fn disk_size(sys: &sdf::System) -> u64 {
    sys.memory_region(DISK_REGION)
        .unwrap_or_else(|| panic!("system.xml has no {DISK_REGION}"))
        .size
}

fn run_with_image(image: Option<PathBuf>) -> SimOutcome {
    let sys = root_system();
    let mut opts = common::options(120, &[("GUEST_SIM_SCENARIO", "storage")]);
    opts.region_files = image
        .into_iter()
        .map(|p| (DISK_REGION.to_string(), p))
        .collect();
    let outcome = common::run(&sys, &opts);
    common::assert_clean_exit(&outcome, "guest");
    outcome
}

#[test]
fn the_guest_writes_a_pattern_through_storvsp_and_the_image_file_holds_it() {
    let sys = root_system();
    let size = disk_size(&sys);
    let tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.as_file().set_len(size).unwrap();
    let outcome = run_with_image(Some(tmp.path().to_path_buf()));
    printed(
        &outcome,
        "guest",
        &[
            "storage offer: relid",
            "storvsc protocol 6.2, disk of 131072 blocks (64 MiB)",
            "wrote 400 random extents",
            "read back all 64 MiB: every block as written",
            "unsupported opcode: CHECK CONDITION, sense 5/20/00",
            "READ(10) past the last block: CHECK CONDITION, sense 5/21/00",
            "WRITE(16) past the last block: CHECK CONDITION, sense 5/21/00",
            "INQUIRY page code without EVPD: CHECK CONDITION, sense 5/24/00",
            "READ with a write data direction: CHECK CONDITION, sense b/4b/00",
            "page list outside guest RAM: CHECK CONDITION, sense b/4b/0a",
            "page list in memory storvsp was not granted: CHECK CONDITION, sense b/4b/0d",
            "the channel still serves after the malformed SRBs",
            "storage channel closed",
            "PASS (storage",
        ],
    );
    logged(
        &outcome,
        "storvsp",
        &["file I/O on the region's backing object"],
    );

    // The image file itself, block by block, against the regenerated pattern.
    let blocks = size / BLOCK;
    let pattern = Pattern::new(SEED, blocks, WRITES, MAX_WRITE_BLOCKS);
    let mut file = Vec::new();
    std::fs::File::open(tmp.path())
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    assert_eq!(file.len() as u64, size);
    let mut want = vec![0u8; BLOCK as usize];
    let mut nonzero = 0u64;
    for (lba, got) in file.chunks(BLOCK as usize).enumerate() {
        pattern.expected_block(lba as u64, &mut want);
        assert!(
            got == &want[..],
            "image block {lba} differs from the pattern"
        );
        nonzero += u64::from(got.iter().any(|&b| b != 0));
    }
    assert_eq!(nonzero, pattern.written_blocks());
    assert!(
        nonzero > blocks / 4,
        "the pattern covers too little: {nonzero}"
    );
}

#[test]
fn without_an_image_the_disk_is_fresh_memory() {
    let outcome = run_with_image(None);
    printed(&outcome, "guest", &["read back all 64 MiB"]);
}

#[test]
fn a_region_file_of_the_wrong_size_or_region_is_refused_before_anything_starts() {
    let sys = root_system();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.as_file().set_len(disk_size(&sys) - 4096).unwrap();
    let mut opts = common::options(10, &[]);
    opts.region_files = vec![(DISK_REGION.into(), tmp.path().into())];
    let e = Simulation::launch(&sys, &opts).unwrap_err().to_string();
    assert!(
        e.contains("region 'disk0' is 0x4000000 bytes") && e.contains("0x3fff000 bytes"),
        "{e}"
    );
    opts.region_files = vec![("disk9".into(), tmp.path().into())];
    let e = Simulation::launch(&sys, &opts).unwrap_err().to_string();
    assert!(e.contains("no memory region 'disk9'"), "{e}");
    opts.region_files = vec![(DISK_REGION.into(), "/nonexistent/disk.img".into())];
    let e = Simulation::launch(&sys, &opts).unwrap_err().to_string();
    assert!(e.contains("cannot open /nonexistent/disk.img"), "{e}");
}
