//! A whole storage path in one process: a Linux-like VMBus client connects to the
//! vmbus-server core (loopback), opens the storage offer with a ring GPADL in guest
//! RAM, and a storvsc stand-in talks to storvsp over the two `vmbus-ring` rings the
//! server handed to the VSP. Shared by the end-to-end test and the benchmark.

use std::sync::atomic::AtomicU64;

use ipc::{Perms, Region};
use isolation::GuestMemory;
use storvsp::device::StorvspChannel;
use storvsp::scsi::{Controller, DiskConfig, ScsiAddress, ScsiDisk};
use storvsp::state_machine::{NoSubChannels, Storvsp, StorvspConfig};
use storvsp::Backend;
use storvsp_protocol::{DataDirection, ProtocolVersion};
use vmbus_client::loopback::Loopback;
use vmbus_client::{Client, ClientConfig, OpenParams};
use vmbus_device::{serve, PacketBuf, RingTransport};
use vmbus_protocol::ids::{interface, Guid};
use vmbus_ring::GpadlRingMem;
use vmbus_server::{Config, OfferParams, PfnRange, Server};

pub const PAGE: usize = hvdef::HV_PAGE_SIZE as usize;
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
        let guest = Storvsc::over(region, up.clone(), down.clone());
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

#[allow(unused_imports)] // each test binary uses one of them
pub use storvsc_client::wire::{rw10, rw16};
pub use storvsc_client::{GuestBuf, Reply};

impl storvsc_client::Host for Vsp<'_> {
    fn signal(&mut self) -> Result<(), String> {
        self.run();
        Ok(())
    }

    /// Nothing came back: run the VSP (the guest may not have signalled), and
    /// fail if that served nothing either.
    fn wait(&mut self) -> Result<(), String> {
        match self.run() {
            0 => Err("storvsp served nothing".into()),
            _ => Ok(()),
        }
    }
}

/// The guest's side: the one storvsc client over the rings, and guest RAM.
pub struct Storvsc<'a> {
    pub client: storvsc_client::Storvsc<Mem<'a>>,
    pub region: Region<'a>,
}

impl<'a> Storvsc<'a> {
    /// The guest's ends of rings over `up` (guest-to-host) and `down` pages of
    /// `region`, whose control pages the guest already initialized.
    pub fn over(region: Region<'a>, up: Vec<u64>, down: Vec<u64>) -> Self {
        let ring = |pages| GpadlRingMem::new(region, pages).expect("ring");
        Self {
            client: storvsc_client::Storvsc::new(ring(up), ring(down)).expect("attach"),
            region,
        }
    }

    /// Queues and publishes one packet; returns its transaction id. Whether to
    /// signal does not matter here: the VSP runs next regardless.
    pub fn send(&mut self, payload: &[u8], buf: Option<&GuestBuf>) -> u64 {
        let id = self.client.queue(payload, buf).expect("ring has room");
        self.client.kick(&mut NoHost).expect("ring intact");
        id
    }

    /// Takes the next completion off the host-to-guest ring.
    pub fn recv(&mut self) -> Option<(u64, Reply)> {
        let got = self.client.poll().expect("ring intact");
        self.client.release(&mut NoHost).expect("ring intact");
        got
    }

    pub fn call(&mut self, vsp: &mut Vsp<'_>, payload: &[u8], buf: Option<&GuestBuf>) -> Reply {
        self.client.call(vsp, payload, buf).expect("a completion")
    }

    /// Linux's storvsc_channel_init.
    pub fn negotiate(&mut self, vsp: &mut Vsp<'_>) -> ProtocolVersion {
        self.client
            .negotiate(vsp, &ProtocolVersion::SUPPORTED)
            .expect("negotiated")
            .version
    }

    pub fn srb_payload(cdb: &[u8], dir: DataDirection, len: u32) -> [u8; 64] {
        storvsc_client::wire::srb_payload(cdb, dir, len)
    }

    pub fn srb(
        &mut self,
        vsp: &mut Vsp<'_>,
        cdb: &[u8],
        dir: DataDirection,
        buf: Option<&GuestBuf>,
    ) -> Reply {
        self.client.srb(vsp, cdb, dir, buf).expect("a completion")
    }
}

/// A host nobody needs to signal: the test runs the VSP itself.
struct NoHost;

impl storvsc_client::Host for NoHost {
    fn signal(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn wait(&mut self) -> Result<(), String> {
        Err("nothing to wait for".into())
    }
}
