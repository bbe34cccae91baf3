//! The ioapic PD on host-sim, in its own process, with a guest stand-in that
//! programs it over MMIO calls and takes interrupt requests from its queue
//! (tests/src/bin/ioapic_guest.rs), and a device PD that drives lines
//! (tests/src/bin/ioapic_device.rs). The system is tests/systems/ioapic.xml.

mod common;

const SYSTEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systems/ioapic.xml");

fn system() -> sdf::System {
    common::load("systems/ioapic.xml")
}

#[test]
fn the_system_description_passes_paravisor_check() {
    let out = common::paravisor(&["check", SYSTEM]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn a_guest_programs_the_ioapic_and_a_device_drives_its_lines() {
    let outcome = common::run(&system(), &common::options(60, &[]));
    let guest = common::assert_clean_exit(&outcome, "guest");
    let device: Vec<&str> = outcome.stdout_of("device").collect();
    assert_eq!(
        guest.last(),
        Some(&"guest: all checks passed"),
        "{guest:#?} {device:#?}"
    );
    common::has_lines(&guest, &[
        "guest: registers ok (version 0x170011",
        "guest: accesses outside the page, bad sizes and unknown calls refused",
        "guest: pins 4 (level), 3 (edge), 9 (level) programmed",
        "guest: level 0x44 and edge 0x33 delivered, remote IRR set; EOI while asserted re-delivered 0x44",
        "guest: line dropped; EOI cleared remote IRR without re-delivery",
        "guest: masked level line held back, delivered on unmask",
        "guest: queue full after 64 requests; the next stayed pending (delivery status 1) and came after room was made",
    ]);
    assert_eq!(
        device,
        [
            "device: step 1: asserted line 4, pulsed line 3; line 9 refused (not permitted), line 24 refused (no such line), register write refused",
            "device: step 2: deasserted line 4",
            "device: step 3: asserted line 4",
            "device: step 4: pulsed line 3 100 times",
        ],
        "{:#?}",
        outcome.log
    );
    // The ioapic PD logged each refusal, naming the channel and what it grants.
    let ioapic: Vec<&str> = outcome.lines_of("ioapic").collect();
    common::has_lines(&ioapic, &[
        "ioapic: refused assert of line 9 from channel 1: not granted (lines granted: 0x18) [refusal 1]",
        "ioapic: refused label 0x1a04 from channel 1: no such line (mr0=0x18 mr1=0x1 count=2) [refusal 2]",
        "ioapic: refused label 0x1a02 from channel 1: only the vCPU PD (channel 0) may access registers or EOI [refusal 3]",
        "ioapic: refused label 0x1a01 from channel 0: outside the IOAPIC page",
        "ioapic: refused label 0x1a01 from channel 0: bad access size",
        "ioapic: refused label 0x7777 from channel 0: bad request",
    ]);
}

#[test]
fn a_grant_of_a_line_that_does_not_exist_stops_the_ioapic_pd_at_init() {
    let outcome = common::run(
        &system(),
        &common::options(60, &[("IOAPIC_LINES", "1:0x1000018")]),
    );
    common::assert_exited(&outcome, "ioapic", hostsim::EXIT_INIT_FAILED);
    common::logged(
        &outcome,
        "ioapic",
        &["init failed: variable lines_1 = 0x1000018 is out of range"],
    );
}
