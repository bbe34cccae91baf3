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
use alloc::vec;
use alloc::vec::Vec;

use synic_pd::Instance;
use vmbus_client::{Client, ClientConfig, ClientError, OpenParams};
use vmbus_protocol::ids::interface;
use vmbus_protocol::{FeatureFlags, Relid};
use vmbus_ring::{
    GpaRangeRef, GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket,
    OutgoingRing, ReadError, WriteError,
};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use storvsp_protocol::{
    ChannelProperties, DataDirection, NtStatus, Operation, ProtocolVersion, VersionPayload,
    VmscsiRequest, VstorHeader, REQUEST_COMPLETION_FLAG, SENSE_BUFFER_SIZE, VMSCSI_REQUEST_SIZE,
};

use crate::config::PAGE;
use crate::time::Instant;
use crate::vcpu::Vcpu;
use crate::{ensure, fail, Failure, Result};

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
const DATA_GPA: u64 = 0x12_0000;
const DATA_END: u64 = 0x20_0000;
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

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One random write of the pattern.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub lba: u64,
    pub blocks: u32,
}

/// A sequence of random writes over a disk and what each block holds after them.
/// Block `lba` as written by write `i` is a function of (seed, i, lba) alone, so
/// anyone with the seed can say what the disk must hold.
#[derive(Clone, Debug)]
pub struct Pattern {
    seed: u64,
    pub writes: Vec<Write>,
    /// Per block: 1 + the index of the last write covering it, 0 if none did.
    owner: Vec<u32>,
}

impl Pattern {
    pub fn new(seed: u64, disk_blocks: u64, count: u32, max_blocks: u32) -> Self {
        let mut state = seed;
        let mut next = || {
            state = splitmix(state);
            state
        };
        let mut owner = vec![0u32; disk_blocks as usize];
        let mut writes = Vec::with_capacity(count as usize);
        for i in 0..count {
            let blocks = 1 + (next() % u64::from(max_blocks)).min(disk_blocks - 1) as u32;
            let lba = next() % (disk_blocks - u64::from(blocks) + 1);
            for o in &mut owner[lba as usize..][..blocks as usize] {
                *o = i + 1;
            }
            writes.push(Write { lba, blocks });
        }
        Self {
            seed,
            writes,
            owner,
        }
    }

    /// The bytes write `index` puts into block `lba`.
    pub fn fill_block(&self, index: u32, lba: u64, out: &mut [u8]) {
        let base = splitmix(self.seed ^ (u64::from(index) << 40) ^ lba);
        for (k, chunk) in out.chunks_mut(8).enumerate() {
            let w = splitmix(base.wrapping_add(k as u64)).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    /// What block `lba` holds after every write (zeros where none wrote).
    pub fn expected_block(&self, lba: u64, out: &mut [u8]) {
        match self.owner.get(lba as usize).copied().unwrap_or(0) {
            0 => out.fill(0),
            o => self.fill_block(o - 1, lba, out),
        }
    }

    /// Blocks some write covered.
    pub fn written_blocks(&self) -> u64 {
        self.owner.iter().filter(|&&o| o != 0).count() as u64
    }
}

/// A guest buffer: `len` bytes at guest physical `gpa`, as a GPA-direct range.
#[derive(Clone, Debug)]
struct Buf {
    gpa: u64,
    len: u32,
    pfns: Vec<u64>,
}

impl Buf {
    fn at(gpa: u64, len: u32) -> Self {
        let first = gpa / PAGE;
        let pages = ((gpa % PAGE) + u64::from(len)).div_ceil(PAGE);
        Self {
            gpa,
            len,
            pfns: (first..first + pages).collect(),
        }
    }
}

/// A completed request.
#[derive(Clone, Debug)]
struct Reply {
    header: VstorHeader,
    body: Vec<u8>,
}

impl Reply {
    fn srb(&self) -> VmscsiRequest {
        VmscsiRequest::read_from_prefix(&self.body)
            .map(|(s, _)| s)
            .unwrap_or_else(|_| VmscsiRequest::new_zeroed())
    }

    /// (sense key, ASC, ASCQ) of fixed-format sense data, zeros without sense.
    fn sense(&self) -> (u8, u8, u8) {
        let s = self.srb();
        if s.sense_info_length == 0 {
            return (0, 0, 0);
        }
        let d = s.cdb_or_sense;
        (d[2] & 0xf, d[12], d[13])
    }
}

type Ring = GpadlRingMem<'static, Vec<u64>>;

/// The guest's end of the open storage channel.
struct Storvsc {
    relid: Relid,
    connection_id: u32,
    instance: Instance,
    tx: OutgoingRing<Ring>,
    rx: IncomingRing<Ring>,
    next_id: u64,
    signals: u64,
    interrupts: u64,
}

fn ring_err(what: &str) -> impl Fn(vmbus_ring::Corruption) -> Failure + '_ {
    move |e| Failure(format!("{what}: {e}"))
}

fn control_payload(op: Operation, body: &[u8]) -> [u8; 64] {
    let mut p = [0u8; 64];
    let h = VstorHeader {
        operation: op,
        flags: REQUEST_COMPLETION_FLAG,
        status: NtStatus::SUCCESS,
    };
    p[..12].copy_from_slice(h.as_bytes());
    let n = body.len().min(52);
    p[12..12 + n].copy_from_slice(&body[..n]);
    p
}

/// The EXECUTE_SRB packet storvsc_queuecommand builds.
fn srb_payload(cdb: &[u8], dir: DataDirection, len: u32) -> [u8; 64] {
    let mut req = VmscsiRequest::new_zeroed();
    req.length = VMSCSI_REQUEST_SIZE as u16;
    req.cdb_length = cdb.len() as u8;
    req.sense_info_length = SENSE_BUFFER_SIZE as u8;
    req.data_in = dir.0;
    req.data_transfer_length = len;
    let n = cdb.len().min(16);
    req.cdb_or_sense[..n].copy_from_slice(&cdb[..n]);
    req.time_out_value = 60;
    let mut p = control_payload(Operation::EXECUTE_SRB, &[]);
    p[12..].copy_from_slice(req.as_bytes());
    p
}

fn rw16(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

const READ_10: u8 = 0x28;
const WRITE_10: u8 = 0x2A;
const READ_16: u8 = 0x88;
const WRITE_16: u8 = 0x8A;

/// A request to queue: the SRB and its data buffer.
struct Request<'a> {
    cdb: &'a [u8],
    dir: DataDirection,
    buf: Option<&'a Buf>,
}

impl Storvsc {
    fn attach(
        vcpu: &Vcpu<'_>,
        pfns: &[u64],
        relid: Relid,
        connection_id: u32,
        instance: Instance,
    ) -> Result<Self> {
        let split = RING_PAGES as usize;
        let mem = |pages: &[u64]| {
            GpadlRingMem::new(vcpu.ram, pages.to_vec())
                .map_err(|e| Failure(format!("ring memory: {e}")))
        };
        let (tx_mem, rx_mem) = (mem(&pfns[..split])?, mem(&pfns[split..])?);
        vmbus_ring::RingMem::control(&tx_mem).initialize();
        vmbus_ring::RingMem::control(&rx_mem).initialize();
        Ok(Self {
            relid,
            connection_id,
            instance,
            tx: OutgoingRing::new(tx_mem).map_err(|e| Failure(format!("tx ring: {e}")))?,
            rx: IncomingRing::new(rx_mem).map_err(|e| Failure(format!("rx ring: {e}")))?,
            next_id: 1,
            signals: 0,
            interrupts: 0,
        })
    }

    fn queue(&mut self, payload: &[u8], buf: Option<&Buf>) -> Result<u64> {
        let id = self.next_id;
        let ranges;
        let kind = match buf {
            None => OutgoingKind::InBand,
            Some(b) => {
                ranges = [GpaRangeRef {
                    byte_count: b.len,
                    byte_offset: (b.gpa % PAGE) as u32,
                    pfns: &b.pfns,
                }];
                OutgoingKind::GpaDirect(&ranges)
            }
        };
        let packet = OutgoingPacket {
            transaction_id: id,
            completion_requested: true,
            kind,
        };
        match self.tx.write_packet(&packet, &[payload]) {
            Ok(()) => {}
            Err(WriteError::Full { .. }) => return fail("the request ring is full"),
            Err(e) => return fail(format!("writing request {id}: {e}")),
        }
        self.next_id += 1;
        Ok(id)
    }

    /// Publishes what was queued; signals the VSP if the ring asks for it.
    fn kick(&mut self, vcpu: &mut Vcpu<'_>) -> Result<()> {
        if self.tx.commit().map_err(ring_err("tx ring"))? {
            let s = vcpu.signal(self.connection_id, 0)?;
            ensure!(
                s.is_success(),
                "HvSignalEvent on {:#x}: {s:?}",
                self.connection_id
            );
            self.signals += 1;
        }
        Ok(())
    }

    /// Waits for the completions of `ids` (in any order); returns them in `ids`' order.
    fn collect(&mut self, vcpu: &mut Vcpu<'_>, ids: &[u64]) -> Result<Vec<Reply>> {
        let mut got: Vec<Option<Reply>> = vec![None; ids.len()];
        let mut left = ids.len();
        while left > 0 {
            loop {
                let p = match self.rx.read() {
                    Ok(p) => p,
                    Err(ReadError::Empty) => break,
                    Err(e) => return fail(format!("completion ring: {e}")),
                };
                ensure!(
                    p.kind == IncomingKind::Completion,
                    "a {:?} packet from storvsp",
                    p.kind
                );
                let mut bytes = vec![0u8; p.payload.len()];
                self.rx
                    .copy_from(&p.payload, 0, &mut bytes)
                    .map_err(|e| Failure(format!("completion ring: {e}")))?;
                let (header, body) = VstorHeader::read_from_prefix(&bytes)
                    .map_err(|_| Failure(format!("a {}-byte completion", bytes.len())))?;
                let Some(slot) = ids.iter().position(|&i| i == p.transaction_id) else {
                    return fail(format!(
                        "completion for unknown request {}",
                        p.transaction_id
                    ));
                };
                ensure!(
                    got[slot].is_none(),
                    "two completions for request {}",
                    p.transaction_id
                );
                got[slot] = Some(Reply {
                    header,
                    body: body.to_vec(),
                });
                left -= 1;
            }
            if self.rx.commit().map_err(ring_err("rx ring"))? {
                let s = vcpu.signal(self.connection_id, 0)?;
                ensure!(s.is_success(), "HvSignalEvent: {s:?}");
                self.signals += 1;
            }
            if left > 0 && self.rx.is_empty().map_err(ring_err("rx ring"))? {
                vcpu.wait_event(self.instance, self.relid.0, "a storvsp completion")?;
                self.interrupts += 1;
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    fn run(&mut self, vcpu: &mut Vcpu<'_>, reqs: &[Request<'_>]) -> Result<Vec<Reply>> {
        let mut ids = Vec::with_capacity(reqs.len());
        for r in reqs {
            let len = r.buf.map_or(0, |b| b.len);
            ids.push(self.queue(&srb_payload(r.cdb, r.dir, len), r.buf)?);
        }
        self.kick(vcpu)?;
        self.collect(vcpu, &ids)
    }

    fn srb(
        &mut self,
        vcpu: &mut Vcpu<'_>,
        cdb: &[u8],
        dir: DataDirection,
        buf: Option<&Buf>,
    ) -> Result<Reply> {
        let mut r = self.run(vcpu, &[Request { cdb, dir, buf }])?;
        r.pop().ok_or_else(|| Failure("no completion".into()))
    }

    fn control(&mut self, vcpu: &mut Vcpu<'_>, op: Operation, body: &[u8]) -> Result<Reply> {
        let id = self.queue(&control_payload(op, body), None)?;
        self.kick(vcpu)?;
        let mut r = self.collect(vcpu, &[id])?;
        r.pop().ok_or_else(|| Failure("no completion".into()))
    }
}

fn client_error(what: &str, e: ClientError) -> Failure {
    Failure(format!("{what}: {e}"))
}

/// Checks a data SRB completed in full.
fn ok_srb(r: &Reply, len: u32, what: &str) -> Result<()> {
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
    let mut disk = Storvsc::attach(
        client.transport(),
        &pfns,
        offer.relid,
        offer.connection_id,
        Instance::PARAVISOR,
    )?;
    let gpadl = client
        .create_gpadl(offer.relid, &pfns)
        .map_err(|e| client_error("GPADL_HEADER", e))?;
    client
        .open(
            offer.relid,
            &OpenParams {
                ring_gpadl: gpadl,
                downstream_page_offset: RING_PAGES as u32,
                target_vp: 0,
                user_data: [0; 120],
            },
        )
        .map_err(|e| client_error("OPENCHANNEL", e))?;

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
            let written = write_pattern(&mut disk, vcpu, &pattern)?;
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
            verify_disk(&mut disk, vcpu, &pattern, blocks)?;
            println!(
                "guest_sim: read back all {} MiB: every block as written",
                (blocks * BLOCK) >> 20
            );
            malformed(&mut disk, vcpu, blocks)?;
            format!(
                "guest_sim: PASS (storage, {} writes, {} signals, {} interrupts, {:.0} ms)",
                pattern.writes.len(),
                disk.signals,
                disk.interrupts,
                started.elapsed().as_secs_f64() * 1000.0
            )
        }
        Mode::Bench { mib } => {
            bench(&mut disk, vcpu, u64::from(mib) << 20, blocks)?;
            format!("guest_sim: PASS (storage-bench, {mib} MiB)")
        }
    };
    client
        .close(offer.relid)
        .map_err(|e| client_error("CLOSECHANNEL", e))?;
    client
        .teardown_gpadl(offer.relid, gpadl)
        .map_err(|e| client_error("GPADL_TEARDOWN", e))?;
    client.unload().map_err(|e| client_error("UNLOAD", e))?;
    println!("guest_sim: storage channel closed, GPADL torn down, unloaded");
    Ok(summary)
}

/// Linux's storvsc_channel_init.
fn negotiate(disk: &mut Storvsc, vcpu: &mut Vcpu<'_>) -> Result<ProtocolVersion> {
    let r = disk.control(vcpu, Operation::BEGIN_INITIALIZATION, &[])?;
    ensure!(
        r.header.status == NtStatus::SUCCESS,
        "BEGIN_INITIALIZATION: {:#x}",
        r.header.status.0
    );
    let mut chosen = None;
    for v in VERSIONS {
        let body = VersionPayload {
            major_minor: v.0,
            revision: 0,
        };
        let r = disk.control(vcpu, Operation::QUERY_PROTOCOL_VERSION, body.as_bytes())?;
        if r.header.status == NtStatus::SUCCESS {
            chosen = Some(v);
            break;
        }
        println!(
            "guest_sim: storvsp refused protocol {:#x}, stepping down",
            v.0
        );
    }
    let version = chosen.ok_or_else(|| Failure("storvsp took no protocol version".into()))?;
    let props = disk.control(vcpu, Operation::QUERY_PROPERTIES, &[])?;
    ensure!(
        props.header.status == NtStatus::SUCCESS,
        "QUERY_PROPERTIES: {:#x}",
        props.header.status.0
    );
    let max_transfer = ChannelProperties::read_from_prefix(&props.body)
        .map(|(p, _)| p.max_transfer_bytes)
        .unwrap_or(0);
    ensure!(
        max_transfer >= MAX_WRITE_BLOCKS * BLOCK as u32,
        "storvsp moves at most {max_transfer} bytes per request"
    );
    let r = disk.control(vcpu, Operation::END_INITIALIZATION, &[])?;
    ensure!(
        r.header.status == NtStatus::SUCCESS,
        "END_INITIALIZATION: {:#x}",
        r.header.status.0
    );
    Ok(version)
}

/// INQUIRY, READ CAPACITY (10) and (16): returns the disk's block count.
fn probe(disk: &mut Storvsc, vcpu: &mut Vcpu<'_>) -> Result<u64> {
    let buf = Buf::at(DATA_GPA, 36);
    let r = disk.srb(
        vcpu,
        &[0x12, 0, 0, 0, 36, 0],
        DataDirection::READ,
        Some(&buf),
    )?;
    ok_srb(&r, 36, "INQUIRY")?;
    let mut inq = [0u8; 36];
    read_gpa(vcpu, DATA_GPA, &mut inq)?;
    ensure!(
        inq[0] & 0x1f == 0,
        "INQUIRY: peripheral type {:#x}, not a disk",
        inq[0]
    );
    let buf = Buf::at(DATA_GPA, 8);
    let r = disk.srb(
        vcpu,
        &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        DataDirection::READ,
        Some(&buf),
    )?;
    ok_srb(&r, 8, "READ CAPACITY (10)")?;
    let mut cap10 = [0u8; 8];
    read_gpa(vcpu, DATA_GPA, &mut cap10)?;
    let buf = Buf::at(DATA_GPA, 32);
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9E;
    cdb[1] = 0x10;
    cdb[13] = 32;
    let r = disk.srb(vcpu, &cdb, DataDirection::READ, Some(&buf))?;
    ok_srb(&r, 32, "READ CAPACITY (16)")?;
    let mut cap16 = [0u8; 32];
    read_gpa(vcpu, DATA_GPA, &mut cap16)?;
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

fn read_gpa(vcpu: &Vcpu<'_>, gpa: u64, out: &mut [u8]) -> Result<()> {
    let (region, offset) = vcpu.memory_at(gpa, out.len())?;
    region
        .read_bytes(offset, out)
        .map_err(|e| Failure(format!("guest RAM at {gpa:#x}: {e}")))
}

fn write_gpa(vcpu: &Vcpu<'_>, gpa: u64, data: &[u8]) -> Result<()> {
    let (region, offset) = vcpu.memory_at(gpa, data.len())?;
    region
        .write_bytes(offset, data)
        .map_err(|e| Failure(format!("guest RAM at {gpa:#x}: {e}")))
}

/// Two buffers of the largest write plus a page, so two writes are in flight.
const SLOT: u64 = (MAX_WRITE_BLOCKS as u64 * BLOCK + PAGE).next_multiple_of(PAGE);

/// Writes the pattern, two requests at a time, each at a pattern-chosen offset in
/// its page so the page lists start and end mid-page. Returns the bytes written.
fn write_pattern(disk: &mut Storvsc, vcpu: &mut Vcpu<'_>, pattern: &Pattern) -> Result<u64> {
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
fn verify_disk(
    disk: &mut Storvsc,
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

/// A malformed SRB: what it is, its CDB, direction and buffer, and the sense key,
/// ASC and ASCQ it must fail with.
type Case<'a> = (
    &'a str,
    Vec<u8>,
    DataDirection,
    Option<&'a Buf>,
    (u8, u8, u8),
);

/// Malformed SRBs: each must fail with CHECK CONDITION and the sense data SBC says,
/// and the channel must keep working after them.
fn malformed(disk: &mut Storvsc, vcpu: &mut Vcpu<'_>, blocks: u64) -> Result<()> {
    let buf = Buf::at(DATA_GPA, 4096);
    let last = u32::try_from(blocks - 1).unwrap_or(u32::MAX);
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
    let bad_inquiry = [0x12, 0, 0x80, 0, 36, 0];
    let cases: [Case<'_>; 7] = [
        (
            "unsupported opcode",
            vec![0xC1, 0, 0, 0, 0, 0],
            DataDirection::UNKNOWN,
            None,
            (5, 0x20, 0),
        ),
        (
            "READ(10) past the last block",
            rw10(READ_10, last, 8).to_vec(),
            DataDirection::READ,
            Some(&buf),
            (5, 0x21, 0),
        ),
        (
            "WRITE(16) past the last block",
            rw16(WRITE_16, blocks, 1).to_vec(),
            DataDirection::WRITE,
            Some(&buf),
            (5, 0x21, 0),
        ),
        (
            "INQUIRY page code without EVPD",
            bad_inquiry.to_vec(),
            DataDirection::READ,
            Some(&buf),
            (5, 0x24, 0),
        ),
        (
            "READ with a write data direction",
            rw10(READ_10, 0, 8).to_vec(),
            DataDirection::WRITE,
            Some(&buf),
            (0xB, 0x4B, 0),
        ),
        (
            "page list outside guest RAM",
            rw10(READ_10, 0, 8).to_vec(),
            DataDirection::READ,
            Some(&beyond),
            (0xB, 0x4B, 0x0A),
        ),
        (
            "page list in memory storvsp was not granted",
            rw10(WRITE_10, 0, 8).to_vec(),
            DataDirection::WRITE,
            Some(&alias),
            (0xB, 0x4B, 0x0D),
        ),
    ];
    for (what, cdb, dir, buf, want) in cases {
        let r = disk.srb(vcpu, &cdb, dir, buf)?;
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

/// Times requests without data (the path's own cost), sequential 64 KiB writes and
/// reads and random 4 KiB reads over the first `bytes` of the disk, at queue depths
/// 1 and 8; prints
/// `guest_sim: bench <name> qd<n>: <ops> ops, <bytes> bytes, <ns> ns`.
fn bench(disk: &mut Storvsc, vcpu: &mut Vcpu<'_>, bytes: u64, blocks: u64) -> Result<()> {
    let bytes = bytes.min(blocks * BLOCK);
    let mut seed = SEED;
    for qd in [1u64, 8] {
        // The path's fixed cost: requests that move no data.
        let ops = bytes / 65536;
        let t = Instant::now();
        let mut done = 0;
        let tur = [0u8; 6];
        while done < ops {
            let n = qd.min(ops - done);
            let reqs: Vec<Request<'_>> = (0..n)
                .map(|_| Request {
                    cdb: &tur,
                    dir: DataDirection::UNKNOWN,
                    buf: None,
                })
                .collect();
            for r in disk.run(vcpu, &reqs)? {
                ok_srb(&r, 0, "TEST UNIT READY")?;
            }
            done += n;
        }
        let ns = t.elapsed().as_nanos();
        println!("guest_sim: bench test-unit-ready qd{qd}: {ops} ops, 0 bytes, {ns} ns");
        for (name, size, write, random) in [
            ("seq-write-64k", 65536u64, true, false),
            ("seq-read-64k", 65536, false, false),
            ("rand-read-4k", 4096, false, true),
        ] {
            let ops = if random {
                bytes / size / 4
            } else {
                bytes / size
            };
            let bufs: Vec<Buf> = (0..qd)
                .map(|i| Buf::at(DATA_GPA + i * 65536, size as u32))
                .collect();
            let op = if write { WRITE_16 } else { READ_16 };
            let dir = if write {
                DataDirection::WRITE
            } else {
                DataDirection::READ
            };
            let nblocks = (size / BLOCK) as u32;
            let t = Instant::now();
            let mut done = 0;
            while done < ops {
                let n = qd.min(ops - done);
                let cdbs: Vec<[u8; 16]> = (0..n)
                    .map(|i| {
                        let lba = if random {
                            seed = splitmix(seed);
                            seed % (bytes / size) * (size / BLOCK)
                        } else {
                            (done + i) * (size / BLOCK)
                        };
                        rw16(op, lba, nblocks)
                    })
                    .collect();
                let reqs: Vec<Request<'_>> = cdbs
                    .iter()
                    .zip(&bufs)
                    .map(|(c, b)| Request {
                        cdb: c,
                        dir,
                        buf: Some(b),
                    })
                    .collect();
                for r in disk.run(vcpu, &reqs)? {
                    ok_srb(&r, size as u32, name)?;
                }
                done += n;
            }
            let ns = t.elapsed().as_nanos();
            println!(
                "guest_sim: bench {name} qd{qd}: {ops} ops, {} bytes, {ns} ns",
                ops * size
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_a_function_of_the_seed_and_tracks_the_last_writer() {
        let a = Pattern::new(7, 1000, 50, 64);
        let b = Pattern::new(7, 1000, 50, 64);
        assert_eq!(a.writes, b.writes);
        assert_ne!(a.writes, Pattern::new(8, 1000, 50, 64).writes);
        let mut x = [0u8; 512];
        let mut y = [0u8; 512];
        for lba in 0..1000 {
            a.expected_block(lba, &mut x);
            // Replay: the last write covering the block decides.
            let last = a
                .writes
                .iter()
                .enumerate()
                .rfind(|(_, w)| (w.lba..w.lba + u64::from(w.blocks)).contains(&lba));
            match last {
                Some((i, _)) => a.fill_block(i as u32, lba, &mut y),
                None => y.fill(0),
            }
            assert_eq!(x, y, "block {lba}");
        }
        assert!(a
            .writes
            .iter()
            .all(|w| w.lba + u64::from(w.blocks) <= 1000 && w.blocks >= 1));
    }

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
