//! The root system.xml on host-sim, every PD its own process: the simulated guest
//! (pds/guest-sim) drives the VMBus client over hypercalls to hvcall-pd, gets its
//! answers through synic-pd in its own SynIC pages, and exchanges packets with the
//! echo VSP through rings in its own memory. Once as a 6.0 guest with Confidential
//! VMBus, once as a 5.3 guest, once as a hostile guest flooding every PD.

mod common;

use hostsim::{SimExit, SimOutcome};

fn root_system() -> sdf::System {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    sdf::load(std::path::Path::new(path)).unwrap_or_else(|d| panic!("{d}"))
}

/// Runs the root system with the guest configured by `env`; asserts it passed and
/// nothing faulted, and returns the outcome for further checks.
fn run_guest(env: &[(&str, &str)]) -> SimOutcome {
    let outcome = common::run(&root_system(), &common::options(60, env));
    let guest: Vec<&str> = outcome.stdout_of("guest").collect();
    assert_eq!(
        outcome.exit,
        SimExit::Exited {
            pd: "guest".into(),
            code: 0
        },
        "guest said {guest:#?}\nlog {:#?}",
        outcome.log
    );
    assert!(outcome.faults.is_empty(), "{:?}", outcome.faults);
    assert!(
        guest
            .last()
            .is_some_and(|l| l.starts_with("guest_sim: PASS")),
        "{guest:#?}"
    );
    outcome
}

fn has(lines: &[&str], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[test]
fn a_confidential_6_0_guest_echoes_through_private_rings_and_the_paravisor_synic() {
    let outcome = run_guest(&[("GUEST_SIM_PACKETS", "200")]);
    let guest: Vec<&str> = outcome.stdout_of("guest").collect();
    for step in [
        "Confidential VMBus offered",
        "connected: VMBus 6.0, features FeatureFlags(CONFIDENTIAL_CHANNELS), messages on the paravisor SynIC",
        "flags OfferFlags(CONFIDENTIAL_RING_BUFFER | CONFIDENTIAL_EXTERNAL_MEMORY)",
        "in private memory",
        "echoed 200 packets",
        "closed, GPADL torn down, unloaded",
        "reconnected (VMBus 6.0)",
        "hypervisor-relay SynIC: none",
    ] {
        assert!(has(&guest, step), "missing {step:?} in {guest:#?}");
    }
    // The VSP's own account: the ring it served was private and confidential.
    let vsp: Vec<&str> = outcome.lines_of("echo_vsp").collect();
    assert!(
        has(
            &vsp,
            "confidential ring in private memory, interrupts via the paravisor SynIC"
        ),
        "{vsp:#?}"
    );
    assert!(has(&vsp, "closed after 200 packets"), "{vsp:#?}");
}

#[test]
fn a_5_3_guest_echoes_through_shared_rings_and_the_hypervisor_relay_synic() {
    let outcome = run_guest(&[("GUEST_SIM_VMBUS", "5.3"), ("GUEST_SIM_PACKETS", "200")]);
    let guest: Vec<&str> = outcome.stdout_of("guest").collect();
    for step in [
        "connected: VMBus 5.3, features FeatureFlags(), messages on the hypervisor-relay SynIC",
        "flags OfferFlags()",
        "in shared memory",
        "echoed 200 packets",
        "paravisor SynIC: none",
    ] {
        assert!(has(&guest, step), "missing {step:?} in {guest:#?}");
    }
    let vsp: Vec<&str> = outcome.lines_of("echo_vsp").collect();
    assert!(
        has(
            &vsp,
            "non-confidential ring in shared memory, interrupts via the hypervisor-relay SynIC"
        ),
        "{vsp:#?}"
    );
}

#[test]
fn a_flood_of_malformed_input_and_a_lying_ring_crash_and_hang_no_pd() {
    let outcome = run_guest(&[("GUEST_SIM_SCENARIO", "hostile")]);
    let guest: Vec<&str> = outcome.stdout_of("guest").collect();
    for step in [
        "flood before contact: 1500 malformed channel messages taken",
        "rounds of malformed hypercalls refused with the right statuses",
        "junk SynIC and hypervisor MSR accesses answered",
        "flood in session: 1500 malformed channel messages taken",
        "channel still echoes after the flood",
        "the VSP dropped the ring whose write index lied",
        "after a corrupted ring: reopened on fresh pages",
        "PASS (Confidential6_0, hostile",
    ] {
        assert!(has(&guest, step), "missing {step:?} in {guest:#?}");
    }
    // The server dropped the junk with a log line (rate-limited), the VSP dropped
    // the lying ring; both kept serving, as the guest's later steps show.
    let vmbus: Vec<&str> = outcome.lines_of("vmbus").collect();
    assert!(has(&vmbus, "malformed message"), "{vmbus:#?}");
    assert!(
        vmbus.len() < 400,
        "log not rate-limited: {} lines",
        vmbus.len()
    );
    let vsp: Vec<&str> = outcome.lines_of("echo_vsp").collect();
    assert!(has(&vsp, "ring broken"), "{vsp:#?}");
}
