//! Two guests on one wire (tests/systems/net_pair.xml): each is a partition of its
//! own (guest, hvcall-pd, synic-pd, vmbus-server, netvsp), brings hv_netvsc up in
//! Linux's order (VMBus 6.0 with confidential channels, a 258-page ring GPADL,
//! receive and send buffers, NVSP 6.1, RNDIS), and the two exchange numbered
//! frames through both netvsp PDs and the frame queues between them: every frame
//! arrives exactly once, in order, unchanged (the guests check and say so).

mod common;

const FRAMES: &str = "3000";

#[test]
fn two_guests_exchange_every_frame_once_through_their_netvsp_pds() {
    let system = common::load("systems/net_pair.xml");
    let outcome = common::run(&system, &common::options(120, &[("NET_FRAMES", FRAMES)]));
    common::assert_clean_exit(&outcome, "guest_a");
    for side in ["a", "b"] {
        let (guest_pd, netvsp_pd) = (format!("guest_{side}"), format!("netvsp_{side}"));
        let guest: Vec<&str> = outcome.stdout_of(&guest_pd).collect();
        common::has_lines(
            &guest,
            &[
                "net_guest: network offer: relid",
                "net_guest: NVSP Version(393217)",
                &format!("net_guest: received all {FRAMES} frames from the peer once each, in order, unchanged"),
                &format!("net_guest: PASS: {FRAMES} frames each way"),
            ],
        );
        let nvsp = guest.iter().find(|l| l.contains("NVSP")).expect("checked");
        assert!(nvsp.contains("link up"), "{nvsp}");
        let netvsp: Vec<&str> = outcome.lines_of(&netvsp_pd).collect();
        common::has_lines(&netvsp, &["netvsp: MAC 00:15:5d:"]);
        common::has_all(&netvsp, &["open: confidential ring in private memory"]);
        assert!(!common::has(&netvsp, "broken"), "{netvsp:#?}");
    }
}

/// vRSS on host-sim (tests/systems/net_vrss.xml): the guest asks for 4
/// sub-channels, vmbus-server offers what netvsp grants, the guest opens each on
/// its own ring, sets RSS, and every flow comes back (netvsp's loopback) on the
/// channel the guest's own Toeplitz hash picks.
#[test]
fn vrss_subchannels_carry_each_flow_on_the_channel_its_hash_picks() {
    let system = common::load("systems/net_vrss.xml");
    let env = [("NET_VRSS", "4"), ("NET_FRAMES", "400")];
    let outcome = common::run(&system, &common::options(120, &env));
    common::assert_clean_exit(&outcome, "guest_a");
    let guest: Vec<&str> = outcome.stdout_of("guest_a").collect();
    common::has_lines(
        &guest,
        &[
            "net_guest: vRSS: asked 4 sub-channels, granted 4",
            "net_guest: vRSS: 4 sub-channels open",
            "net_guest: vRSS: every frame on the channel its hash picks",
            "net_guest: PASS: vRSS over 5 channels, 400 flows",
        ],
    );
    let netvsp: Vec<&str> = outcome.lines_of("netvsp").collect();
    assert!(!common::has(&netvsp, "broken"), "{netvsp:#?}");
}
