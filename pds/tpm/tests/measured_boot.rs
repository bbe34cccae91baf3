//! Measured boot against `paravisor manifest`: a system's manifest becomes the
//! measurement list (`tpm-measurements`), the tpm PD extends PCR 0 with every
//! image hash in manifest order, and the event log it publishes replays to the
//! PCR value the TPM reports and names the manifest's images in its order.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{libtpms_turn, Guest};
use ipc::testing::leaked_region;
use tpm::eventlog::{events, replay, EV_POST_CODE};
use tpm::libtpms::LibtpmsEngine;
use tpm::measured_boot::{self, BootError, ListError, Measurement, EVENT_LOG, MEASUREMENTS};
use tpm::{commands, Unsupported};

/// The `paravisor` CLI, built on demand into this target directory.
fn paravisor() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "paravisor", "--target-dir"])
        .arg(&target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p paravisor");
    target.join("debug/paravisor")
}

/// Runs a tool to success; its stdout.
fn run(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{command:?}: {stderr}");
    out.stdout
}

/// A two-PD system with made-up images, its manifest, and the list made from it.
fn manifest_and_list(dir: &Path) -> (serde_json::Value, Vec<u8>) {
    std::fs::write(dir.join("alpha.elf"), b"the alpha image").unwrap();
    std::fs::write(dir.join("beta.elf"), b"the beta image, longer").unwrap();
    std::fs::write(
        dir.join("system.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<system>
    <protection_domain name="beta" priority="100"><program_image path="beta.elf" /></protection_domain>
    <protection_domain name="alpha" priority="120"><program_image path="alpha.elf" /></protection_domain>
</system>
"#,
    )
    .unwrap();
    run(Command::new(paravisor())
        .arg("manifest")
        .arg(dir.join("system.xml"))
        .arg("-o")
        .arg(dir.join("manifest.json")));
    let list =
        run(Command::new(env!("CARGO_BIN_EXE_tpm-measurements")).arg(dir.join("manifest.json")));
    let manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    (manifest, list)
}

#[test]
fn the_event_log_replays_to_pcr0_and_matches_the_manifest() {
    let dir = tempfile_dir("measured");
    let (manifest, list) = manifest_and_list(&dir);
    let _turn = libtpms_turn();
    let measurements = leaked_region(4096);
    measurements.write_bytes(0, &list).unwrap();
    let log = leaked_region(0x4000);
    let mut g = Guest::with(LibtpmsEngine::start(None).unwrap(), |init| {
        init.region(MEASUREMENTS, measurements.restrict(ipc::Perms::R))
            .region(EVENT_LOG, log)
    });
    assert_eq!(g.pd.measured_boot(&mut g.kernel), Ok(2));

    let mut bytes = vec![0u8; log.len()];
    log.read_bytes(0, &mut bytes).unwrap();
    // The guest's view: PCR 0 read through the CRB equals the log's replay.
    let pcrs = commands::pcr_values(&g.transact(&commands::pcr_read(1))).unwrap();
    let replayed = replay(&bytes).unwrap();
    assert_eq!(pcrs, vec![replayed[0]]);
    assert_ne!(replayed[0], [0; 32]);
    // What the PD published is, byte for byte, the log the image builder states in
    // the manifest (`event_log`, no TPM involved), then zeros.
    let stated =
        measured_boot::event_log(&measured_boot::parse(&list).unwrap(), bytes.len()).unwrap();
    let (published, rest) = bytes.split_at(stated.bytes().len());
    assert_eq!(published, stated.bytes());
    assert!(rest.iter().all(|&b| b == 0));
    // The log names the manifest's PDs and hashes, in the manifest's order.
    let want: Vec<(String, String)> = manifest["protection_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pd| {
            (
                pd["name"].as_str().unwrap().to_string(),
                pd["program_image"]["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(want[0].0, "beta");
    let got: Vec<(String, String)> = events(&bytes)
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!((e.pcr, e.event_type), (0, EV_POST_CODE));
            (
                String::from_utf8(e.data.to_vec()).unwrap(),
                e.sha256.iter().map(|b| format!("{b:02x}")).collect(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // A log with one digest changed no longer replays to the TPM's PCR.
    let first_digest = bytes
        .windows(32)
        .position(|w| w == events(&bytes).unwrap()[0].sha256)
        .unwrap();
    bytes[first_digest] ^= 1;
    assert_ne!(replay(&bytes).unwrap()[0], pcrs[0]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_lists_and_a_tpm_without_an_engine_stop_measured_boot() {
    let good = measured_boot::encode(&[Measurement {
        name: "vmm".into(),
        sha256: [7; 32],
    }]);
    assert_eq!(measured_boot::parse(&good).unwrap()[0].name, "vmm");
    let mut too_many = good.clone();
    too_many[8..12].copy_from_slice(&64u32.to_le_bytes());
    let mut short = good.clone();
    short[8..12].copy_from_slice(&2u32.to_le_bytes());
    let mut unnamed = good.clone();
    unnamed[16] = 0;
    let mut not_utf8 = good.clone();
    not_utf8[16] = 0xff;
    let table: &[(&[u8], ListError)] = &[
        (b"", ListError::BadMagic),
        (b"PVMEAS02\x01\0\0\0\0\0\0\0", ListError::BadMagic),
        (&too_many, ListError::BadCount(64)),
        (&short, ListError::BadCount(2)),
        (&unnamed, ListError::BadName(0)),
        (&not_utf8, ListError::BadName(0)),
    ];
    for (bytes, want) in table {
        assert_eq!(measured_boot::parse(bytes), Err(*want));
    }
    // Manifest hashes: exactly 64 hex digits.
    let mut hex = "0f".repeat(32);
    assert_eq!(measured_boot::sha256_from_hex(&hex), Some([0x0f; 32]));
    hex.replace_range(..2, "+f");
    for bad in [
        &hex[..],
        "",
        &"0f".repeat(31),
        &"0F".repeat(33),
        &"é".repeat(32),
    ] {
        assert_eq!(measured_boot::sha256_from_hex(bad), None, "{bad:?}");
    }
    assert_eq!(
        measured_boot::sha256_from_hex(&"AB".repeat(32)),
        Some([0xab; 32])
    );
    // Without an engine, Startup fails and the PD says so instead of serving.
    let measurements = leaked_region(4096);
    measurements.write_bytes(0, &good).unwrap();
    let mut g = Guest::with(Unsupported, |init| init.region(MEASUREMENTS, measurements));
    assert_eq!(
        g.pd.measured_boot(&mut g.kernel),
        Err(BootError::Tpm {
            command: "TPM2_Startup",
            rc: 0x101
        })
    );
}

#[test]
fn a_list_region_left_zero_measures_nothing_but_starts_the_tpm() {
    // paravisor sim's fresh memory: the PD starts the TPM (the guest's Startup
    // is refused as a second one), PCR 0 stays zero and the log is its header.
    let _turn = libtpms_turn();
    let measurements = leaked_region(4096);
    let log = leaked_region(0x4000);
    let mut g = Guest::with(LibtpmsEngine::start(None).unwrap(), |init| {
        init.region(MEASUREMENTS, measurements.restrict(ipc::Perms::R))
            .region(EVENT_LOG, log)
    });
    assert_eq!(g.pd.measured_boot(&mut g.kernel), Ok(0));
    let startup = g.transact(&commands::startup_clear());
    assert_eq!(startup.get(6..10), Some(&0x100u32.to_be_bytes()[..]));
    let mut bytes = vec![0u8; log.len()];
    log.read_bytes(0, &mut bytes).unwrap();
    assert_eq!(events(&bytes).unwrap(), vec![]);
    assert_eq!(replay(&bytes).unwrap()[0], [0; 32]);
    let pcrs = commands::pcr_values(&g.transact(&commands::pcr_read(1))).unwrap();
    assert_eq!(pcrs, vec![[0; 32]]);
    // One stray byte is a damaged list, not an empty one.
    assert_eq!(measured_boot::parse_region(&[0; 64]), Ok(vec![]));
    let mut stray = [0u8; 64];
    stray[40] = 1;
    assert_eq!(
        measured_boot::parse_region(&stray),
        Err(ListError::BadMagic)
    );
}

fn tempfile_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vtpm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
