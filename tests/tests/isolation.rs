//! Isolation on host-sim: what a PD may touch is exactly what system.xml grants.
//! (a) faults are contained and reported by PD name and address;
//! (b) capabilities not granted are refused with the exact IpcError;
//! plus PPC round trips, region placement and permissions, and the PD's descriptor
//! table holding nothing but its grants.

mod common;

use hostsim::{FaultReport, SimExit};

/// Two PDs that fault on start (one writes its read-only map, one reads past it)
/// next to an echo pair that must not notice.
fn faults() -> String {
    let faulter = |name: &str| {
        format!(
            r#"<protection_domain name="{name}" priority="10"><program_image path="faulter" />
                 <map mr="victim" vaddr="0x50000000" perms="r" setvar_vaddr="victim" /></protection_domain>"#
        )
    };
    let echo = |name: &str, priority: u8| {
        format!(
            r#"<protection_domain name="{name}" priority="{priority}"><program_image path="{name}" />
                 <map mr="echo_request" vaddr="0x20000000" perms="rw" setvar_vaddr="echo_request" />
                 <map mr="echo_reply" vaddr="0x20010000" perms="rw" setvar_vaddr="echo_reply" />
               </protection_domain>"#
        )
    };
    format!(
        r#"<system>
            <memory_region name="victim" size="0x1000" />
            <memory_region name="echo_request" size="0x10000" />
            <memory_region name="echo_reply" size="0x10000" />
            {}{}{}{}
            <channel><end pd="echo_client" id="0" /><end pd="echo_server" id="0" /></channel>
        </system>"#,
        faulter("ro_writer"),
        faulter("wild_reader"),
        echo("echo_server", 101),
        echo("echo_client", 100)
    )
}

#[test]
fn faults_are_reported_by_name_and_address_and_the_rest_run_on() {
    // Enough work that the faulters (which fault as soon as they start) are done
    // long before the client.
    let opts = common::options(120, &[("ECHO_COUNT", "5000000")]);
    let outcome = common::run(&common::system(&faults()), &opts);
    let mut faults = outcome.faults.clone();
    faults.sort_by(|a, b| a.pd.cmp(&b.pd));
    let ip_free: Vec<FaultReport> = faults
        .iter()
        .map(|f| FaultReport {
            ip: None,
            ..f.clone()
        })
        .collect();
    assert_eq!(
        ip_free,
        [
            FaultReport {
                pd: "ro_writer".into(),
                kind: "SIGSEGV".into(),
                address: Some(0x5000_0000),
                ip: None,
            },
            FaultReport {
                pd: "wild_reader".into(),
                kind: "SIGSEGV".into(),
                address: Some(0x5001_0000),
                ip: None,
            },
        ],
        "{:#?}",
        outcome.log
    );
    assert!(faults.iter().all(|f| f.ip.is_some_and(|ip| ip != 0)));
    // The report the supervisor prints names the PD and the address.
    let reported: Vec<&str> = outcome.lines_of("ro_writer").collect();
    let report = "PD 'ro_writer' faulted: SIGSEGV at address 0x50000000";
    common::has_lines(&reported, &[report]);
    // The echo pair never noticed.
    common::assert_exited(&outcome, "echo_client", 0);
    assert!(outcome
        .stdout_of("echo_client")
        .any(|l| l.starts_with("echo_client: 5000000 messages echoed")));
}

const PANICS: &str = r#"
<system>
    <protection_domain name="panicker" priority="10">
        <program_image path="faulter" />
    </protection_domain>
    <protection_domain name="bystander" priority="10">
        <program_image path="idle" />
    </protection_domain>
</system>
"#;

#[test]
fn a_panic_is_a_contained_fault_too() {
    let outcome = common::run(&common::system(PANICS), &common::options(3, &[]));
    assert_eq!(
        outcome.faults,
        [FaultReport {
            pd: "panicker".into(),
            kind: "panic".into(),
            address: None,
            ip: None,
        }]
    );
    assert!(outcome
        .lines_of("panicker")
        .any(|l| l.contains("deliberate panic in a PD")));
    // The bystander kept running until the timeout.
    assert_eq!(
        outcome.exit,
        SimExit::TimedOut {
            still_running: vec!["bystander".into()]
        }
    );
    assert_eq!(outcome.exit_code(), hostsim::EXIT_TIMEOUT);
}

#[test]
fn capabilities_are_exactly_the_grants() {
    let outcome = common::run(
        &common::load("systems/grants_probe.xml"),
        &common::options(60, &[]),
    );
    let checks: Vec<&str> = outcome
        .stdout_of("probe")
        .filter_map(|l| l.strip_prefix("check "))
        .collect();
    let expected = [
        // (b) ids this PD was never given.
        "notify(7): Err(NotGranted(Channel(7)))",
        "pp_call(7): Err(NotGranted(Channel(7)))",
        "irq_ack(7): Err(NotGranted(Channel(7)))",
        // notify="false" on this end, and PPC from the callee's end.
        "notify(1): Err(NotifyNotPermitted(Channel(1)))",
        "pp_call(2): Err(CallNotPermitted(Channel(2)))",
        "notify(2): Ok(())",
        "irq_ack(1): Err(NotAnIrq(Channel(1)))",
        // PPC round trips, and a handler error surfacing as CallFailed.
        "pp_call(1, add): Ok(label=0 count=1 mr0=5)",
        "pp_call(1, bad label): Err(CallFailed(Channel(1)))",
        "10000 pp round trips: 10000 ok",
        // Regions at the system.xml vaddr, with the granted perms, in the MMU too.
        "rw_region: 0x30000000 0x2000 rw",
        "ro_region: 0x30100000 0x1000 r",
        "variable(rw_region): Ok(\"0x30000000\")",
        "region(nope): Some(MissingRegion(\"nope\"))",
        "alias: 0x30200000 r Ok(()) Ok(\"0xabcd\")",
        "mapping 0x30000000: true",
        "mapping 0x30100000: true",
        "mapping 0x30200000: true",
        // The same memory region, mapped at another vaddr in another process.
        "pp_call(1, marker): Ok(label=0 count=0 mr0=65261)",
        "marker via own mapping: Ok(\"0xfeed\")",
        // stdin (/dev/null), stdout+stderr+fault pipes, channel 1's socket and
        // incoming eventfd, channel 2's socket and outgoing eventfd. No memfd: the
        // mappings are all the PD keeps of its regions.
        "fds: /dev/null eventfd eventfd pipe pipe pipe socket socket",
        // The callee faults mid-call: the caller learns it is gone, and stays so.
        "pp_call(1, crash): Err(PeerGone(Channel(1)))",
        "pp_call(1) after crash: Err(PeerGone(Channel(1)))",
    ];
    assert_eq!(checks, expected, "{:#?}", outcome.log);
    common::assert_exited(&outcome, "probe", 0);
    assert_eq!(outcome.faults.len(), 1, "{:?}", outcome.faults);
    assert_eq!(outcome.faults[0].pd, "server");
    assert_eq!(outcome.faults[0].address, Some(0x10));
    // The handler error was logged with the PD name, and the server carried on.
    assert!(outcome
        .lines_of("server")
        .any(|l| l.starts_with("PD 'server': handler error in protected(channel 4)")));
}
