//! host-sim guest for the two-guest network system (tests/systems/net_pair.xml):
//! a guest-sim vCPU whose kernel brings hv_netvsc up the way Linux does (VMBus
//! 6.0 with confidential channels, the NETWORK offer, a Linux-sized ring GPADL,
//! receive and send buffer GPADLs, then NVSP and RNDIS through netvsc-client)
//! and exchanges frames with the other guest through both netvsp PDs.
//!
//! Both guests broadcast a hello (repeated until the peer's arrives, since the
//! peer's NIC may not be up yet), then send `NET_FRAMES` numbered unicast frames
//! to the peer and check the peer's arrive each exactly once, in order, unchanged.
//! `NET_FRAME_LEN` makes every data frame that long (the benchmark's runs).
//! The guest named `guest_a` then waits for the other's "done" and exits with the
//! run's status; the other parks, so the run ends when both have checked.
//!
//! `NET_VRSS=N` (a guest alone on netvsp's loopback, tests/systems/net_vrss.xml)
//! runs vRSS instead, as Linux's `rndis_set_subchannel` does: ask for N
//! sub-channels, open each offer that comes (its own ring GPADL), set RSS over
//! all channels, then send `NET_FRAMES` flows to itself spread over the channels
//! and check each comes back on the channel its Toeplitz hash picks.

use std::time::{Duration, Instant};

use guest_sim::config::{GUEST_RAM, GUEST_SHARED, IRQ_QUEUE};
use guest_sim::synic::GuestSynic;
use guest_sim::vcpu::Vcpu;
use ipc::{Consumer, InitError, InitExt, Perms};
use netvsc_client::{Buffer, Layout, Netvsc};
use netvsp_protocol::nvsp::Version;
use synic_pd::Instance;
use vmbus_client::{Client, ClientConfig, ClientError, OpenParams, TransportError};
use vmbus_protocol::ids::interface;
use vmbus_ring::{GpadlRingMem, IncomingRing, OutgoingRing, RingMem, PAGE_SIZE};

/// Guest pages (GPA / 4 KiB) of the network channel, above guest-sim's SynIC and
/// hypercall pages and inside the 2 MiB the paravisor's PDs are built for.
const RING_PFN: u64 = 0x10;
/// Each ring as Linux makes it: a control page and 128 data pages.
const RING_HALF: u64 = 129;
const CONTROL_PFN: u64 = RING_PFN + 2 * RING_HALF;
const RECEIVE: (u64, u64) = (0x120, 0x80);
/// vRSS: a smaller receive buffer, and each sub-channel's ring (4 pages each
/// way) after it.
const VRSS_RECEIVE: (u64, u64) = (0x120, 0x40);
const SUB_RINGS_PFN: u64 = 0x160;
const SUB_RING_HALF: u64 = 4;
const SEND: (u64, u64) = (0x1a0, 0x60);

const ETHERTYPE_HELLO: [u8; 2] = [0x88, 0xb5];
const ETHERTYPE_DATA: [u8; 2] = [0x88, 0xb6];
const ETHERTYPE_DONE: [u8; 2] = [0x88, 0xb7];
const BROADCAST: [u8; 6] = [0xff; 6];
/// The longest the exchange may go without progress before the run fails.
const WAIT: Duration = Duration::from_secs(10);

type Ring = GpadlRingMem<'static, Vec<u64>>;
type Result<T> = std::result::Result<T, String>;

fn main() {
    hostsim::run::<Never, _>(|init, kernel| {
        let leader = init.pd_name() == "guest_a";
        let queue = init.region_with(IRQ_QUEUE, Perms::RW)?;
        let irqs = Consumer::new(queue, synic_pd::pd::IRQ_QUEUE_CAPACITY).map_err(|_| {
            InitError::InvalidVariable {
                name: IRQ_QUEUE,
                value: queue.len() as u64,
            }
        })?;
        let ram = init.region_with(GUEST_RAM, Perms::RW)?;
        let shared = init.region_with(GUEST_SHARED, Perms::RW)?;
        let vcpu = Vcpu::new(kernel, ram, shared, GuestSynic::new(ram, irqs));
        let frames = std::env::var("NET_FRAMES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000u32);
        // NET_FRAME_LEN: every data frame this long (benchmarks); unset, they vary.
        let len = std::env::var("NET_FRAME_LEN")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|l| (18..=1514).contains(l))
            .unwrap_or(0usize);
        let vrss = std::env::var("NET_VRSS").ok().and_then(|v| v.parse().ok());
        match run(vcpu, leader, (frames, len), vrss) {
            Ok(summary) => {
                println!("net_guest: {summary}");
                if leader {
                    std::process::exit(0)
                }
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Err(e) => {
                println!("net_guest: FAILED: {e}");
                std::process::exit(1)
            }
        }
    })
}

fn client_error(what: &str) -> impl Fn(ClientError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The ring GPADL's pages (`half` each way from `first`) zeroed and both control
/// pages initialized, as Linux's `hv_ringbuffer_init` does, and the guest's ends
/// attached.
fn rings(
    ram: ipc::Region<'static>,
    first: u64,
    half: u64,
) -> Result<(OutgoingRing<Ring>, IncomingRing<Ring>)> {
    ram.fill(
        (first * PAGE_SIZE as u64) as usize,
        (2 * half as usize) * PAGE_SIZE,
        0,
    )
    .map_err(|e| format!("ring pages: {e}"))?;
    let mem = |first: u64| -> Result<Ring> {
        let m = GpadlRingMem::new(ram, (first..first + half).collect())
            .map_err(|e| format!("ring memory: {e}"))?;
        m.control().initialize();
        Ok(m)
    };
    let out = OutgoingRing::new(mem(first)?).map_err(|e| format!("tx ring: {e}"))?;
    let inp = IncomingRing::new(mem(first + half)?).map_err(|e| format!("rx ring: {e}"))?;
    Ok((out, inp))
}

struct Channel<'v, 'k> {
    vcpu: &'v mut Vcpu<'k>,
    connection_id: u32,
    flag: u32,
}

impl Channel<'_, '_> {
    /// HvSignalEvent on the channel's connection.
    fn signal(&mut self) -> Result<()> {
        match self.vcpu.signal(self.connection_id, 0) {
            Ok(s) if s.is_success() => Ok(()),
            Ok(s) => Err(format!("HvSignalEvent: {s:?}")),
            Err(e) => Err(e.0),
        }
    }

    /// Whether the channel's interrupt came, waiting at most `spins` polls.
    fn interrupted(&mut self, spins: u32) -> Result<bool> {
        for _ in 0..spins {
            self.vcpu.synic.service(self.vcpu.kernel).map_err(|e| e.0)?;
            if self.vcpu.synic.take_event(Instance::PARAVISOR, self.flag) {
                return Ok(true);
            }
            std::thread::yield_now();
        }
        Ok(false)
    }
}

/// Frame `seq`: its number after the header, `len` bytes, or 60 to 1499 bytes by
/// number (every alignment of the receive sections) when `len` is 0.
fn frame(dst: [u8; 6], src: [u8; 6], kind: [u8; 2], seq: u32, len: usize) -> Vec<u8> {
    let mut f = [dst, src].concat();
    f.extend_from_slice(&kind);
    f.extend_from_slice(&seq.to_be_bytes());
    let len = if len == 0 {
        60 + (seq as usize * 37) % 1440
    } else {
        len
    };
    f.resize(len.max(f.len()), seq as u8 ^ src[5]);
    f
}

fn run(
    vcpu: Vcpu<'_>,
    leader: bool,
    (frames, len): (u32, usize),
    vrss: Option<u32>,
) -> Result<String> {
    let mut vcpu = vcpu;
    vcpu.detect_hyperv().map_err(|e| e.0)?;
    vcpu.synic
        .enable(vcpu.kernel, Instance::PARAVISOR)
        .map_err(|e| e.0)?;
    vcpu.synic
        .enable(vcpu.kernel, Instance::HYPERVISOR)
        .map_err(|e| e.0)?;
    let mut client = Client::new(vcpu, ClientConfig::linux_confidential());
    let started = Instant::now();
    // The guest starts with the paravisor; vmbus-server claims its connection soon.
    loop {
        match client.connect() {
            Ok(_) => break,
            Err(ClientError::Transport(TransportError::InvalidConnection))
                if started.elapsed() < WAIT =>
            {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(format!("INITIATE_CONTACT: {e}")),
        }
    }
    client.transport().message_instance = Some(Instance::PARAVISOR);
    let offers = client
        .request_offers()
        .map_err(client_error("REQUESTOFFERS"))?;
    let offer = *offers
        .iter()
        .find(|o| o.interface_id == interface::NETWORK)
        .ok_or_else(|| format!("no network offer among {} offers", offers.len()))?;
    println!(
        "net_guest: network offer: relid {}, connection {:#x}",
        offer.relid.0, offer.connection_id
    );
    let ram = client.transport().ram;
    let (out, inp) = rings(ram, RING_PFN, RING_HALF)?;
    let ring = client
        .create_gpadl(offer.relid, &(RING_PFN..CONTROL_PFN).collect::<Vec<_>>())
        .map_err(client_error("ring GPADL"))?;
    let mut buffer = |(first, n): (u64, u64)| -> Result<Buffer> {
        let gpadl = client
            .create_gpadl(offer.relid, &(first..first + n).collect::<Vec<_>>())
            .map_err(client_error("buffer GPADL"))?;
        Ok(Buffer {
            offset: (first * PAGE_SIZE as u64) as usize,
            len: (n * PAGE_SIZE as u64) as usize,
            gpadl: gpadl.0,
        })
    };
    let receive = buffer(if vrss.is_some() {
        VRSS_RECEIVE
    } else {
        RECEIVE
    })?;
    let send = buffer(SEND)?;
    client
        .open(
            offer.relid,
            &OpenParams {
                ring_gpadl: ring,
                downstream_page_offset: RING_HALF as u32,
                target_vp: 0,
                user_data: [0; 120],
            },
        )
        .map_err(client_error("OPENCHANNEL"))?;
    let mut nic = Netvsc::new(
        out,
        inp,
        Layout {
            ram,
            base_pfn: 0,
            receive,
            send,
            control_page: (CONTROL_PFN * PAGE_SIZE as u64) as usize,
        },
    );
    let mut ch = Channel {
        vcpu: client.transport(),
        connection_id: offer.connection_id,
        flag: offer.relid.0,
    };
    let mut failure = None;
    let info = nic
        .bring_up(Version::V61, &mut || {
            if let Err(e) = ch.signal().and_then(|()| ch.interrupted(100_000).map(drop)) {
                failure.get_or_insert(e);
            }
        })
        .map_err(|e| format!("bring-up: {e:?} {failure:?}"))?;
    println!(
        "net_guest: NVSP {:?}, MAC {:02x?}, MTU {}, link {}, {} receive and {} send sections",
        info.version,
        info.mac,
        info.mtu,
        if info.link_up { "up" } else { "down" },
        info.receive_sections,
        info.send_sections
    );
    match vrss {
        Some(n) => vrss_run(&mut nic, client, &offer, info.mac, (n, frames)),
        None => exchange(&mut nic, &mut ch, info.mac, leader, (frames, len)),
    }
}

/// HvSignalEvent on `connection_id`.
fn signal(vcpu: &mut Vcpu<'_>, connection_id: u32) -> Result<()> {
    match vcpu.signal(connection_id, 0) {
        Ok(s) if s.is_success() => Ok(()),
        Ok(s) => Err(format!("HvSignalEvent: {s:?}")),
        Err(e) => Err(e.0),
    }
}

/// Polls the NIC (signalling the host first) until `done` or [`WAIT`] passes.
fn poll_until(
    nic: &mut Netvsc<'_, Ring>,
    vcpu: &mut Vcpu<'_>,
    connection_id: u32,
    mut done: impl FnMut(&mut Netvsc<'_, Ring>) -> Result<bool>,
) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        nic.flush().map_err(|e| format!("{e:?}"))?;
        signal(vcpu, connection_id)?;
        std::thread::yield_now();
        vcpu.synic.service(vcpu.kernel).map_err(|e| e.0)?;
        nic.poll().map_err(|e| format!("{e:?}"))?;
        if done(nic)? {
            return Ok(());
        }
    }
    Err("no progress".into())
}

/// vRSS end to end: sub-channels asked, offered, opened; RSS set; every flow's
/// frames back on the channel the guest's own hash says.
fn vrss_run(
    nic: &mut Netvsc<'_, Ring>,
    mut client: Client<Vcpu<'_>>,
    primary: &vmbus_client::Offer,
    mac: [u8; 6],
    (asked, flows): (u32, u32),
) -> Result<String> {
    let conn = primary.connection_id;
    let mut failure = None;
    let vcpu = client.transport();
    let granted = nic
        .request_subchannels(asked, &mut || {
            if let Err(e) = signal(vcpu, conn) {
                failure.get_or_insert(e);
            }
            std::thread::yield_now();
        })
        .map_err(|e| format!("SUBCHANNEL: {e:?} {failure:?}"))?;
    println!("net_guest: vRSS: asked {asked} sub-channels, granted {granted}");
    // The offers come unasked once the host granted them (Linux: netvsc_sc_open).
    let started = Instant::now();
    let mut subs = Vec::new();
    while subs.len() < granted as usize {
        if started.elapsed() > WAIT {
            return Err(format!(
                "{} of {granted} sub-channel offers came",
                subs.len()
            ));
        }
        client.poll().map_err(client_error("offers"))?;
        while let Some(event) = client.next_event() {
            if let vmbus_client::Event::Offered(o) = event {
                let same =
                    (o.interface_id, o.instance_id) == (primary.interface_id, primary.instance_id);
                if same && o.subchannel_index != 0 {
                    subs.push(o);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let ram = client.transport().ram;
    // Each channel's doorbell, by channel index.
    let mut connections = vec![conn; granted as usize + 1];
    for o in &subs {
        let index = o.subchannel_index;
        if index == 0 || u32::from(index) > granted {
            return Err(format!("an offer with sub-channel index {index}"));
        }
        let first = SUB_RINGS_PFN + u64::from(index - 1) * 2 * SUB_RING_HALF;
        let (out, inp) = rings(ram, first, SUB_RING_HALF)?;
        let pfns: Vec<u64> = (first..first + 2 * SUB_RING_HALF).collect();
        let ring = client
            .create_gpadl(o.relid, &pfns)
            .map_err(client_error("sub-channel ring GPADL"))?;
        let params = OpenParams {
            ring_gpadl: ring,
            downstream_page_offset: SUB_RING_HALF as u32,
            target_vp: 0,
            user_data: [0; 120],
        };
        client
            .open(o.relid, &params)
            .map_err(client_error("sub-channel OPENCHANNEL"))?;
        nic.attach_subchannel(index, out, inp)
            .map_err(|e| format!("{e:?}"))?;
        connections[usize::from(index)] = o.connection_id;
    }
    println!("net_guest: vRSS: {} sub-channels open", subs.len());
    let channels = granted + 1;
    let table: Vec<u32> = (0..128).map(|i| i % channels).collect();
    let types = 0x100 | 0x200 | 0x400 | 0x1000 | 0x4000 | 0x8000;
    let vcpu = client.transport();
    let status = nic
        .set_rss(&table, &netvsc_client::flows::KEY, types, &mut || {
            let _ = signal(vcpu, conn);
            std::thread::yield_now();
        })
        .map_err(|e| format!("RSS parameters: {e:?}"))?;
    if status != netvsp_protocol::rndis::Status::SUCCESS {
        return Err(format!("RSS parameters refused: {status:?}"));
    }
    let mut want = std::collections::BTreeMap::new();
    let mut per_channel = vec![0u32; channels as usize];
    let mut got = 0u32;
    for n in 0..flows {
        let (f, input) = netvsc_client::flows::flow(mac, n);
        want.insert(
            f.clone(),
            netvsc_client::flows::channel_of(&input, &table) as u16,
        );
        let channel = (n % channels) as u16;
        let conn = connections[usize::from(channel)];
        let mut sent = false;
        poll_until(nic, vcpu, conn, |nic| {
            sent = sent
                || nic
                    .send_frame_on(channel, &f)
                    .map_err(|e| format!("{e:?}"))?;
            take(nic, &want, &mut per_channel, &mut got)?;
            Ok(sent)
        })?;
    }
    poll_until(nic, vcpu, conn, |nic| {
        take(nic, &want, &mut per_channel, &mut got)?;
        Ok(got == flows)
    })
    .map_err(|e| format!("{e}: {got} of {flows} frames back"))?;
    if nic.tx_refused != 0 {
        return Err(format!("{} frames refused", nic.tx_refused));
    }
    println!(
        "net_guest: vRSS: every frame on the channel its hash picks, per channel {per_channel:?}"
    );
    Ok(format!(
        "PASS: vRSS over {channels} channels, {flows} flows"
    ))
}

/// Takes received frames, each checked against the channel it must come on.
fn take(
    nic: &mut Netvsc<'_, Ring>,
    want: &std::collections::BTreeMap<Vec<u8>, u16>,
    per_channel: &mut [u32],
    got: &mut u32,
) -> Result<()> {
    while let Some((channel, f)) = nic.receive_frame_on() {
        match want.get(&f) {
            Some(&c) if c == channel => {
                per_channel[usize::from(channel)] += 1;
                *got += 1;
            }
            Some(&c) => return Err(format!("a frame for channel {c} came on {channel}")),
            None => return Err(format!("a frame never sent came on {channel}")),
        }
    }
    Ok(())
}

/// What the exchange has seen so far.
#[derive(Default)]
struct Seen {
    peer: Option<[u8; 6]>,
    next: u32,
    peer_done: bool,
    bytes: u64,
    /// Data frame length (0: varying).
    len: usize,
}

impl Seen {
    fn take(&mut self, f: &[u8], me: [u8; 6]) -> Result<()> {
        let (Some(dst), Some(src), Some(kind)) = (f.get(..6), f.get(6..12), f.get(12..14)) else {
            return Err(format!("a runt of {} bytes", f.len()));
        };
        let src: [u8; 6] = src.try_into().map_err(|_| "src")?;
        match [kind[0], kind[1]] {
            ETHERTYPE_HELLO => {
                self.peer.get_or_insert(src);
            }
            ETHERTYPE_DATA => {
                // The peer's hellos may all have come before our NIC was up.
                self.peer.get_or_insert(src);
                let want = frame(me, src, ETHERTYPE_DATA, self.next, self.len);
                if dst != me || f != want {
                    return Err(format!(
                        "frame {} wrong: {} bytes, starts {:02x?}",
                        self.next,
                        f.len(),
                        &f[..f.len().min(18)]
                    ));
                }
                self.next += 1;
                self.bytes += f.len() as u64;
            }
            ETHERTYPE_DONE => self.peer_done = true,
            other => return Err(format!("unexpected ethertype {other:02x?}")),
        }
        Ok(())
    }
}

fn exchange(
    nic: &mut Netvsc<'_, Ring>,
    ch: &mut Channel<'_, '_>,
    me: [u8; 6],
    leader: bool,
    (frames, len): (u32, usize),
) -> Result<String> {
    let mut seen = Seen {
        len,
        ..Seen::default()
    };
    let (mut sent, mut done_sent, mut hellos) = (0u32, false, 0u32);
    let mut data_started = None;
    let mut last_hello = None::<Instant>;
    let mut last_progress = Instant::now();
    loop {
        let mut wrote = false;
        let hello_due = last_hello.is_none_or(|t| t.elapsed() > Duration::from_millis(20));
        if seen.peer.is_none() && hello_due {
            if nic
                .send_frame(&frame(BROADCAST, me, ETHERTYPE_HELLO, hellos, 0))
                .map_err(|e| format!("{e:?}"))?
            {
                hellos += 1;
                wrote = true;
            }
            last_hello = Some(Instant::now());
        }
        if let Some(peer) = seen.peer {
            data_started.get_or_insert_with(Instant::now);
            while sent < frames
                && nic
                    .send_frame(&frame(peer, me, ETHERTYPE_DATA, sent, seen.len))
                    .map_err(|e| format!("{e:?}"))?
            {
                sent += 1;
                wrote = true;
            }
            if seen.next == frames && !done_sent {
                done_sent = nic
                    .send_frame(&frame(peer, me, ETHERTYPE_DONE, 0, 0))
                    .map_err(|e| format!("{e:?}"))?;
                wrote |= done_sent;
            }
        }
        let (before, free_before) = (seen.next, nic.free_send_sections());
        nic.poll().map_err(|e| format!("{e:?}"))?;
        while let Some(f) = nic.receive_frame() {
            seen.take(&f, me)?;
        }
        // Publishes the sends and the receive completions poll wrote.
        nic.flush().map_err(|e| format!("{e:?}"))?;
        if nic.tx_refused != 0 {
            return Err(format!("{} frames refused by netvsp", nic.tx_refused));
        }
        // Sends and the receive completions poll wrote are for the host; so is
        // ring space poll freed, which a NIC waiting to write to us may need
        // (netvsc-client's poll does not report its ring's pending-send signal).
        let progressed = seen.next != before || nic.free_send_sections() != free_before;
        if wrote || progressed {
            ch.signal()?;
        }
        // Only after the signal: what we wrote last must reach the host too.
        let finished = seen.next == frames && sent == frames && done_sent;
        if finished && (!leader || seen.peer_done) {
            break;
        }
        if wrote || progressed {
            last_progress = Instant::now();
        } else if !ch.interrupted(1000)? && last_progress.elapsed() > WAIT {
            return Err(format!(
                "stuck: sent {sent}/{frames}, received {}/{frames}, peer {}",
                seen.next,
                if seen.peer.is_some() {
                    "known"
                } else {
                    "unknown"
                }
            ));
        }
    }
    let secs = data_started
        .map_or(0.0, |t| t.elapsed().as_secs_f64())
        .max(1e-9);
    println!(
        "net_guest: received all {frames} frames from the peer once each, in order, unchanged"
    );
    Ok(format!(
        "PASS: {frames} frames each way; {:.0} frames/s, {:.1} MB/s received ({hellos} hellos)",
        f64::from(frames) / secs,
        seen.bytes as f64 / secs / 1e6
    ))
}

/// The handler type of a PD whose `init` never returns: no value exists, so
/// ipc's defaults are never called.
enum Never {}

impl ipc::Handler for Never {}
