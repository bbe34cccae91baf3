//! What the simulated guest does, start to finish, and what it checks on the way.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hvcall_pd::api as hvapi;
use hvdef::hypercall::{PostMessageInput, SignalEventInput};
use hvdef::{Control, HvStatus, HypercallCode, Vtl};
use synic_pd::Instance;
use vmbus_client::{Client, ClientConfig, ClientError, Offer, OpenParams, TransportError};
use vmbus_protocol::{FeatureFlags, Version};
use zerocopy::{FromZeros, IntoBytes};

use crate::config::{HVCALL, INPUT_PAGE, RING_PAGES, SYNIC, WAIT};
use crate::echo::{prepare_rings, ring_pfns, EchoChannel, Exchanged};
use crate::junk::{self, XorShift};
use crate::synic::{instance_name, INSTANCES};
use crate::time::Instant;
use crate::vcpu::{Backoff, Vcpu};
use crate::{ensure, fail, Failure, Result};

/// Which Linux the guest behaves as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Guest {
    /// VMBus 6.0 with Confidential VMBus: asks for confidential channels, reads the
    /// paravisor's SynIC, keeps rings in private memory.
    Confidential6_0,
    /// A 5.3 guest (Debian's 6.1 kernels): the hypervisor's SynIC, rings made
    /// host-visible.
    Legacy5_3,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub guest: Guest,
    pub packets: u64,
    /// Flood every PD with malformed input and break a ring before and during the
    /// session.
    pub hostile: bool,
    /// Drive the storage VSP instead of the echo channel (`storage`, `storage-bench`).
    pub storage: Option<crate::storage::Mode>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            guest: Guest::Confidential6_0,
            packets: 64,
            hostile: false,
            storage: None,
        }
    }
}

pub const ENV_VMBUS: &str = "GUEST_SIM_VMBUS";
pub const ENV_PACKETS: &str = "GUEST_SIM_PACKETS";
pub const ENV_SCENARIO: &str = "GUEST_SIM_SCENARIO";

impl Options {
    /// From `GUEST_SIM_VMBUS` (`6.0` or `5.3`), `GUEST_SIM_PACKETS` and
    /// `GUEST_SIM_SCENARIO` (`echo` or `hostile`); unset means the default.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut o = Self::default();
        match get(ENV_VMBUS).as_deref() {
            None | Some("6.0") => {}
            Some("5.3") => o.guest = Guest::Legacy5_3,
            Some(other) => return fail(format!("{ENV_VMBUS}={other:?}: use 6.0 or 5.3")),
        }
        if let Some(n) = get(ENV_PACKETS) {
            o.packets = n
                .parse()
                .ok()
                .filter(|&n| (1..=1_000_000).contains(&n))
                .ok_or_else(|| Failure(format!("{ENV_PACKETS}={n:?}: use 1..=1000000")))?;
        }
        match get(ENV_SCENARIO).as_deref() {
            None | Some("echo") => {}
            Some("hostile") => o.hostile = true,
            Some(s) if crate::storage::Mode::from_env(s, &get).is_some() => {
                o.storage = crate::storage::Mode::from_env(s, &get).transpose()?;
            }
            Some(other) => {
                return fail(format!(
                    "{ENV_SCENARIO}={other:?}: use echo, hostile, storage or storage-bench"
                ))
            }
        }
        Ok(o)
    }
}

/// Junk channel messages per flood, and rounds of bad hypercalls.
const FLOOD_MESSAGES: usize = 1500;
const BAD_HYPERCALL_ROUNDS: usize = 50;
const BAD_MSR_ACCESSES: usize = 400;

pub(crate) fn client_error(what: &str, e: ClientError) -> Failure {
    Failure(format!("{what}: {e}"))
}

/// Describes `pfns` as the channel's ring GPADL and opens `relid` on it, the
/// host-to-guest ring `downstream` pages in.
pub(crate) fn open_on_rings(
    client: &mut Client<Vcpu<'_>>,
    relid: vmbus_protocol::Relid,
    pfns: &[u64],
    downstream: u32,
) -> Result<vmbus_protocol::GpadlId> {
    let ring = client
        .create_gpadl(relid, pfns)
        .map_err(|e| client_error("GPADL_HEADER", e))?;
    client
        .open(
            relid,
            &OpenParams {
                ring_gpadl: ring,
                downstream_page_offset: downstream,
                target_vp: 0,
                user_data: [0; 120],
            },
        )
        .map_err(|e| client_error("OPENCHANNEL", e))?;
    Ok(ring)
}

/// Runs the session; prints a line per step and returns the summary line.
pub fn run(vcpu: Vcpu<'_>, opts: Options) -> Result<String> {
    if let Some(mode) = opts.storage {
        return crate::storage::run(vcpu, mode);
    }
    let started = Instant::now();
    let mut vcpu = vcpu;
    let hv = vcpu.detect_hyperv()?;
    println!(
        "guest_sim: Hyper-V detected (max leaf {:#x}, Confidential VMBus {})",
        hv.max_leaf,
        if hv.confidential_vmbus {
            "offered"
        } else {
            "not offered"
        }
    );
    let (config, expected) = match opts.guest {
        Guest::Confidential6_0 => {
            ensure!(
                hv.confidential_vmbus,
                "the paravisor does not offer Confidential VMBus"
            );
            (ClientConfig::linux_confidential(), Instance::PARAVISOR)
        }
        Guest::Legacy5_3 => {
            let mut c = ClientConfig::linux();
            c.versions.retain(|&v| v <= Version::WIN10_V5_3);
            (c, Instance::HYPERVISOR)
        }
    };
    // A guest that knows about Confidential VMBus reads both SynICs; one that does
    // not knows only the hypervisor's.
    if opts.guest == Guest::Confidential6_0 {
        vcpu.synic.enable(vcpu.kernel, Instance::PARAVISOR)?;
    }
    vcpu.synic.enable(vcpu.kernel, Instance::HYPERVISOR)?;

    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
    if opts.hostile {
        let n = flood(&mut vcpu, &mut rng, &[1, 4], None)?;
        println!("guest_sim: flood before contact: {n} malformed channel messages taken");
        bad_hypercalls(&mut vcpu, None)?;
        bad_msrs(&mut vcpu, &mut rng)?;
    }

    let mut client = Client::new(vcpu, config);
    let connection = connect(&mut client)?;
    let confidential = connection
        .features
        .contains(FeatureFlags::CONFIDENTIAL_CHANNELS);
    match opts.guest {
        Guest::Confidential6_0 => ensure!(
            connection.version == Version::V6_0 && confidential,
            "expected 6.0 with confidential channels, got {} {:?}",
            connection.version,
            connection.features
        ),
        Guest::Legacy5_3 => ensure!(
            connection.version == Version::WIN10_V5_3 && !confidential,
            "expected 5.3 without confidential channels, got {} {:?}",
            connection.version,
            connection.features
        ),
    }
    client.transport().message_instance = Some(expected);
    println!(
        "guest_sim: connected: VMBus {}, features {:?}, messages on the {} SynIC (connection {})",
        connection.version,
        connection.features,
        instance_name(expected),
        connection.message_connection_id
    );

    let offers = client
        .request_offers()
        .map_err(|e| client_error("REQUESTOFFERS", e))?;
    let offer = *offers
        .iter()
        .find(|o| o.interface_id == echo_vsp::device::INTERFACE_ID)
        .ok_or_else(|| Failure(format!("no echo offer among {} offers", offers.len())))?;
    ensure!(
        offer.confidential_ring() == confidential
            && offer.confidential_external_memory() == confidential,
        "offer flags {:?} on a connection with confidential channels {confidential}",
        offer.flags
    );
    println!(
        "guest_sim: offer: relid {} echo, connection {:#x}, flags {:?}",
        offer.relid.0, offer.connection_id, offer.flags
    );

    let mut generation = 0;
    let (mut channel, ring) = open_echo(&mut client, &offer, confidential, generation, expected)?;
    let timer = Instant::now();
    let ex = channel.exchange(client.transport(), 0, opts.packets)?;
    report_exchange(&ex, timer);

    if opts.hostile {
        let live = Some(offer.relid.0);
        let message_connection = connection.message_connection_id;
        let n = flood(client.transport(), &mut rng, &[message_connection], live)?;
        println!("guest_sim: flood in session: {n} malformed channel messages taken");
        bad_hypercalls(client.transport(), Some(offer.connection_id))?;
        let ex = channel.exchange(client.transport(), opts.packets, 8)?;
        ensure!(
            ex.packets == 8,
            "the channel stopped echoing after the flood"
        );
        println!("guest_sim: channel still echoes after the flood");

        // A ring that lies: the VSP must drop it, not crash, and serve the next one.
        channel.corrupt();
        let s = client.transport().signal(offer.connection_id, 0)?;
        ensure!(s.is_success(), "signal after corrupting: {s:?}");
        // The VSP drops a broken channel and gives up its signal connection; the
        // guest sees that as its signals no longer being routed.
        let mut backoff = Backoff::new(WAIT);
        loop {
            let s = client.transport().signal(offer.connection_id, 0)?;
            if s == HvStatus::INVALID_CONNECTION_ID {
                break;
            }
            ensure!(s.is_success(), "signal to the broken channel: {s:?}");
            ensure!(
                backoff.wait(),
                "the VSP kept serving a ring with a lying write index"
            );
        }
        println!("guest_sim: the VSP dropped the ring whose write index lied");
        close_channel(&mut client, offer.relid, ring)?;
        generation += 1;
        let (mut reopened, ring) =
            open_echo(&mut client, &offer, confidential, generation, expected)?;
        let ex = reopened.exchange(client.transport(), 0, opts.packets.div_ceil(2))?;
        println!(
            "guest_sim: after a corrupted ring: reopened on fresh pages, {} packets echoed",
            ex.packets
        );
        channel = reopened;
        close_and_unload(&mut client, &channel, ring)?;
    } else {
        close_and_unload(&mut client, &channel, ring)?;
    }

    // Reconnect after unload, as a kexec'd kernel would, and leave cleanly again.
    let again = connect(&mut client)?;
    let offers = client
        .request_offers()
        .map_err(|e| client_error("REQUESTOFFERS after reconnect", e))?;
    ensure!(
        offers
            .iter()
            .any(|o| o.interface_id == echo_vsp::device::INTERFACE_ID),
        "the echo offer is gone after reconnecting"
    );
    client
        .unload()
        .map_err(|e| client_error("UNLOAD after reconnect", e))?;
    println!(
        "guest_sim: reconnected (VMBus {}), offer still there, unloaded again",
        again.version
    );

    let vcpu = client.transport();
    let other = INSTANCES
        .into_iter()
        .find(|&i| i != expected)
        .unwrap_or(Instance::PARAVISOR);
    let on = vcpu.synic.counts[usize::from(expected.get())];
    let off = vcpu.synic.counts[usize::from(other.get())];
    ensure!(
        vcpu.misrouted == 0 && off == Default::default() && vcpu.synic.stray_interrupts == 0,
        "traffic on the wrong SynIC: {} misrouted messages, {off:?} on the {} SynIC, {} stray interrupts",
        vcpu.misrouted,
        instance_name(other),
        vcpu.synic.stray_interrupts
    );
    ensure!(
        on.events > 0,
        "the VSP never raised the channel's event flag on the {} SynIC",
        instance_name(expected)
    );
    println!(
        "guest_sim: {} SynIC: {} interrupts, {} messages, {} channel events; {} SynIC: none",
        instance_name(expected),
        on.interrupts,
        on.messages,
        on.events,
        instance_name(other)
    );
    Ok(format!(
        "guest_sim: PASS ({:?}{}, {} packets, {} busy retries, {:.0} ms)",
        opts.guest,
        if opts.hostile { ", hostile" } else { "" },
        opts.packets,
        vcpu.busy_retries,
        started.elapsed().as_secs_f64() * 1000.0
    ))
}

fn report_exchange(ex: &Exchanged, since: Instant) {
    let secs = since.elapsed().as_secs_f64();
    println!(
        "guest_sim: echoed {} packets ({} bytes) in {:.1} ms ({:.0} packets/s); {} signals sent, {} interrupts waited for",
        ex.packets,
        ex.bytes,
        secs * 1000.0,
        ex.packets as f64 / secs.max(1e-9),
        ex.signals,
        ex.interrupts
    );
}

/// Linux boots its paravisor-facing VMBus only once the paravisor is up; here the
/// guest starts with the other PDs, so INVALID_CONNECTION_ID (nobody claimed the
/// message connection yet) is retried for a while.
pub(crate) fn connect(client: &mut Client<Vcpu<'_>>) -> Result<vmbus_client::Connection> {
    let mut backoff = Backoff::new(WAIT);
    loop {
        match client.connect() {
            Ok(c) => return Ok(c),
            Err(ClientError::Transport(TransportError::InvalidConnection)) if backoff.wait() => {}
            Err(e) => return Err(client_error("INITIATE_CONTACT", e)),
        }
    }
}

/// Builds the ring GPADL (private pages for a confidential ring, host-visible ones
/// otherwise), opens the channel and attaches to its rings.
fn open_echo(
    client: &mut Client<Vcpu<'_>>,
    offer: &Offer,
    confidential: bool,
    generation: u64,
    expected: Instance,
) -> Result<(EchoChannel, vmbus_protocol::GpadlId)> {
    let pfns = ring_pfns(!confidential, generation);
    prepare_rings(client.transport(), &pfns)?;
    let channel = EchoChannel::attach(
        client.transport(),
        &pfns,
        offer.relid,
        offer.connection_id,
        expected,
    )?;
    let ring = open_on_rings(client, offer.relid, &pfns, RING_PAGES as u32)?;
    println!(
        "guest_sim: opened relid {} on GPADL {:#x}: {} ring pages at pfn {:#x} in {} memory",
        offer.relid.0,
        ring.0,
        pfns.len(),
        pfns[0],
        if confidential { "private" } else { "shared" }
    );
    Ok((channel, ring))
}

/// Linux's teardown order for a channel: close, then its ring GPADL.
pub(crate) fn close_channel(
    client: &mut Client<Vcpu<'_>>,
    relid: vmbus_protocol::Relid,
    ring: vmbus_protocol::GpadlId,
) -> Result<()> {
    client
        .close(relid)
        .map_err(|e| client_error("CLOSECHANNEL", e))?;
    client
        .teardown_gpadl(relid, ring)
        .map_err(|e| client_error("GPADL_TEARDOWN", e))?;
    Ok(())
}

/// Closes the channel, then unloads.
fn close_and_unload(
    client: &mut Client<Vcpu<'_>>,
    channel: &EchoChannel,
    ring: vmbus_protocol::GpadlId,
) -> Result<()> {
    close_channel(client, channel.relid, ring)?;
    client.unload().map_err(|e| client_error("UNLOAD", e))?;
    println!("guest_sim: closed, GPADL torn down, unloaded");
    Ok(())
}

/// Posts junk channel messages to `connections` in turn; every one must be taken
/// (HvPostMessage succeeds: the server drops what it cannot parse).
fn flood(
    vcpu: &mut Vcpu<'_>,
    rng: &mut XorShift,
    connections: &[u32],
    live_relid: Option<u32>,
) -> Result<usize> {
    for i in 0..FLOOD_MESSAGES {
        let message = junk::channel_message(rng, live_relid);
        let connection = connections[i % connections.len()];
        // Now and then not a VMBus message at all.
        let message_type = if i % 10 == 9 {
            2 + rng.below(100) as u32
        } else {
            1
        };
        let s = vcpu.post(connection, message_type, &message)?;
        ensure!(
            s == HvStatus::SUCCESS,
            "junk message {i} to connection {connection}: {s:?}"
        );
        // Answers to junk (failed GPADLs, refused opens) are read and dropped.
        if i % 64 == 0 {
            vcpu.drain_messages()?;
        }
    }
    vcpu.drain_messages()?;
    Ok(FLOOD_MESSAGES)
}

/// Random SynIC MSR accesses on VPs other than the one running the session (VP 1,
/// and VPs that do not exist), and random hypervisor MSR reads: each must be
/// answered (a #GP, "not mine", or a refused call), none may wedge a PD.
fn bad_msrs(vcpu: &mut Vcpu<'_>, rng: &mut XorShift) -> Result<()> {
    let mut answered = 0u32;
    for i in 0..BAD_MSR_ACCESSES {
        let vp = [1, 2, 1000, u32::MAX][i % 4];
        let instance = INSTANCES[i % 2];
        let msr = 0x4000_0000 + rng.below(0x100) as u32;
        let value = rng.next_u64();
        let synic = if i % 3 == 0 {
            synic_pd::api::read_msr(vcpu.kernel, SYNIC, vp, instance, msr).map(|(s, _)| s)
        } else {
            synic_pd::api::write_msr(vcpu.kernel, SYNIC, vp, instance, msr, value)
        };
        match synic {
            Ok(_) => answered += 1,
            // A VP that does not exist is the caller's error: the call fails.
            Err(synic_pd::api::ClientError::Ipc(ipc::IpcError::CallFailed(_))) if vp > 1 => {}
            Err(e) => return fail(format!("synic-pd on a junk MSR {msr:#x}: {e:?}")),
        }
        match hvapi::read_msr(vcpu.kernel, HVCALL, vp, Vtl::VTL0, msr) {
            Ok(_) | Err(ipc::IpcError::CallFailed(_)) => {}
            Err(e) => return fail(format!("hvcall-pd on a junk MSR {msr:#x}: {e:?}")),
        }
    }
    ensure!(
        answered > 0,
        "synic-pd answered none of VP 1's MSR accesses"
    );
    println!("guest_sim: {BAD_MSR_ACCESSES} junk SynIC and hypervisor MSR accesses answered");
    Ok(())
}

/// Hypercalls the TLFS says fail, each with the status it must fail with.
fn bad_hypercalls(vcpu: &mut Vcpu<'_>, vsp_connection: Option<u32>) -> Result<()> {
    let post = |conn: u32, ty: u32, size: u32| {
        let mut p = PostMessageInput::new_zeroed();
        p.connection_id = conn;
        p.message_type = ty;
        p.payload_size = size;
        p
    };
    let mut cases: Vec<(&str, HvStatus, Result<HvStatus>)> = Vec::new();
    for _ in 0..BAD_HYPERCALL_ROUNDS {
        cases.clear();
        let raw = |vcpu: &mut Vcpu<'_>, input: PostMessageInput, gpa: u64| {
            vcpu.write_gpa(INPUT_PAGE, input.as_bytes())?;
            vcpu.hypercall(Control::new(HypercallCode::POST_MESSAGE), gpa, 0)
        };
        cases.push((
            "unknown call code",
            HvStatus::INVALID_HYPERCALL_CODE,
            vcpu.hypercall(Control::new(HypercallCode(0x7777)), INPUT_PAGE, 0),
        ));
        // HvPostMessage inputs: (what, status, connection, type, size, gpa offset).
        let posts: [(&str, HvStatus, u32, u32, u32, u64); 5] = [
            (
                "unaligned input page",
                HvStatus::INVALID_ALIGNMENT,
                4,
                1,
                8,
                4,
            ),
            (
                "post to nobody",
                HvStatus::INVALID_CONNECTION_ID,
                0x99,
                1,
                8,
                0,
            ),
            ("post of type 0", HvStatus::INVALID_PARAMETER, 4, 0, 8, 0),
            (
                "post of a hypervisor type",
                HvStatus::INVALID_PARAMETER,
                4,
                0x8000_0010,
                8,
                0,
            ),
            (
                "post of 241 bytes",
                HvStatus::INVALID_PARAMETER,
                4,
                1,
                241,
                0,
            ),
        ];
        for (what, want, conn, ty, size, offset) in posts {
            cases.push((
                what,
                want,
                raw(vcpu, post(conn, ty, size), INPUT_PAGE + offset),
            ));
        }
        cases.push((
            "signal to nobody",
            HvStatus::INVALID_CONNECTION_ID,
            vcpu.signal(0x99, 0),
        ));
        let reserved = SignalEventInput {
            connection_id: 4,
            flag_number: 0,
            reserved: 1,
        };
        cases.push((
            "signal with reserved bits",
            HvStatus::INVALID_PARAMETER,
            vcpu.hypercall(
                Control::new(HypercallCode::SIGNAL_EVENT).with_fast(true),
                reserved.to_u64(),
                0,
            ),
        ));
        if let Some(conn) = vsp_connection {
            // The VSP's connection takes signals only.
            cases.push((
                "post to a channel's signal connection",
                HvStatus::INVALID_PORT_ID,
                raw(vcpu, post(conn, 1, 8), INPUT_PAGE),
            ));
        }
        for (what, want, got) in cases.drain(..) {
            let got = got?;
            ensure!(got == want, "{what}: {got:?}, expected {want:?}");
        }
    }
    println!(
        "guest_sim: {} rounds of malformed hypercalls refused with the right statuses",
        BAD_HYPERCALL_ROUNDS
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_the_environment_and_bad_values_are_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_string())
            }
        };
        assert_eq!(Options::from_env(env(&[])), Ok(Options::default()));
        assert_eq!(
            Options::from_env(env(&[
                (ENV_VMBUS, "5.3"),
                (ENV_PACKETS, "7"),
                (ENV_SCENARIO, "hostile")
            ])),
            Ok(Options {
                guest: Guest::Legacy5_3,
                packets: 7,
                hostile: true,
                storage: None,
            })
        );
        for bad in [
            &[(ENV_VMBUS, "4.0")][..],
            &[(ENV_PACKETS, "0")][..],
            &[(ENV_PACKETS, "many")][..],
            &[(ENV_SCENARIO, "fuzz")][..],
        ] {
            let e = Options::from_env(env(bad)).unwrap_err();
            assert!(e.0.contains(bad[0].0), "{e}");
        }
    }
}
