//! hvcall-pd and synic-pd on host-sim, each in its own process, driven by a simulated
//! guest (tests/src/bin/hv_guest.rs) that posts messages and signals events through
//! hvcall-pd and reads them back from its own mapping of guest RAM. The system is
//! tests/systems/hvcall_synic.xml.

mod common;

#[test]
fn a_guest_posts_and_signals_through_hvcall_pd_into_synic_pd() {
    let system = common::load("systems/hvcall_synic.xml");
    let outcome = common::run(&system, &common::options(60, &[]));
    let guest = common::assert_clean_exit(&outcome, "guest");
    assert_eq!(
        guest.last(),
        Some(&"guest: all checks passed"),
        "{guest:#?}"
    );
    common::has_lines(
        &guest,
        &[
            "guest: cpuid ok",
            "guest: hypercall page ok",
            "guest: both synics enabled",
            "guest: message delivered to the paravisor synic slot 2",
            "guest: event flag 77 set, one interrupt",
            "guest: message delivered to the hypervisor-relay synic only",
            "guest: busy slot queued 4",
            "guest: host relay took the shared buffer and refused the private one",
            "guest: error statuses ok",
        ],
    );
    // The host saw exactly the one shared-buffer post, read through its own
    // read-only mapping of the shared window; the private one never reached it.
    let host: Vec<&str> = outcome.stdout_of("hostfwd").collect();
    assert_eq!(
        host,
        ["hostfwd: post conn=0x14 gpa=0x1000000000 payload=\"for the host\""],
        "{:#?}",
        outcome.log
    );
    // The service connection's message went to the port daemon's queue.
    let portd: Vec<&str> = outcome.stdout_of("portd").collect();
    assert!(
        portd.contains(
            &"portd: service message conn=0x2013 type=1 vtl=0 payload=\"for the service\""
        ),
        "{portd:#?}\n{:#?}",
        outcome.log
    );
}
