//! The root system.xml's vTPM with its regions backed by files, as
//! `paravisor sim --region-file tpm_measurements=LIST --region-file
//! tpm_state=STATE` runs it: the tpm PD measures the list into PCR 0 and the
//! guest reads PCR 0 as the replay of the log; the state file then holds a
//! sealed blob, and a second run restores from it. (Without files, the default
//! run in vmbus_echo.rs: no list, PCR 0 zero.)

mod common;

use common::has_all;
use tpm::measured_boot::{encode, Measurement};

fn run(list: &std::path::Path, state: &std::path::Path) -> Vec<String> {
    let mut opts = common::options(60, &[("GUEST_SIM_PACKETS", "4")]);
    opts.region_files = vec![
        ("tpm_measurements".into(), list.to_path_buf()),
        ("tpm_state".into(), state.to_path_buf()),
    ];
    let outcome = common::run(&common::load("../system.xml"), &opts);
    common::assert_clean_exit(&outcome, "guest");
    outcome
        .stdout_of("guest")
        .chain(outcome.lines_of("tpm"))
        .map(String::from)
        .collect()
}

#[test]
fn a_measurement_list_and_a_state_file_reach_the_guest_and_survive_the_run() {
    let sys = common::load("../system.xml");
    let size = |mr: &str| sys.memory_region(mr).map(|r| r.size as usize).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (list, state) = (dir.path().join("list"), dir.path().join("state"));
    let measured = [("guest", 3), ("tpm", 4)].map(|(name, byte)| Measurement {
        name: name.into(),
        sha256: [byte; 32],
    });
    let mut bytes = encode(&measured);
    bytes.resize(size("tpm_measurements"), 0);
    std::fs::write(&list, bytes).unwrap();
    std::fs::write(&state, vec![0u8; size("tpm_state")]).unwrap();

    // The first run manufactures the TPM (generation 0), the second restores
    // the blob the first left (generation 1).
    for generation in 0..2 {
        let lines = run(&list, &state);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        has_all(
            &lines,
            &[
                "guest_sim: tpm: PCR 0 = replay of 2 logged events",
                "measured 2 PD images into PCR 0",
                &format!("(generation {generation})"),
                "guest_sim: PASS",
            ],
        );
        assert!(!lines
            .iter()
            .any(|l| l.contains("measurement list is empty")));
        assert!(std::fs::read(&state).unwrap().starts_with(b"PVTPMST1"));
    }
}
