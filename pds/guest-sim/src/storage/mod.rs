//! `GUEST_SIM_SCENARIO=storage`: the guest drives the storage VSP as Linux's
//! hv_storvsc does, over the root system's storvsp channel.
//!
//! It negotiates (BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION from 6.2 down,
//! QUERY_PROPERTIES, END_INITIALIZATION), probes the disk (INQUIRY, READ CAPACITY 10
//! and 16), writes a [`Pattern`] at random offsets and sizes with WRITE(10)/WRITE(16)
//! GPA-direct packets, reads the whole disk back and checks it, and sends malformed
//! SRBs that must come back with the right sense data. The pattern is a pure
//! function of a seed, so a host test regenerates it and compares the image file.
//!
//! `GUEST_SIM_SCENARIO=storage-bench` times sequential 64 KiB writes and reads and
//! random 4 KiB reads instead, at queue depths 1 and 8, and prints one line per run
//! for the host-side benchmark to compare with direct file I/O.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use storvsc_client::{GuestBuf as Buf, Reply};
use storvsp_protocol::{DataDirection, NtStatus, ProtocolVersion};
use synic_pd::Instance;
use vmbus_client::{Client, ClientConfig};

use crate::scenario::client_error;
use vmbus_protocol::ids::interface;
use vmbus_protocol::FeatureFlags;

use crate::config::PAGE;
use crate::time::Instant;
use crate::vcpu::Vcpu;
use crate::{ensure, Failure, Result};

mod bench;
mod checks;
mod disk;
mod pattern;

use disk::Disk;
pub use pattern::{Pattern, Write};

pub const BLOCK: u64 = 512;
/// The seed of the pattern the storage scenario writes.
pub const SEED: u64 = 0x5354_4f52_4147_4521;
/// Random writes the scenario makes (1 to [`MAX_WRITE_BLOCKS`] blocks each).
pub const WRITES: u32 = 400;
pub const MAX_WRITE_BLOCKS: u32 = 512;

/// The storage channel's rings: private pages after the echo scenario's, each ring a
/// control page and seven data pages.
const RING_PFN: u64 = 0x110;
const RING_PAGES: u64 = 8;
/// Data buffers: private guest RAM from here to the end (2 MiB).
pub(crate) const DATA_GPA: u64 = 0x12_0000;
pub(crate) const DATA_END: u64 = 0x20_0000;
/// Versions Linux asks for, newest first (storvsc's `protocol_version` list).
const VERSIONS: [ProtocolVersion; 4] = [
    ProtocolVersion::WIN10,
    ProtocolVersion::WIN8_1,
    ProtocolVersion::WIN8,
    ProtocolVersion::WIN7,
];

/// What the run does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Protocol, pattern and malformed-SRB checks.
    Check,
    /// Timed I/O over the first `mib` MiB of the disk.
    Bench { mib: u32 },
}

pub const ENV_BENCH_MIB: &str = "GUEST_SIM_BENCH_MIB";

impl Mode {
    /// The mode `GUEST_SIM_SCENARIO` names, if it is a storage scenario.
    pub fn from_env(scenario: &str, get: &dyn Fn(&str) -> Option<String>) -> Option<Result<Self>> {
        match scenario {
            "storage" => Some(Ok(Self::Check)),
            "storage-bench" => Some(match get(ENV_BENCH_MIB) {
                None => Ok(Self::Bench { mib: 16 }),
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|&m| (1..=64).contains(&m))
                    .map(|mib| Self::Bench { mib })
                    .ok_or_else(|| Failure(format!("{ENV_BENCH_MIB}={v:?}: use 1..=64"))),
            }),
            _ => None,
        }
    }
}

/// Checks a data SRB completed in full.
pub(crate) fn ok_srb(r: &Reply, len: u32, what: &str) -> Result<()> {
    let s = r.srb();
    ensure!(
        r.header.status == NtStatus::SUCCESS && s.scsi_status == 0 && s.data_transfer_length == len,
        "{what}: status {:#x}, SCSI status {}, {} of {len} bytes, sense {:?}",
        r.header.status.0,
        s.scsi_status,
        s.data_transfer_length,
        r.sense()
    );
    Ok(())
}

/// Runs the storage scenario; prints a line per step and returns the summary.
pub fn run(vcpu: Vcpu<'_>, mode: Mode) -> Result<String> {
    let started = Instant::now();
    let mut vcpu = vcpu;
    let hv = vcpu.detect_hyperv()?;
    ensure!(
        hv.confidential_vmbus,
        "the paravisor does not offer Confidential VMBus"
    );
    vcpu.synic.enable(vcpu.kernel, Instance::PARAVISOR)?;
    vcpu.synic.enable(vcpu.kernel, Instance::HYPERVISOR)?;
    let mut client = Client::new(vcpu, ClientConfig::linux_confidential());
    let connection = crate::scenario::connect(&mut client)?;
    ensure!(
        connection
            .features
            .contains(FeatureFlags::CONFIDENTIAL_CHANNELS),
        "no confidential channels: storvsp serves private rings only"
    );
    client.transport().message_instance = Some(Instance::PARAVISOR);
    let offers = client
        .request_offers()
        .map_err(|e| client_error("REQUESTOFFERS", e))?;
    let offer = *offers
        .iter()
        .find(|o| o.interface_id == interface::STORAGE)
        .ok_or_else(|| Failure(format!("no storage offer among {} offers", offers.len())))?;
    println!(
        "guest_sim: storage offer: relid {}, connection {:#x}, flags {:?}",
        offer.relid.0, offer.connection_id, offer.flags
    );

    let pfns: Vec<u64> = (RING_PFN..RING_PFN + 2 * RING_PAGES).collect();
    for &pfn in &pfns {
        let (region, offset) = client.transport().memory_at(pfn * PAGE, PAGE as usize)?;
        region
            .fill(offset, PAGE as usize, 0)
            .map_err(|e| Failure(format!("ring page {pfn:#x}: {e}")))?;
    }
    let mut disk = Disk::attach(
        client.transport(),
        &pfns,
        RING_PAGES as usize,
        offer.relid,
        offer.connection_id,
        Instance::PARAVISOR,
    )?;
    let gpadl = crate::scenario::open_on_rings(&mut client, offer.relid, &pfns, RING_PAGES as u32)?;

    let vcpu = client.transport();
    let version = negotiate(&mut disk, vcpu)?;
    let blocks = probe(&mut disk, vcpu)?;
    println!(
        "guest_sim: storvsc protocol {}.{}, disk of {blocks} blocks ({} MiB)",
        version.0 >> 8,
        version.0 & 0xff,
        (blocks * BLOCK) >> 20
    );
    let summary = match mode {
        Mode::Check => {
            let pattern = Pattern::new(SEED, blocks, WRITES, MAX_WRITE_BLOCKS);
            let written = checks::write_pattern(&mut disk, vcpu, &pattern)?;
            let sync = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            ok_srb(
                &disk.srb(vcpu, &sync, DataDirection::UNKNOWN, None)?,
                0,
                "SYNCHRONIZE CACHE",
            )?;
            println!(
                "guest_sim: wrote {} random extents ({} MiB, {} of {blocks} blocks covered), synchronized",
                pattern.writes.len(),
                written >> 20,
                pattern.written_blocks()
            );
            checks::verify_disk(&mut disk, vcpu, &pattern, blocks)?;
            println!(
                "guest_sim: read back all {} MiB: every block as written",
                (blocks * BLOCK) >> 20
            );
            checks::malformed(&mut disk, vcpu, blocks)?;
            format!(
                "guest_sim: PASS (storage, {} writes, {} signals, {} interrupts, {:.0} ms)",
                pattern.writes.len(),
                disk.client.signals,
                disk.client.interrupts,
                started.elapsed().as_secs_f64() * 1000.0
            )
        }
        Mode::Bench { mib } => {
            bench::bench(&mut disk, vcpu, u64::from(mib) << 20, blocks)?;
            format!("guest_sim: PASS (storage-bench, {mib} MiB)")
        }
    };
    crate::scenario::close_channel(&mut client, offer.relid, gpadl)?;
    client.unload().map_err(|e| client_error("UNLOAD", e))?;
    println!("guest_sim: storage channel closed, GPADL torn down, unloaded");
    Ok(summary)
}

/// Linux's storvsc_channel_init, and a transfer size the pattern fits in.
fn negotiate(disk: &mut Disk, vcpu: &mut Vcpu<'_>) -> Result<ProtocolVersion> {
    let done = disk.negotiate(vcpu, &VERSIONS)?;
    for v in &done.refused {
        println!(
            "guest_sim: storvsp refused protocol {:#x}, stepping down",
            v.0
        );
    }
    let max_transfer = done.properties.map_or(0, |p| p.max_transfer_bytes);
    ensure!(
        max_transfer >= MAX_WRITE_BLOCKS * BLOCK as u32,
        "storvsp moves at most {max_transfer} bytes per request"
    );
    Ok(done.version)
}

/// INQUIRY, READ CAPACITY (10) and (16): returns the disk's block count.
fn probe(disk: &mut Disk, vcpu: &mut Vcpu<'_>) -> Result<u64> {
    let inq: [u8; 36] = read_data(disk, vcpu, &[0x12, 0, 0, 0, 36, 0], "INQUIRY")?;
    ensure!(
        inq[0] & 0x1f == 0,
        "INQUIRY: peripheral type {:#x}, not a disk",
        inq[0]
    );
    let cap10: [u8; 8] = read_data(
        disk,
        vcpu,
        &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "READ CAPACITY (10)",
    )?;
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9E;
    cdb[1] = 0x10;
    cdb[13] = 32;
    let cap16: [u8; 32] = read_data(disk, vcpu, &cdb, "READ CAPACITY (16)")?;
    let last10 = u32::from_be_bytes([cap10[0], cap10[1], cap10[2], cap10[3]]);
    let size10 = u32::from_be_bytes([cap10[4], cap10[5], cap10[6], cap10[7]]);
    let mut last16 = [0u8; 8];
    last16.copy_from_slice(&cap16[..8]);
    let last16 = u64::from_be_bytes(last16);
    let size16 = u32::from_be_bytes([cap16[8], cap16[9], cap16[10], cap16[11]]);
    ensure!(
        size10 == BLOCK as u32
            && size16 == BLOCK as u32
            && u64::from(last10) == last16
            && last16 > 0,
        "READ CAPACITY: (10) says {last10}/{size10}, (16) says {last16}/{size16}"
    );
    Ok(last16 + 1)
}

/// A command that reads `N` bytes into the data buffer, and what it read.
fn read_data<const N: usize>(
    disk: &mut Disk,
    vcpu: &mut Vcpu<'_>,
    cdb: &[u8],
    what: &str,
) -> Result<[u8; N]> {
    let buf = Buf::at(DATA_GPA, N as u32);
    let r = disk.srb(vcpu, cdb, DataDirection::READ, Some(&buf))?;
    ok_srb(&r, N as u32, what)?;
    let mut data = [0u8; N];
    read_gpa(vcpu, DATA_GPA, &mut data)?;
    Ok(data)
}

pub(crate) fn read_gpa(vcpu: &Vcpu<'_>, gpa: u64, out: &mut [u8]) -> Result<()> {
    let (region, offset) = vcpu.memory_at(gpa, out.len())?;
    region
        .read_bytes(offset, out)
        .map_err(|e| Failure(format!("guest RAM at {gpa:#x}: {e}")))
}

pub(crate) fn write_gpa(vcpu: &Vcpu<'_>, gpa: u64, data: &[u8]) -> Result<()> {
    let (region, offset) = vcpu.memory_at(gpa, data.len())?;
    region
        .write_bytes(offset, data)
        .map_err(|e| Failure(format!("guest RAM at {gpa:#x}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_modes_come_from_the_scenario_name() {
        let none = |_: &str| None;
        assert_eq!(Mode::from_env("storage", &none), Some(Ok(Mode::Check)));
        assert_eq!(
            Mode::from_env("storage-bench", &none),
            Some(Ok(Mode::Bench { mib: 16 }))
        );
        assert_eq!(Mode::from_env("echo", &none), None);
        let bad = |_: &str| Some(String::from("0"));
        assert!(matches!(
            Mode::from_env("storage-bench", &bad),
            Some(Err(_))
        ));
    }
}
