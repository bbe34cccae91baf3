//! An in-process guest and host for tests and benchmarks: guest RAM, the
//! channel's two rings in it, a [`Nic`] served by [`ring::serve`] on one side and
//! the caller's guest driver on the other.
//!
//! Memory is leaked (tests make a few guests of a few MiB each) so every view of
//! it can be `'static`, as a PD's mappings are.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ipc::Region;
use netvsc_client::{Buffer, Layout, Netvsc};
use vmbus_ring::{IncomingRing, OutgoingRing, RegionRingMem, RingMem as _, PAGE_SIZE};

use crate::backend::Backend;
use crate::mem::PagedBuffer;
use crate::nic::{Config, Nic};
use crate::ring::{self, RingError, ServeBuffers, Served};

pub type RingMem<'a> = RegionRingMem<'a>;

pub const RECEIVE_GPADL: u32 = 1;
pub const SEND_GPADL: u32 = 2;
/// Pages of each ring's data area.
pub const RING_PAGES: usize = 16;

/// Where things are in a test guest's RAM, in pages.
#[derive(Copy, Clone, Debug)]
pub struct GuestLayout {
    pub guest_to_host: usize,
    pub host_to_guest: usize,
    pub control_page: usize,
    pub receive: (usize, usize),
    pub send: (usize, usize),
    pub pages: usize,
}

impl GuestLayout {
    pub fn new(receive_pages: usize, send_pages: usize) -> Self {
        let ring = RING_PAGES + 1;
        let control_page = 2 * ring;
        let receive = (control_page + 1, receive_pages);
        let send = (receive.0 + receive_pages, send_pages);
        Self {
            guest_to_host: 0,
            host_to_guest: ring,
            control_page,
            receive,
            send,
            pages: send.0 + send_pages,
        }
    }
}

/// The host side of one test channel, over guest RAM that lives for `'a`.
#[derive(Debug)]
pub struct HostOn<'a> {
    pub nic: Nic<PagedBuffer<'a>>,
    incoming: IncomingRing<RingMem<'a>>,
    outgoing: OutgoingRing<RingMem<'a>>,
    ram: Region<'a>,
    gpadls: Vec<(u32, Vec<u64>)>,
    bufs: ServeBuffers,
    pub backend: Box<dyn Backend>,
    pub broken: Option<RingError>,
}

/// A host over leaked memory, as most tests use it.
pub type Host = HostOn<'static>;

impl<'a> HostOn<'a> {
    /// The guest's RAM as the host maps it (hostile-guest tests write it raw).
    pub fn ram(&self) -> Region<'a> {
        self.ram
    }

    /// A pump for the client: serves this host whenever the driver waits.
    pub fn pump(&mut self) -> impl FnMut() + use<'_, 'a> {
        move || {
            self.serve();
        }
    }

    /// Runs the NIC until it has nothing more to do right now.
    pub fn serve(&mut self) -> Served {
        if self.broken.is_some() {
            return Served::default();
        }
        let reader = ring::region_reader(&self.ram, 0);
        let gpadls = &self.gpadls;
        let ram = self.ram;
        let mut lookup = |id: u32| {
            let (_, pages) = gpadls.iter().find(|(g, _)| *g == id)?;
            PagedBuffer::new(ram, pages.clone())
        };
        match ring::serve(
            &mut self.nic,
            &mut self.incoming,
            &mut self.outgoing,
            &reader,
            &mut lookup,
            self.backend.as_mut(),
            &mut self.bufs,
        ) {
            Ok(s) => s,
            Err(e) => {
                self.broken = Some(e);
                Served::default()
            }
        }
    }
}

/// The guest's driver, on its ends of the rings and its memory.
pub type ClientOn<'a> = Netvsc<'a, RingMem<'a>>;
pub type Client = ClientOn<'static>;

fn ring_mem(ram: Region<'_>, first_page: usize) -> RingMem<'_> {
    let region = ram
        .subregion(first_page * PAGE_SIZE, (RING_PAGES + 1) * PAGE_SIZE)
        .ok()
        .and_then(|r| RegionRingMem::new(r).ok());
    let Some(mem) = region else {
        unreachable!("the layout keeps every ring inside the RAM it sized")
    };
    mem.control().initialize();
    mem
}

/// A fresh guest: RAM laid out by `layout` (leaked), a NIC with `config` on
/// `backend`, and the netvsc driver that talks to it.
pub fn guest(layout: GuestLayout, config: Config, backend: Box<dyn Backend>) -> (Host, Client) {
    let ram = ipc::testing::leaked_region(layout.pages * PAGE_SIZE);
    guest_in(ram, layout, config, backend)
}

/// The same in RAM the caller owns (at least `layout.pages` pages), for callers
/// that must not leak (fuzz targets).
pub fn guest_in<'a>(
    ram: Region<'a>,
    layout: GuestLayout,
    config: Config,
    backend: Box<dyn Backend>,
) -> (HostOn<'a>, ClientOn<'a>) {
    let g2h = ring_mem(ram, layout.guest_to_host);
    let h2g = ring_mem(ram, layout.host_to_guest);
    let attach = |m: RingMem<'a>| (IncomingRing::new(m), OutgoingRing::new(m));
    let (Ok(host_in), Ok(guest_out)) = attach(g2h) else {
        unreachable!("a freshly initialized ring attaches")
    };
    let (Ok(guest_in), Ok(host_out)) = attach(h2g) else {
        unreachable!("a freshly initialized ring attaches")
    };
    let pages = |(first, n): (usize, usize)| (first as u64..(first + n) as u64).collect();
    let host = HostOn {
        nic: Nic::new(config),
        incoming: host_in,
        outgoing: host_out,
        ram,
        gpadls: alloc::vec![
            (RECEIVE_GPADL, pages(layout.receive)),
            (SEND_GPADL, pages(layout.send))
        ],
        bufs: ServeBuffers::default(),
        backend,
        broken: None,
    };
    let buffer = |(first, n): (usize, usize), gpadl| Buffer {
        offset: first * PAGE_SIZE,
        len: n * PAGE_SIZE,
        gpadl,
    };
    let client_layout = Layout {
        ram,
        base_pfn: 0,
        receive: buffer(layout.receive, RECEIVE_GPADL),
        send: buffer(layout.send, SEND_GPADL),
        control_page: layout.control_page * PAGE_SIZE,
    };
    (host, Netvsc::new(guest_out, guest_in, client_layout))
}
