//! A whole storage path in one process: a Linux-like VMBus client connects to the
//! vmbus-server core (loopback), opens the storage offer with a ring GPADL in guest
//! RAM, and a storvsc stand-in talks to storvsp over the two `vmbus-ring` rings the
//! server handed to the VSP. Shared by the end-to-end test and the benchmark.
#![allow(dead_code)]

use std::sync::atomic::AtomicU64;

use ipc::{Perms, Region};
use isolation::GuestMemory;
use storvsp::device::StorvspChannel;
use storvsp::scsi::{Controller, DiskConfig, ScsiAddress, ScsiDisk};
use storvsp::state_machine::{NoSubChannels, Storvsp, StorvspConfig};
use storvsp::Backend;
use storvsp_protocol::{
    DataDirection, NtStatus, Operation, ProtocolVersion, VersionPayload, VmscsiRequest,
    VstorHeader, REQUEST_COMPLETION_FLAG, SENSE_BUFFER_SIZE, VMSCSI_REQUEST_SIZE,
};
use vmbus_client::loopback::Loopback;
use vmbus_client::{Client, ClientConfig, OpenParams};
use vmbus_device::{serve, PacketBuf, RingTransport};
use vmbus_protocol::ids::{interface, Guid};
use vmbus_ring::{
    GpaRangeRef, GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket,
    OutgoingRing,
};
use vmbus_server::{Config, OfferParams, PfnRange, Server};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

pub const PAGE: usize = 4096;
/// Ring GPADL: both rings, each a control page plus 31 data pages.
pub const RING_FIRST_PFN: u64 = 0x10;
pub const RING_PAGES: u64 = 64;
/// Data buffers start here.
pub const DATA_PFN: u64 = RING_FIRST_PFN + RING_PAGES;

/// Guest RAM and the VMBus side of an opened storage channel.
pub struct Machine {
    pub ram: Vec<AtomicU64>,
    pub client: Client<Loopback>,
    /// What the server told the VSP when the channel opened.
    pub ring_pfns: Vec<u64>,
    pub downstream: usize,
}

impl Machine {
    pub fn new(ram_pages: usize) -> Self {
        let ram: Vec<AtomicU64> = (0..ram_pages * PAGE / 8)
            .map(|_| AtomicU64::new(0))
            .collect();
        let config = Config::new(
            1,
            vec![PfnRange {
                start: 0,
                count: ram_pages as u64,
            }],
        );
        let mut lb = Loopback::new(Server::new(config).expect("server config"));
        let storage = OfferParams::device(interface::STORAGE, Guid::from_fields(7, 0, 0, [0; 8]));
        lb.server.offer(&mut lb.env, storage).expect("offer");
        let mut client = Client::new(lb, ClientConfig::linux());
        client.connect().expect("connect");
        let offers = client.request_offers().expect("offers");
        let relid = offers
            .iter()
            .find(|o| o.interface_id == interface::STORAGE)
            .expect("storage offered")
            .relid;
        // The guest zeroes and initializes both control pages before opening.
        let region = Region::from_atomics(&ram, Perms::RW);
        let half = RING_PAGES / 2;
        for first in [RING_FIRST_PFN, RING_FIRST_PFN + half] {
            let mem = GpadlRingMem::new(region, vec![first, first + 1]).expect("ring pages");
            vmbus_ring::RingMem::control(&mem).initialize();
        }
        let pfns: Vec<u64> = (RING_FIRST_PFN..RING_FIRST_PFN + RING_PAGES).collect();
        let gpadl = client.create_gpadl(relid, &pfns).expect("ring GPADL");
        client
            .open(
                relid,
                &OpenParams {
                    ring_gpadl: gpadl,
                    downstream_page_offset: half as u32,
                    target_vp: 0,
                    user_data: [0; 120],
                },
            )
            .expect("open");
        let opened = client
            .transport()
            .env
            .open
            .get(&relid)
            .expect("VSP saw the open")
            .clone();
        Self {
            ram,
            client,
            ring_pfns: opened.ring_pfns,
            downstream: opened.downstream_page_offset as usize,
        }
    }

    pub fn region(&self) -> Region<'_> {
        Region::from_atomics(&self.ram, Perms::RW)
    }

    /// The guest's storvsc and the VSP, each with its own view of the rings.
    pub fn parts(&self, backend: Box<dyn Backend + Send>) -> (Storvsc<'_>, Vsp<'_>) {
        let region = self.region();
        let up = self.ring_pfns[..self.downstream].to_vec();
        let down = self.ring_pfns[self.downstream..].to_vec();
        let guest = Storvsc {
            out: OutgoingRing::new(GpadlRingMem::new(region, up.clone()).expect("ring"))
                .expect("attach"),
            inr: IncomingRing::new(GpadlRingMem::new(region, down.clone()).expect("ring"))
                .expect("attach"),
            next_id: 1,
            region,
        };
        let mut controller = Controller::new();
        controller
            .attach(
                ScsiAddress::default(),
                ScsiDisk::new(backend, DiskConfig::default()),
            )
            .expect("attach disk");
        let config = StorvspConfig::default();
        let vsp = Vsp {
            vsp: Storvsp::new(controller, config),
            transport: RingTransport::new(
                GpadlRingMem::new(region, up).expect("ring"),
                GpadlRingMem::new(region, down).expect("ring"),
            )
            .expect("attach"),
            mem: GuestMemory::private(0, region).expect("guest memory"),
            buf: PacketBuf::new(storvsp::device::limits(&config)),
            reply: Vec::new(),
            signals: 0,
        };
        (guest, vsp)
    }
}

type Mem<'a> = GpadlRingMem<'a, Vec<u64>>;

/// The storvsp PD's channel loop, minus the process around it.
pub struct Vsp<'a> {
    pub vsp: Storvsp,
    pub transport: RingTransport<Mem<'a>>,
    pub mem: GuestMemory<'a>,
    pub buf: PacketBuf,
    pub reply: Vec<u8>,
    pub signals: u64,
}

impl Vsp<'_> {
    /// What the PD does when the guest's signal arrives.
    pub fn run(&mut self) -> usize {
        let mut channel = StorvspChannel {
            vsp: &mut self.vsp,
            subchannels: &mut NoSubChannels,
            index: 0,
        };
        let done = serve(
            &mut channel,
            vmbus_protocol::Relid(1),
            &mut self.transport,
            &self.mem,
            &mut self.buf,
            &mut self.reply,
        )
        .expect("ring intact");
        if done.signal {
            self.signals += 1;
        }
        done.packets
    }
}

/// A guest buffer for one request.
#[derive(Clone, Debug)]
pub struct GuestBuf {
    pub byte_count: u32,
    pub byte_offset: u32,
    pub pfns: Vec<u64>,
}

impl GuestBuf {
    /// `len` bytes at guest physical address `gpa`.
    pub fn at(gpa: u64, len: u32) -> Self {
        let first = gpa / PAGE as u64;
        let offset = (gpa % PAGE as u64) as u32;
        let pages = (offset as usize + len as usize).div_ceil(PAGE) as u64;
        Self {
            byte_count: len,
            byte_offset: offset,
            pfns: (first..first + pages).collect(),
        }
    }
}

/// The guest's side, laid out like Linux's hv_storvsc.
pub struct Storvsc<'a> {
    out: OutgoingRing<Mem<'a>>,
    inr: IncomingRing<Mem<'a>>,
    next_id: u64,
    pub region: Region<'a>,
}

pub struct Reply {
    pub header: VstorHeader,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn srb(&self) -> VmscsiRequest {
        VmscsiRequest::read_from_prefix(&self.body)
            .map(|(s, _)| s)
            .unwrap_or_else(|_| VmscsiRequest::new_zeroed())
    }

    pub fn sense(&self) -> (u8, u8, u8) {
        let s = self.srb();
        if s.sense_info_length == 0 {
            (0, 0, 0)
        } else {
            let d = s.cdb_or_sense;
            (d[2] & 0xf, d[12], d[13])
        }
    }
}

impl<'a> Storvsc<'a> {
    /// The guest's ends of rings over `up` (guest-to-host) and `down` pages of
    /// `region`, whose control pages the guest already initialized.
    pub fn over(region: Region<'a>, up: Vec<u64>, down: Vec<u64>) -> Self {
        Self {
            out: OutgoingRing::new(GpadlRingMem::new(region, up).expect("ring")).expect("attach"),
            inr: IncomingRing::new(GpadlRingMem::new(region, down).expect("ring")).expect("attach"),
            next_id: 1,
            region,
        }
    }

    /// Queues one packet; returns its transaction id.
    pub fn send(&mut self, payload: &[u8], buf: Option<&GuestBuf>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let ranges;
        let kind = match buf {
            None => OutgoingKind::InBand,
            Some(b) => {
                ranges = [GpaRangeRef {
                    byte_count: b.byte_count,
                    byte_offset: b.byte_offset,
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
        self.out
            .write_packet(&packet, &[payload])
            .expect("ring has room");
        // Whether to signal does not matter here: the VSP runs next regardless.
        let _ = self.out.commit().expect("ring intact");
        id
    }

    /// Takes the next completion off the host-to-guest ring.
    pub fn recv(&mut self) -> Option<(u64, Reply)> {
        let p = self.inr.read().ok()?;
        assert!(matches!(p.kind, IncomingKind::Completion));
        let mut bytes = vec![0u8; p.payload.len()];
        self.inr
            .copy_from(&p.payload, 0, &mut bytes)
            .expect("ring intact");
        let _ = self.inr.commit().expect("ring intact");
        let (header, body) = VstorHeader::read_from_prefix(&bytes).expect("vstor header");
        Some((
            p.transaction_id,
            Reply {
                header,
                body: body.to_vec(),
            },
        ))
    }

    pub fn call(&mut self, vsp: &mut Vsp<'_>, payload: &[u8], buf: Option<&GuestBuf>) -> Reply {
        let id = self.send(payload, buf);
        vsp.run();
        let (got, reply) = self.recv().expect("a completion");
        assert_eq!(got, id);
        reply
    }

    pub fn control(&mut self, vsp: &mut Vsp<'_>, op: Operation, body: &[u8]) -> Reply {
        let mut p = [0u8; 64];
        let h = VstorHeader {
            operation: op,
            flags: REQUEST_COMPLETION_FLAG,
            status: NtStatus::SUCCESS,
        };
        p[..12].copy_from_slice(h.as_bytes());
        p[12..12 + body.len()].copy_from_slice(body);
        self.call(vsp, &p, None)
    }

    /// Linux's storvsc_channel_init.
    pub fn negotiate(&mut self, vsp: &mut Vsp<'_>) -> ProtocolVersion {
        assert_eq!(
            self.control(vsp, Operation::BEGIN_INITIALIZATION, &[])
                .header
                .status,
            NtStatus::SUCCESS
        );
        let mut chosen = None;
        for v in ProtocolVersion::SUPPORTED {
            let body = VersionPayload {
                major_minor: v.0,
                revision: 0,
            };
            if self
                .control(vsp, Operation::QUERY_PROTOCOL_VERSION, body.as_bytes())
                .header
                .status
                == NtStatus::SUCCESS
            {
                chosen = Some(v);
                break;
            }
        }
        let props = self.control(vsp, Operation::QUERY_PROPERTIES, &[]);
        assert_eq!(props.header.status, NtStatus::SUCCESS);
        assert_eq!(
            self.control(vsp, Operation::END_INITIALIZATION, &[])
                .header
                .status,
            NtStatus::SUCCESS
        );
        chosen.expect("a version")
    }

    /// The EXECUTE_SRB packet storvsc_queuecommand builds.
    pub fn srb_payload(cdb: &[u8], dir: DataDirection, len: u32) -> [u8; 64] {
        let mut req = VmscsiRequest::new_zeroed();
        req.length = VMSCSI_REQUEST_SIZE as u16;
        req.cdb_length = cdb.len() as u8;
        req.sense_info_length = SENSE_BUFFER_SIZE as u8;
        req.data_in = dir.0;
        req.data_transfer_length = len;
        req.cdb_or_sense[..cdb.len()].copy_from_slice(cdb);
        req.time_out_value = 60;
        let mut p = [0u8; 64];
        let h = VstorHeader {
            operation: Operation::EXECUTE_SRB,
            flags: REQUEST_COMPLETION_FLAG,
            status: NtStatus::SUCCESS,
        };
        p[..12].copy_from_slice(h.as_bytes());
        p[12..].copy_from_slice(req.as_bytes());
        p
    }

    pub fn srb(
        &mut self,
        vsp: &mut Vsp<'_>,
        cdb: &[u8],
        dir: DataDirection,
        buf: Option<&GuestBuf>,
    ) -> Reply {
        let len = buf.map_or(0, |b| b.byte_count);
        let p = Self::srb_payload(cdb, dir, len);
        self.call(vsp, &p, buf)
    }
}

pub fn rw16(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

pub fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}
