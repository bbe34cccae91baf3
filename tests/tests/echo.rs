//! The echo pair (tests/systems/echo_pair.xml) end to end: a million sequence
//! numbers go through one shared-memory queue and come back through another.

mod common;

#[test]
fn the_echo_pair_echoes_a_million_messages_in_order() {
    let system = common::load("systems/echo_pair.xml");
    let outcome = common::run(&system, &common::options(120, &[]));
    let report = common::assert_clean_exit(&outcome, "echo_client");
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].starts_with(
            "echo_client: 1000000 messages echoed, none lost, duplicated or reordered"
        ),
        "{report:?}"
    );
}
