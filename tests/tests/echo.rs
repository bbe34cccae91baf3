//! The echo pair (tests/systems/echo_pair.xml) end to end: a million sequence
//! numbers go through one shared-memory queue and come back through another.

mod common;

use hostsim::SimExit;

#[test]
fn the_echo_pair_echoes_a_million_messages_in_order() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/echo_pair.xml");
    let system = sdf::load(std::path::Path::new(root)).unwrap_or_else(|d| panic!("{d}"));
    let outcome = common::run(&system, &common::options(120, &[]));
    assert_eq!(
        outcome.exit,
        SimExit::Exited {
            pd: "echo_client".into(),
            code: 0
        },
        "{:#?}",
        outcome.log
    );
    assert!(outcome.faults.is_empty(), "{:?}", outcome.faults);
    let report: Vec<&str> = outcome.stdout_of("echo_client").collect();
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].starts_with(
            "echo_client: 1000000 messages echoed, none lost, duplicated or reordered"
        ),
        "{report:?}"
    );
}
