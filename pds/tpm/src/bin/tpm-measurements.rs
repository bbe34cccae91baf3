//! `tpm-measurements MANIFEST.json [-o FILE]`: the tpm PD's measurement list
//! (see `tpm::measured_boot`) from `paravisor manifest`'s JSON: every PD's name
//! and program image SHA-256, in the manifest's order.

use std::io::Write;

use tpm::measured_boot::{encode, sha256_from_hex, Measurement};

fn measurements(manifest: &serde_json::Value) -> Result<Vec<Measurement>, String> {
    let pds = manifest["protection_domains"]
        .as_array()
        .ok_or("no protection_domains array (not a paravisor manifest?)")?;
    pds.iter()
        .map(|pd| {
            let name = pd["name"].as_str().ok_or("a PD without a name")?;
            let hex = pd["program_image"]["sha256"]
                .as_str()
                .ok_or_else(|| format!("PD {name}: no program_image.sha256"))?;
            Ok(Measurement {
                name: name.into(),
                sha256: sha256_from_hex(hex)
                    .ok_or_else(|| format!("PD {name}: bad sha256 {hex:?}"))?,
            })
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match args.as_slice() {
        [i] => (i, None),
        [i, o, f] if o == "-o" => (i, Some(f)),
        _ => {
            eprintln!("usage: tpm-measurements MANIFEST.json [-o FILE]");
            std::process::exit(2);
        }
    };
    let result = std::fs::read(input)
        .map_err(|e| format!("{input}: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("{input}: {e}")))
        .and_then(|m| measurements(&m));
    let list = match result {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tpm-measurements: {e}");
            std::process::exit(1);
        }
    };
    let bytes = encode(&list);
    let written = match output {
        Some(f) => std::fs::write(f, &bytes),
        None => std::io::stdout().write_all(&bytes),
    };
    if let Err(e) = written {
        eprintln!("tpm-measurements: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_becomes_the_list_in_its_order_and_bad_ones_are_refused() {
        let m = serde_json::json!({"protection_domains": [
            {"name": "synic", "program_image": {"sha256": "00".repeat(31) + "01"}},
            {"name": "tpm", "program_image": {"sha256": "ff".repeat(32)}},
        ]});
        let list = measurements(&m).unwrap();
        assert_eq!(list[0].name, "synic");
        assert_eq!(list[0].sha256[31], 1);
        assert_eq!(list[1].sha256, [0xff; 32]);
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"protection_domains": [{"name": "x"}]}),
            serde_json::json!({"protection_domains": [{"name": "x", "program_image": {"sha256": "zz"}}]}),
        ] {
            assert!(measurements(&bad).is_err(), "{bad}");
        }
    }
}
