//! `--measurements REGION`: measured boot's input, laid out by the builder.
//!
//! The tpm PD extends PCR 0 with every PD's program image hash, in manifest order,
//! from a list it reads out of a region (`tpm::measured_boot`). Those hashes are
//! known only once the images are located, so the builder writes the list itself
//! into REGION's initial contents; the list covers program images, not region
//! contents, so it does not list itself. The manifest states the list and what it
//! must produce (the PCR, the event log's hash and size), and `verify` re-derives
//! all of it from the image.

use sha2::{Digest, Sha256};
use tpm::eventlog::replay;
use tpm::measured_boot::{self, Measurement, PCR};

use crate::failure::Failure;
use crate::image::{hex, ImageInfo};
use crate::manifest::schema::{MeasuredBoot, MeasuredImage, SizedHash};
use crate::region_data::RegionData;

/// Where the manifest's `initial_data.path` says the bytes came from.
pub const SOURCE: &str = "(measured boot list: every PD's program image)";

/// The list for a system whose PDs, in `system.all_pds()` (manifest) order, run
/// `images`.
pub fn list(system: &sdf::System, images: &[ImageInfo]) -> Result<Vec<Measurement>, String> {
    system
        .all_pds()
        .into_iter()
        .zip(images)
        .map(|(pd, image)| {
            let sha256 = measured_boot::sha256_from_hex(&image.sha256)
                .ok_or_else(|| format!("PD {}: image hash {:?}", pd.name, image.sha256))?;
            Ok(Measurement {
                name: pd.name.clone(),
                sha256,
            })
        })
        .collect()
}

/// REGION's initial contents: the encoded list, refused when REGION cannot take it.
pub fn region_data(
    system: &sdf::System,
    region: &str,
    images: &[ImageInfo],
) -> Result<RegionData, Failure> {
    let fail = |what: String| Failure::msg(format!("--measurements {region}: {what}"));
    let mr = system
        .memory_region(region)
        .ok_or_else(|| fail(format!("the system has no memory region '{region}'")))?;
    if mr.phys_addr.is_some() {
        return Err(fail(format!(
            "region '{region}' has a fixed phys_addr (device memory); only allocated regions take initial contents"
        )));
    }
    let list = list(system, images).map_err(fail)?;
    if list.len() > measured_boot::MAX_ENTRIES as usize {
        return Err(fail(format!(
            "{} PDs; the tpm PD's list holds at most {}",
            list.len(),
            measured_boot::MAX_ENTRIES
        )));
    }
    let bytes = measured_boot::encode(&list);
    if bytes.len() as u64 > mr.size {
        return Err(fail(format!(
            "the list is {} bytes, larger than region '{region}' ({} bytes)",
            bytes.len(),
            mr.size
        )));
    }
    Ok(RegionData {
        region: region.to_string(),
        path: SOURCE.into(),
        sha256: hex(&Sha256::digest(&bytes)),
        bytes,
        measured: true,
    })
}

/// The manifest's `measured_boot` for the list held by `region`.
pub fn entry(region: &str, list: &[Measurement]) -> Result<MeasuredBoot, String> {
    let log = measured_boot::event_log(list, usize::MAX)
        .map_err(|_| "the event log does not fit".to_string())?;
    let pcrs = replay(log.bytes()).map_err(|e| format!("the event log does not replay: {e:?}"))?;
    Ok(MeasuredBoot {
        region: region.to_string(),
        pcr: PCR,
        images: list
            .iter()
            .map(|m| MeasuredImage {
                pd: m.name.clone(),
                sha256: hex(&m.sha256),
            })
            .collect(),
        pcr_sha256: hex(&pcrs[PCR as usize]),
        event_log: SizedHash {
            sha256: hex(&Sha256::digest(log.bytes())),
            size: log.bytes().len() as u64,
        },
    })
}

/// What makes the image's list (`region_bytes`, the PDs it holds as (name, image
/// sha256)) not the manifest's `measured_boot`, one line each.
pub fn differences(
    manifest: &MeasuredBoot,
    region_bytes: &[u8],
    pds: &[(String, String)],
) -> Vec<String> {
    let list = match measured_boot::parse(region_bytes) {
        Ok(l) => l,
        Err(e) => {
            return vec![format!(
                "measured boot: region {} does not hold a measurement list ({e:?})",
                manifest.region
            )]
        }
    };
    let mut diffs = Vec::new();
    let held: Vec<(String, String)> = list
        .iter()
        .map(|m| (m.name.clone(), hex(&m.sha256)))
        .collect();
    if held != pds {
        diffs.push(format!(
            "measured boot: region {} lists {held:?}, the image's PDs and program images are {pds:?}",
            manifest.region
        ));
    }
    match entry(&manifest.region, &list) {
        Ok(derived) if derived == *manifest => {}
        Ok(derived) => diffs.push(format!(
            "measured boot: the image's list gives {derived:?}, the manifest says {manifest:?}"
        )),
        Err(e) => diffs.push(format!("measured boot: {e}")),
    }
    diffs
}
