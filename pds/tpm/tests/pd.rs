//! The tpm PD's CRB front end against a hostile VMM and guest, with the engine a
//! platform without libtpms has (every command TPM_RC_FAILURE): refusals are
//! statuses and TPM error responses, never a fault.

#![allow(clippy::unwrap_used)]

mod common;

use common::{rc, Guest};
use ipc::Channel;
use tpm::Unsupported;
use tpm_crb::api::{label, Status, CRB_BASE};
use tpm_crb::command::ResponseCode;
use tpm_crb::regs;

#[test]
fn every_command_gets_tpm_rc_failure_without_an_engine() {
    // And with an engine that did not start (`None`), as vm_tpm runs without libtpms.
    fails_every_command(Unsupported);
    fails_every_command(None::<Unsupported>);
}

fn fails_every_command<E: tpm::Engine>(engine: E) {
    let mut g = Guest::new(engine);
    for command in [
        tpm::commands::startup_clear(),
        tpm::commands::pcr_read(1),
        tpm::commands::get_capability(6, 0x100, 8),
    ] {
        let r = g.transact(&command);
        assert_eq!(r.len(), 10);
        assert_eq!(rc(&r), ResponseCode::FAILURE.0);
    }
    assert_eq!(g.pd.stats().commands, 3);
}

#[test]
fn malformed_and_cancelled_commands_get_the_tpm_error() {
    let mut g = Guest::new(Unsupported);
    let table: &[(&[u8], ResponseCode)] = &[
        (
            &[0x80, 0x01, 0, 0, 0x10, 1, 0, 0, 1, 0x44],
            ResponseCode::COMMAND_SIZE,
        ),
        (
            &[0x80, 0x01, 0, 0, 0, 5, 0, 0, 1, 0x44],
            ResponseCode::COMMAND_SIZE,
        ),
        (
            &[0x12, 0x34, 0, 0, 0, 10, 0, 0, 1, 0x44],
            ResponseCode::BAD_TAG,
        ),
    ];
    for (command, want) in table {
        let r = g.transact(command);
        assert_eq!(rc(&r), want.0, "{command:02x?}");
    }
    // CANCEL set before START: the command does not run.
    g.buffer
        .write_bytes(0, &tpm::commands::startup_clear())
        .unwrap();
    assert_eq!(g.write(regs::CTRL_CANCEL, 4, 1), Status::OK);
    assert_eq!(g.write(regs::CTRL_START, 4, 1), Status::OK);
    let mut header = [0u8; 10];
    g.buffer.read_bytes(0, &mut header).unwrap();
    assert_eq!(rc(&header), ResponseCode::CANCELED.0);
    assert_eq!(g.pd.stats().refused_commands, 4);
}

#[test]
fn register_violations_are_refused_and_change_nothing() {
    let mut g = Guest::new(Unsupported);
    let before: Vec<u32> = (0..0x80).step_by(4).map(|o| g.reg(o)).collect();
    let vmm = g.vmm;
    const R: u64 = label::MMIO_READ;
    const W: u64 = label::MMIO_WRITE;
    const B: u64 = CRB_BASE;
    let table: &[(u64, &[u64], Status)] = &[
        (W, &[B + 0x1008, 4, 1], Status::LOCALITY),
        (R, &[B + 0x4000, 4], Status::LOCALITY),
        (W, &[B + 0x5000, 4, 1], Status::OUTSIDE_WINDOW),
        (R, &[B - 4, 4], Status::OUTSIDE_WINDOW),
        (R, &[u64::MAX, 8], Status::OUTSIDE_WINDOW),
        (W, &[B + 0x40, 3, 1], Status::BAD_SIZE),
        (W, &[B + 0x41, 2, 1], Status::ALIGNMENT),
        (W, &[B + 0x100, 4, 1], Status::OFFSET),
        (W, &[B + 0x58, 4, 0], Status::READ_ONLY),
        (W, &[B + 0x4c, 4, 1], Status::NOT_ACTIVE),
        (W, &[B + 0x4c, 4], Status::BAD_REQUEST),
        (0x1234, &[B, 4], Status::BAD_REQUEST),
    ];
    for &(lbl, args, want) in table {
        assert_eq!(g.call_from(vmm, lbl, args).0, want, "{lbl:#x} {args:x?}");
    }
    // Anyone but the VMM is refused even a valid access.
    assert_eq!(
        g.call_from(Channel::new(5), label::MMIO_WRITE, &[CRB_BASE + 8, 4, 1])
            .0,
        Status::NOT_PERMITTED
    );
    let after: Vec<u32> = (0..0x80).step_by(4).map(|o| g.reg(o)).collect();
    assert_eq!(before, after);
    assert_eq!(g.pd.stats().commands, 0);
}

#[test]
fn reads_through_calls_match_the_published_page() {
    let mut g = Guest::new(Unsupported);
    assert_eq!(g.write(regs::LOC_CTRL, 4, 1), Status::OK);
    let vmm = g.vmm;
    for off in (0..0x80u64).step_by(4) {
        let (s, v) = g.call_from(vmm, label::MMIO_READ, &[CRB_BASE + off, 4]);
        assert_eq!(s, Status::OK);
        assert_eq!(v as u32, g.reg(off), "{off:#x}");
    }
}
