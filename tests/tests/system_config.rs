//! The root system.xml against the build-time configuration of the PD images it
//! runs (each crate's `config::build`). Most channel ids and the guest GPAs are
//! generated from the descriptions (system-constants, whose build fails when two
//! descriptions disagree); what stays checked here is what generation does not
//! decide: each id the crates fix by convention (VSP slots, service channels) is
//! the one the description gives, with the right direction of calls and
//! notifications; every region a PD asks for is mapped under that name with the
//! rights it needs and nothing else; and the constants crates still keep by hand
//! agree. A drift between code and description fails here instead of as a PD
//! refusing a call at run time.

use std::collections::BTreeSet;

use sdf::{ChannelEnd, System};

fn root() -> System {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    sdf::load(std::path::Path::new(path)).unwrap_or_else(|d| panic!("{d}"))
}

/// The channel between `a` (at its id `a_id`) and `b` (at `b_id`), as (a's end,
/// b's end).
fn channel<'s>(
    sys: &'s System,
    a: &'s str,
    a_id: ipc::Channel,
    b: &str,
    b_id: ipc::Channel,
) -> (&'s ChannelEnd, &'s ChannelEnd) {
    sys.channel_ends_of(a)
        .find(|(mine, peer)| mine.id == a_id.index() && peer.pd == b)
        .filter(|(_, peer)| peer.id == b_id.index())
        .unwrap_or_else(|| {
            panic!(
                "system.xml has no channel {a}:{} <-> {b}:{}",
                a_id.index(),
                b_id.index()
            )
        })
}

/// `caller` may call `callee` over the channel, and not the other way.
fn calls(sys: &System, caller: &str, c_id: ipc::Channel, callee: &str, e_id: ipc::Channel) {
    let (c, e) = channel(sys, caller, c_id, callee, e_id);
    assert!(
        c.pp && !e.pp,
        "{caller} must call {callee} (and only that way)"
    );
    let (from, to) = (
        sys.pd(caller).map(|p| p.priority),
        sys.pd(callee).map(|p| p.priority),
    );
    assert!(
        from < to,
        "{caller} calls {callee}: priorities {from:?} < {to:?}"
    );
}

/// Who notifies whom over the channel between `a` and `b`.
fn notifies(
    sys: &System,
    a: &str,
    a_id: ipc::Channel,
    b: &str,
    b_id: ipc::Channel,
) -> (bool, bool) {
    let (x, y) = channel(sys, a, a_id, b, b_id);
    (x.notify, y.notify)
}

/// The `setvar_vaddr` names `pd` maps, with their perms.
fn maps(sys: &System, pd: &str) -> BTreeSet<(String, String)> {
    sys.pd(pd)
        .unwrap_or_else(|| panic!("no PD {pd}"))
        .maps
        .iter()
        .map(|m| {
            (
                m.setvar_vaddr.clone().unwrap_or_default(),
                m.perms.to_string(),
            )
        })
        .collect()
}

/// A map as `maps` reports it: (setvar name, perms).
type Mapped<'a> = (&'a str, &'a str);

fn set(items: &[Mapped]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn every_channel_id_and_direction_matches_the_pd_images() {
    use echo_vsp::config::build as echo;
    use guest_sim::config as guest;
    use hvcall_pd::config::build as hv;
    use netvsp::config::build as net;
    use storvsp::config::build as stor;
    use synic_pd::config::build as sy;
    use vmbus_server::config::build as vm;

    // Who notifies whom (caller, callee), and why.
    const QUIET: Option<(bool, bool)> = Some((false, false));
    const BOTH: Option<(bool, bool)> = Some((true, true));
    const BACK: Option<(bool, bool)> = Some((false, true));
    const QUEUES: &str = "requests queued one way, queue drained the other";
    const WAKE: &str = "synic-pd wakes vmbus-server when a refused message fits again";
    const OFFERS: &str = "the VSP announces offer changes";
    const SIGNALS: &str = "guest signals reach the VSP as notifications";
    let sys = root();
    // (caller, its id, callee, its id, notify bits or `None` for a protected-call
    // channel whose bits are not asserted here, why).
    use ipc::Channel as Ch;
    type Row<'a> = (&'a str, Ch, &'a str, Ch, Option<(bool, bool)>, &'a str);
    let svc = hv::SERVICES;
    // The tpm entry's one channel, the VMM's (or its stand-in's), is fixed at 0
    // (pds/tpm/src/bin/tpm.rs).
    let tpm_vmm = Ch::new(0);
    let rows: [Row; 15] = [
        ("guest", guest::HVCALL, "hvcall", hv::VCPU, QUIET, ""),
        ("guest", guest::SYNIC, "synic", sy::VCPU, BOTH, QUEUES),
        ("hvcall", hv::SYNIC, "synic", sy::HVCALL, None, ""),
        ("vmbus", vm::HVCALL, "hvcall", svc[0], BOTH, QUEUES),
        ("vmbus", vm::SYNIC, "synic", sy::VMBUS, BACK, WAKE),
        ("vmbus", vm::VSPS[0], "echo_vsp", echo::VMBUS, BACK, OFFERS),
        ("echo_vsp", echo::HVCALL, "hvcall", svc[1], BACK, SIGNALS),
        ("echo_vsp", echo::SYNIC, "synic", sy::VSPS[0], QUIET, ""),
        ("vmbus", vm::VSPS[1], "storvsp", stor::VMBUS, BACK, OFFERS),
        ("storvsp", stor::HVCALL, "hvcall", svc[2], BACK, SIGNALS),
        ("storvsp", stor::SYNIC, "synic", sy::VSPS[1], QUIET, ""),
        ("vmbus", vm::VSPS[2], "netvsp", net::VMBUS, BACK, OFFERS),
        ("netvsp", net::HVCALL, "hvcall", svc[3], BACK, SIGNALS),
        ("netvsp", net::SYNIC, "synic", sy::VSPS[2], QUIET, ""),
        ("guest", guest::TPM, "tpm", tpm_vmm, QUIET, ""),
    ];
    for (caller, c_id, callee, e_id, notify, why) in rows {
        calls(&sys, caller, c_id, callee, e_id);
        if let Some(want) = notify {
            let got = notifies(&sys, caller, c_id, callee, e_id);
            assert_eq!(got, want, "{caller} -> {callee}: {why}");
        }
    }
    assert_eq!(
        sys.channels.len(),
        15,
        "a channel nobody's image uses is a capability nobody should hold"
    );
}

#[test]
fn every_pd_maps_exactly_what_it_uses() {
    use hvcall_pd::pd as hv;
    use synic_pd::pd as sy;
    use vmbus_server::pd as vm;

    use vmbus_device::names as dev;

    let sys = root();
    // (PD, what it maps by setvar name and perms, why)
    use guest_sim::vtpm as gtpm;
    use tpm::measured_boot as mb;
    use tpm::pd as tp;

    // The vTPM as the guest sees it: only the command buffer is its to write.
    let guest_tpm = [
        (gtpm::CRB_REGS, "r"),
        (gtpm::CRB_BUFFER, "rw"),
        (gtpm::EVENT_LOG, "r"),
    ];
    let guest_maps: Vec<Mapped> = [
        (guest_sim::config::GUEST_RAM, "rw"),
        (guest_sim::config::GUEST_SHARED, "rw"),
        (guest_sim::config::IRQ_QUEUE, "rw"),
    ]
    .into_iter()
    .chain(guest_tpm)
    .collect();
    let rows: [(&str, &[Mapped], &str); 8] = [
        ("synic", &[(sy::GUEST_RAM, "rw"), (sy::IRQ_QUEUE, "rw")], ""),
        (
            "hvcall",
            &[(hv::GUEST_RAM, "rw"), (hv::SERVICE_QUEUE_REGIONS[0], "rw")],
            "hvcall-pd forwards nothing to a host here, so no shared memory",
        ),
        (
            "vmbus",
            &[
                (vm::SERVICE_QUEUE, "rw"),
                (vm::VSP_GPADL_REGIONS[0], "rw"),
                (vm::VSP_GPADL_REGIONS[1], "rw"),
                (vm::VSP_GPADL_REGIONS[2], "rw"),
            ],
            "vmbus-server never touches guest memory",
        ),
        (
            "echo_vsp",
            &[
                (dev::GUEST_RAM, "rw"),
                (dev::GUEST_SHARED, "rw"),
                (dev::GPADL_WINDOW, "r"),
            ],
            "",
        ),
        (
            "storvsp",
            &[
                (dev::GUEST_RAM, "rw"),
                (dev::GPADL_WINDOW, "r"),
                (storvsp::device::DISK, "rw"),
            ],
            "storvsp serves confidential rings only: no shared memory",
        ),
        (
            "netvsp",
            &[(dev::GUEST_RAM, "rw"), (dev::GPADL_WINDOW, "r")],
            "netvsp serves confidential rings only, on a loopback: no shared memory, no frame queues",
        ),
        (
            "guest",
            guest_maps.as_slice(),
            "the guest reads the CRB registers and the event log, never writes them",
        ),
        (
            "tpm",
            &[
                (tp::REGS, "rw"),
                (tp::BUFFER, "rw"),
                (mb::EVENT_LOG, "rw"),
                (mb::MEASUREMENTS, "r"),
                (tpm::state::SEALED_STATE, "rw"),
            ],
            "the vTPM holds no guest memory",
        ),
    ];
    for (pd, want, why) in rows {
        assert_eq!(maps(&sys, pd), set(want), "{pd}: {why}");
    }
    // The same memory region behind the names each side uses.
    let region_of = |pd: &str, setvar: &str| {
        sys.pd(pd)
            .and_then(|p| {
                p.maps
                    .iter()
                    .find(|m| m.setvar_vaddr.as_deref() == Some(setvar))
            })
            .map(|m| m.mr.clone())
            .unwrap_or_else(|| panic!("{pd} maps no {setvar}"))
    };
    let shared = [
        (
            ("hvcall", hv::SERVICE_QUEUE_REGIONS[0]),
            ("vmbus", vm::SERVICE_QUEUE),
        ),
        (
            ("vmbus", vm::VSP_GPADL_REGIONS[0]),
            ("echo_vsp", dev::GPADL_WINDOW),
        ),
        (
            ("vmbus", vm::VSP_GPADL_REGIONS[1]),
            ("storvsp", dev::GPADL_WINDOW),
        ),
        (
            ("vmbus", vm::VSP_GPADL_REGIONS[2]),
            ("netvsp", dev::GPADL_WINDOW),
        ),
        (
            ("synic", sy::IRQ_QUEUE),
            ("guest", guest_sim::config::IRQ_QUEUE),
        ),
        (("tpm", tp::REGS), ("guest", gtpm::CRB_REGS)),
        (("tpm", tp::BUFFER), ("guest", gtpm::CRB_BUFFER)),
        (("tpm", mb::EVENT_LOG), ("guest", gtpm::EVENT_LOG)),
    ];
    for ((a, a_name), (b, b_name)) in shared {
        assert_eq!(
            region_of(a, a_name),
            region_of(b, b_name),
            "{a} {a_name} / {b} {b_name}"
        );
    }
    // Who maps a region at all, and who may write it.
    let holders: [(&str, &str, &[&str], &[&str]); 6] = [
        ("storvsp", storvsp::device::DISK, &["storvsp"], &["storvsp"]),
        ("tpm", tp::REGS, &["tpm", "guest"], &["tpm"]),
        ("tpm", tp::BUFFER, &["tpm", "guest"], &["tpm", "guest"]),
        ("tpm", mb::EVENT_LOG, &["tpm", "guest"], &["tpm"]),
        ("tpm", mb::MEASUREMENTS, &["tpm"], &[]),
        ("tpm", tpm::state::SEALED_STATE, &["tpm"], &["tpm"]),
    ];
    for (owner, setvar, mappers, writers) in holders {
        let mr = region_of(owner, setvar);
        let held = |write: bool| -> BTreeSet<&str> {
            sys.all_pds()
                .into_iter()
                .filter(|pd| {
                    pd.maps
                        .iter()
                        .any(|m| m.mr == mr && (!write || m.perms.to_string().contains('w')))
                })
                .map(|pd| pd.name.as_str())
                .collect()
        };
        assert_eq!(
            held(false),
            mappers.iter().copied().collect(),
            "who maps {mr}"
        );
        assert_eq!(
            held(true),
            writers.iter().copied().collect(),
            "who writes {mr}"
        );
    }
}

#[test]
fn partition_constants_agree_with_each_other_and_the_regions() {
    use vmbus_server::config::build as vm;

    let sys = root();
    let size = |mr: &str| {
        sys.memory_region(mr)
            .unwrap_or_else(|| panic!("no region {mr}"))
            .size
    };
    // The guest GPAs, the vTOM and vmbus-server's guest region sizes are generated
    // from the descriptions (system-constants); only crates that still keep their
    // own copies are compared here.
    let vtom = system_constants::GUEST_SHARED_GPA;
    assert_eq!(
        netvsp::config::build::GUEST_SHARED_GPA,
        vtom,
        "netvsp puts guest_shared elsewhere"
    );
    assert_eq!(
        hvcall_pd::config::build::VP_COUNT,
        synic_pd::config::build::VP_COUNT
    );
    assert_eq!(hvcall_pd::config::build::VP_COUNT, vm::VP_COUNT);
    assert_eq!(
        netvsp::config::build::GUEST_RAM_GPA,
        system_constants::GUEST_RAM_GPA
    );
    assert_eq!(
        hvcall_pd::config::build::CONFIDENTIAL_VMBUS,
        vm::CONFIDENTIAL_VMBUS
    );
    // The connection ids hvcall-pd lets each service claim are the ones the VMBus
    // side uses.
    let (first, last) = hvcall_pd::config::build::VMBUS_MESSAGE_CONNECTIONS;
    for id in [
        vmbus_server::protocol::MESSAGE_CONNECTION_ID,
        vmbus_server::protocol::MESSAGE_CONNECTION_ID_4,
    ] {
        assert!((first..=last).contains(&id));
    }
    let base = vmbus_server::DEFAULT_SIGNAL_CONNECTION_BASE;
    assert_eq!(
        hvcall_pd::config::build::CHANNEL_SIGNAL_CONNECTIONS,
        (base + 1, base + vmbus_server::protocol::MAX_RELID)
    );
    // The queues fit their regions.
    let service =
        ipc::Queue::<hvcall_pd::ServiceMessage>::layout_size(hvcall_pd::pd::SERVICE_QUEUE_CAPACITY);
    assert!(service.is_ok_and(|n| n as u64 <= size("vmbus_messages")));
    let irq = ipc::Queue::<synic_pd::api::IrqEntry>::layout_size(synic_pd::pd::IRQ_QUEUE_CAPACITY);
    assert!(irq.is_ok_and(|n| n as u64 <= size("irq_queue")));
    // Where the guest keeps its rings exists in the memory it has.
    let private_end = (guest_sim::config::PRIVATE_RING_PFN + 4 * guest_sim::config::RING_PAGES)
        * guest_sim::config::PAGE;
    assert!(private_end <= size("guest_ram"));
    let shared_end = (guest_sim::config::SHARED_RING_PFN + 4 * guest_sim::config::RING_PAGES)
        * guest_sim::config::PAGE;
    assert!(shared_end <= vtom + size("guest_shared"));
}
