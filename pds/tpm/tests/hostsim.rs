//! The tpm PD in its own host-sim process (tests/tpm.xml) with a guest stand-in
//! (src/bin/tpm-guest.rs) in another: measured boot's PCR 0 equals the replay of
//! the log the guest reads; a secret sealed in one boot is unsealed in the next
//! from the state the host kept in a file; a changed state file stops the TPM
//! from starting, with the reason.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostsim::{SimExit, SimOptions, SimOutcome, Simulation};
use tpm::measured_boot::{encode, Measurement};

const SYSTEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tpm.xml");

fn run(dir: &Path, env: &[(&str, &str)]) -> SimOutcome {
    let system = sdf::load(Path::new(SYSTEM)).unwrap_or_else(|d| panic!("{d}"));
    let bins = Path::new(env!("CARGO_BIN_EXE_tpm"))
        .parent()
        .unwrap()
        .to_path_buf();
    let opts = SimOptions {
        search_paths: vec![bins],
        timeout: Some(Duration::from_secs(60)),
        echo: false,
        env: env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        region_files: vec![
            ("measurements".into(), dir.join("measurements")),
            ("sealed_state".into(), dir.join("sealed_state")),
        ],
    };
    Simulation::launch(&system, &opts)
        .unwrap_or_else(|e| panic!("launch: {e}"))
        .wait()
        .unwrap_or_else(|e| panic!("wait: {e}"))
}

fn guest_line<'a>(o: &'a SimOutcome, prefix: &str) -> &'a str {
    o.stdout_of("guest")
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {:#?}", o.log))
}

fn passed(o: &SimOutcome) {
    assert_eq!(
        o.exit,
        SimExit::Exited {
            pd: "guest".into(),
            code: 0
        },
        "{:#?}",
        o.log
    );
    assert!(o.faults.is_empty(), "{:?}", o.faults);
    guest_line(o, "tpm-guest: all checks passed");
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vtpm-hostsim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut list = encode(&[
        Measurement {
            name: "vmm".into(),
            sha256: [1; 32],
        },
        Measurement {
            name: "tpm".into(),
            sha256: [2; 32],
        },
    ]);
    list.resize(0x1000, 0);
    std::fs::write(dir.join("measurements"), list).unwrap();
    std::fs::write(dir.join("sealed_state"), vec![0u8; 0x10000]).unwrap();
    dir
}

#[test]
fn measured_boot_then_seal_and_unseal_across_boots_and_a_changed_state_is_refused() {
    let dir = scratch();
    let first = run(&dir, &[("TPM_GUEST_STEP", "seal")]);
    passed(&first);
    let tpm_log: Vec<&str> = first.lines_of("tpm").collect();
    assert!(
        tpm_log
            .iter()
            .any(|l| l.contains("measured 2 PD images into PCR 0")),
        "{tpm_log:#?}"
    );
    assert!(
        tpm_log.iter().any(|l| l.contains("DEVELOPMENT key")),
        "{tpm_log:#?}"
    );
    guest_line(&first, "tpm-guest: PCR 0 = replay of the event log = ");
    let object = guest_line(&first, "tpm-guest: sealed object ").to_string();
    let state = std::fs::read(dir.join("sealed_state")).unwrap();
    assert!(
        state.starts_with(b"PVTPMST1"),
        "the host kept a sealed blob"
    );

    let second = run(
        &dir,
        &[("TPM_GUEST_STEP", "unseal"), ("TPM_GUEST_OBJECT", &object)],
    );
    passed(&second);
    assert_eq!(
        guest_line(&second, "tpm-guest: unsealed "),
        "\"sealed in one boot, unsealed in the next\""
    );

    // The host changes one byte of the ciphertext: the TPM refuses to start.
    let mut changed = std::fs::read(dir.join("sealed_state")).unwrap();
    changed[200] ^= 1;
    std::fs::write(dir.join("sealed_state"), &changed).unwrap();
    let third = run(
        &dir,
        &[("TPM_GUEST_STEP", "unseal"), ("TPM_GUEST_OBJECT", &object)],
    );
    let tpm_log: Vec<&str> = third.lines_of("tpm").collect();
    assert!(
        tpm_log
            .iter()
            .any(|l| l.contains("state blob failed authentication")),
        "{:#?}",
        third.log
    );
    assert!(!third
        .stdout_of("guest")
        .any(|l| l.starts_with("tpm-guest: unsealed")));
    let _ = std::fs::remove_dir_all(dir);
}
