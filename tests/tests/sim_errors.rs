//! What the supervisor says when a system cannot run, or stops running.

mod common;

use hostsim::{SimError, SimExit, Simulation};

/// A system of priority-1 PDs, each (name, program image), and nothing else.
fn pds(list: &[(&str, &str)]) -> sdf::System {
    let body: String = list
        .iter()
        .map(|(name, image)| {
            format!(
                r#"<protection_domain name="{name}" priority="1"><program_image path="{image}" /></protection_domain>"#
            )
        })
        .collect();
    common::system(&format!("<system>{body}</system>"))
}

#[test]
fn an_unknown_program_image_is_a_clear_error_and_starts_nothing() {
    let system = pds(&[("fine", "idle"), ("typo", "no_such_pd")]);
    let err = Simulation::launch(&system, &common::options(5, &[])).unwrap_err();
    match &err {
        SimError::ImageNotFound {
            pd,
            image,
            searched,
        } => {
            assert_eq!(pd, "typo");
            assert_eq!(image.to_str(), Some("no_such_pd"));
            assert_eq!(searched.last(), Some(&common::bin_dir().join("no_such_pd")));
        }
        other => panic!("wrong error: {other}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("PD 'typo': program image 'no_such_pd' not found; looked in:"),
        "{text}"
    );
}

#[test]
fn irqs_are_refused_as_not_supported_yet() {
    let system = common::system(
        r#"<system>
            <protection_domain name="dev" priority="1">
                <program_image path="idle" />
                <irq irq="5" id="3" />
            </protection_domain>
        </system>"#,
    );
    let err = Simulation::launch(&system, &common::options(5, &[])).unwrap_err();
    assert!(matches!(err, SimError::Unsupported { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "host-sim does not support PD 'dev': irqs yet"
    );
}

#[test]
fn a_region_that_cannot_be_placed_stops_the_system_with_a_message() {
    let mut system = common::system(
        r#"<system>
            <memory_region name="low" size="0x1000" />
            <protection_domain name="pd" priority="1">
                <program_image path="idle" />
                <map mr="low" vaddr="0x60000000" perms="rw" setvar_vaddr="low" />
            </protection_domain>
        </system>"#,
    );
    // Kernel space on x86_64, which the checker refuses; the runtime must cope too.
    system.protection_domains[0].maps[0].vaddr = 0xffff_ffff_fff0_0000;
    let outcome = common::run(&system, &common::options(20, &[]));
    common::assert_exited(&outcome, "pd", hostsim::EXIT_INIT_FAILED);
    assert!(
        outcome.lines_of("pd").any(|l| l
            .starts_with("PD 'pd': cannot map region 'low' at 0xfffffffffff00000 (size 0x1000)")),
        "{:#?}",
        outcome.log
    );
}

#[test]
fn when_every_pd_faults_the_system_fails() {
    let system = pds(&[("panicker", "faulter")]);
    let outcome = common::run(&system, &common::options(20, &[]));
    assert_eq!(outcome.exit, SimExit::AllFaulted);
    assert_eq!(outcome.exit_code(), hostsim::EXIT_NO_PD_EXITED);
}

#[test]
fn a_timeout_names_the_pds_still_running() {
    let system = pds(&[("a", "idle"), ("b", "idle")]);
    let outcome = common::run(&system, &common::options(1, &[]));
    assert_eq!(
        outcome.exit,
        SimExit::TimedOut {
            still_running: vec!["a".into(), "b".into()]
        }
    );
    assert!(outcome
        .log
        .iter()
        .any(|l| l.text == "timeout: still running: a, b"));
}
