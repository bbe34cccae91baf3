//! The root system.xml on host-sim, every PD its own process: the simulated guest
//! (pds/guest-sim) drives the VMBus client over hypercalls to hvcall-pd, gets its
//! answers through synic-pd in its own SynIC pages, and exchanges packets with the
//! echo VSP through rings in its own memory; the default guest first asks the
//! vTPM (pds/tpm) for random bytes and PCR 0 through the CRB. Once as a 6.0 guest with Confidential
//! VMBus, once as a 5.3 guest, once as a hostile guest flooding every PD.

mod common;

use common::{logged, printed};
use hostsim::SimOutcome;

/// Runs the root system with the guest configured by `env`; asserts it passed and
/// nothing faulted, and returns the outcome for further checks.
fn run_guest(env: &[(&str, &str)]) -> SimOutcome {
    let outcome = common::run(&common::load("../system.xml"), &common::options(60, env));
    let guest = common::assert_clean_exit(&outcome, "guest");
    assert!(
        guest
            .last()
            .is_some_and(|l| l.starts_with("guest_sim: PASS")),
        "{guest:#?}"
    );
    outcome
}

#[test]
fn a_confidential_6_0_guest_echoes_through_private_rings_and_the_paravisor_synic() {
    let outcome = run_guest(&[("GUEST_SIM_PACKETS", "200")]);
    printed(
        &outcome,
        "guest",
        &[
            "Confidential VMBus offered",
            "connected: VMBus 6.0, features FeatureFlags(CONFIDENTIAL_CHANNELS), messages on the paravisor SynIC",
            "flags OfferFlags(CONFIDENTIAL_RING_BUFFER | CONFIDENTIAL_EXTERNAL_MEMORY)",
            "in private memory",
            "echoed 200 packets",
            "closed, GPADL torn down, unloaded",
            "reconnected (VMBus 6.0)",
            "hypervisor-relay SynIC: none",
            "guest_sim: tpm: Startup already done by the PD; GetRandom 32 bytes; PCR 0 read",
            "guest_sim: tpm: the measurement list is empty",
            "guest_sim: tpm: PCR 0 = replay of 0 logged events",
        ],
    );
    // The vTPM's own account: fresh memory for its list and its state.
    logged(
        &outcome,
        "tpm",
        &[
            "no measurement list laid out: started, PCR 0 stays zero",
            "measured 0 PD images into PCR 0",
        ],
    );
    // The VSP's own account: the ring it served was private and confidential.
    logged(
        &outcome,
        "echo_vsp",
        &[
            "confidential ring in private memory, interrupts via the paravisor SynIC",
            "closed after 200 packets",
        ],
    );
}

#[test]
fn a_5_3_guest_echoes_through_shared_rings_and_the_hypervisor_relay_synic() {
    let outcome = run_guest(&[("GUEST_SIM_VMBUS", "5.3"), ("GUEST_SIM_PACKETS", "200")]);
    printed(
        &outcome,
        "guest",
        &[
            "connected: VMBus 5.3, features FeatureFlags(), messages on the hypervisor-relay SynIC",
            "flags OfferFlags()",
            "in shared memory",
            "echoed 200 packets",
            "paravisor SynIC: none",
        ],
    );
    logged(
        &outcome,
        "echo_vsp",
        &["non-confidential ring in shared memory, interrupts via the hypervisor-relay SynIC"],
    );
}

#[test]
fn a_flood_of_malformed_input_and_a_lying_ring_crash_and_hang_no_pd() {
    let outcome = run_guest(&[("GUEST_SIM_SCENARIO", "hostile")]);
    printed(
        &outcome,
        "guest",
        &[
            "flood before contact: 1500 malformed channel messages taken",
            "rounds of malformed hypercalls refused with the right statuses",
            "junk SynIC and hypervisor MSR accesses answered",
            "flood in session: 1500 malformed channel messages taken",
            "channel still echoes after the flood",
            "the VSP dropped the ring whose write index lied",
            "after a corrupted ring: reopened on fresh pages",
            "PASS (Confidential6_0, hostile",
        ],
    );
    // The server dropped the junk with a log line (rate-limited), the VSP dropped
    // the lying ring; both kept serving, as the guest's later steps show.
    let vmbus = logged(&outcome, "vmbus", &["malformed message"]);
    assert!(
        vmbus.len() < 400,
        "log not rate-limited: {} lines",
        vmbus.len()
    );
    logged(&outcome, "echo_vsp", &["ring broken"]);
}
