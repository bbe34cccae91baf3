//! The GHCB protocol against a fake guest RAM and fake peers: the MSR protocol,
//! the hypercall page, MSR exits with their valid bitmap, and pages that are not
//! RAM or not the registered one.

use std::vec;
use std::vec::Vec;

use super::*;
use snp_backend::ghcb_host::EXIT_MSR;
use snp_backend::ghcb_page::usage;

/// The page offsets these tests poke: snp-backend's layout.
mod at {
    pub use snp_backend::ghcb_page::hv::{
        CONTROL_OR_RESULT as HV_CONTROL, OUTPUT_GPA as HV_OUTPUT_GPA,
    };
    pub use snp_backend::ghcb_page::off::*;
}
use crate::testing::{Call, FakePeers, Ram};

const GHCB: u64 = PAGE_GPA;

/// Peers answering every GHCB request.
fn peers() -> FakePeers {
    FakePeers {
        synic: MsrOutcome::Done(0),
        hypercall: Some(0),
        ..FakePeers::default()
    }
}

/// The registered page's bytes.
fn page(ram: &Ram) -> Vec<u8> {
    ram.bytes(GHCB, PAGE as usize)
}

fn ram() -> Ram {
    Ram::new(0x10_0000)
}

fn set_bits(ram: &Ram, offsets: &[usize]) {
    let bits = offsets.iter().map(|offset| offset / 8);
    ram.put_bitmap(GHCB + at::VALID_BITMAP as u64, 16, bits);
}

/// A default-usage page asking for MSR `index` (a write when `info1` is 1); the
/// exit code and info are marked valid, the registers in `valid` too.
fn msr_page(ram: &Ram, index: u64, info1: u64, rax: u64, rdx: u64, valid: &[usize]) {
    ram.put(GHCB + at::USAGE as u64, &usage::STANDARD.to_le_bytes());
    ram.put(GHCB + at::SW_EXIT_CODE as u64, &EXIT_MSR.to_le_bytes());
    ram.put(GHCB + at::SW_EXIT_INFO_1 as u64, &info1.to_le_bytes());
    ram.put(GHCB + at::RCX as u64, &index.to_le_bytes());
    ram.put(GHCB + at::RAX as u64, &rax.to_le_bytes());
    ram.put(GHCB + at::RDX as u64, &rdx.to_le_bytes());
    let mut marked = vec![at::SW_EXIT_CODE, at::SW_EXIT_INFO_1];
    marked.extend_from_slice(valid);
    set_bits(ram, &marked);
}

/// Whether a VMGEXIT with the page as `ram` holds it fails (and so ends the VM).
fn failed(g: &mut Ghcb, ram: &Ram, p: &mut FakePeers) -> bool {
    matches!(g.vmgexit(ram, p, Instance::HYPERVISOR), Outcome::Failed(_))
}

#[test]
fn the_msr_starts_at_the_registered_page_aligned() {
    let g = Ghcb::new(GHCB | 0x123);
    assert_eq!(g.read_msr(), GHCB);
    let mut g = g;
    g.write_msr(0xffff_ffff_ffff_ffff);
    assert_eq!(g.read_msr(), u64::MAX);
}

#[test]
fn sev_info_answers_the_versions_and_c_bit() {
    let ram = ram();
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    // Whatever the guest put in the upper bits, the answer replaces them.
    g.write_msr(0xdead_0000_0000_0000 | info::SEV_INFO_REQ);
    assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
    assert_eq!(
        g.read_msr(),
        0x0002_0001_3300_0001,
        "max 2, min 1, C-bit 51, SEV_INFO_RESP"
    );
    assert!(p.calls.is_empty());
    assert_eq!(page(&ram), vec![0; PAGE as usize], "the page is untouched");
}

#[test]
fn termination_carries_the_reason() {
    let ram = ram();
    let mut g = Ghcb::new(GHCB);
    g.write_msr(info::TERM_REQ | (0x1 << 12) | (0x7f << 16));
    assert_eq!(
        g.vmgexit(&ram, &mut peers(), Instance::HYPERVISOR),
        Outcome::Terminate {
            set: 1,
            reason: 0x7f
        }
    );
}

#[test]
fn unserved_msr_protocol_requests_leave_the_msr_as_written() {
    let ram = ram();
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    for request in [0x004, 0x012, 0x014, 0x080, 0xfff, 0x003] {
        let value = 0x1234_5678_0000_0000 | request;
        g.write_msr(value);
        assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
        assert_eq!(g.read_msr(), value);
    }
    assert!(p.calls.is_empty());
}

#[test]
fn a_page_other_than_the_registered_one_is_refused() {
    let ram = ram();
    ram.put(0xb_0000 + at::USAGE as u64, &1u32.to_le_bytes());
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    for msr in [
        0xb_0000,
        GHCB + PAGE,
        GHCB ^ (1 << 63),
        0xffff_ffff_ffff_f000,
    ] {
        g.write_msr(msr);
        assert!(failed(&mut g, &ram, &mut p));
    }
    assert!(p.calls.is_empty());
    assert_eq!(ram.u64_at(0xb_0000 + at::HV_CONTROL as u64), 0);
}

#[test]
fn a_registered_page_outside_ram_fails_without_a_call() {
    // RAM ends inside the page.
    let ram = Ram::new(GHCB as usize + 0x800);
    let mut p = peers();
    let mut g = Ghcb::new(GHCB);
    assert!(failed(&mut g, &ram, &mut p));
    assert!(p.calls.is_empty());
}

#[test]
fn hypercalls_take_the_page_as_input_and_return_the_result_at_0xff0() {
    let ram = ram();
    ram.put(
        GHCB + at::USAGE as u64,
        &usage::HYPERV_HYPERCALL.to_le_bytes(),
    );
    ram.put(
        GHCB + at::HV_CONTROL as u64,
        &0x0001_0000_0000_0046u64.to_le_bytes(),
    );
    ram.put(GHCB + at::HV_OUTPUT_GPA as u64, &0x7000u64.to_le_bytes());
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    p.hypercall = Some(0x0001_0000_0000_0000);
    assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
    assert_eq!(
        p.calls,
        [Call::Hypercall(0x0001_0000_0000_0046, GHCB, 0x7000)]
    );
    assert_eq!(
        ram.u64_at(GHCB + at::HV_CONTROL as u64),
        0x0001_0000_0000_0000
    );
    assert_eq!(ram.u64_at(GHCB + at::HV_OUTPUT_GPA as u64), 0x7000);

    p.hypercall = None;
    assert!(failed(&mut g, &ram, &mut p));
}

#[test]
fn unknown_usages_are_ignored() {
    let ram = ram();
    for u in [2u32, 0xffff_ffff, 0x100] {
        ram.put(GHCB + at::USAGE as u64, &u.to_le_bytes());
        ram.put(GHCB + at::SW_EXIT_CODE as u64, &EXIT_MSR.to_le_bytes());
        let before = page(&ram);
        let mut g = Ghcb::new(GHCB);
        let mut p = peers();
        assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
        assert!(p.calls.is_empty());
        assert_eq!(page(&ram), before);
    }
}

#[test]
fn msr_reads_split_the_value_into_rax_and_rdx() {
    let ram = ram();
    msr_page(&ram, 0x4000_0080, 0, 0x55, 0x66, &[at::RCX]);
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    p.synic = MsrOutcome::Done(0xaaaa_bbbb_cccc_dddd);
    // The instance the caller names, whatever the VM.
    assert_eq!(g.vmgexit(&ram, &mut p, Instance::PARAVISOR), Outcome::Done);
    assert_eq!(
        p.calls,
        [Call::Synic(Instance::PARAVISOR, 0x4000_0080, None)]
    );
    assert_eq!(ram.u64_at(GHCB + at::RAX as u64), 0xcccc_dddd);
    assert_eq!(ram.u64_at(GHCB + at::RDX as u64), 0xaaaa_bbbb);
    assert_eq!(ram.u64_at(GHCB + at::SW_EXIT_INFO_1 as u64), 0);
}

#[test]
fn msr_writes_need_rax_and_rdx_valid_and_use_their_low_halves() {
    let ram = ram();
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    msr_page(
        &ram,
        0xffff_ffff_4000_0083,
        1,
        0xffff_ffff_0000_0001,
        0x2,
        &[at::RCX, at::RAX, at::RDX],
    );
    assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
    assert_eq!(
        p.calls,
        [Call::Synic(
            Instance::HYPERVISOR,
            0x4000_0083,
            Some(0x2_0000_0001)
        )]
    );
    assert_eq!(ram.u64_at(GHCB + at::SW_EXIT_INFO_1 as u64), 0);
    // The guest's RAX is not overwritten by a write.
    assert_eq!(ram.u64_at(GHCB + at::RAX as u64), 0xffff_ffff_0000_0001);

    for valid in [
        &[at::RCX, at::RAX][..],
        &[at::RCX, at::RDX][..],
        &[at::RAX, at::RDX][..],
        &[][..],
    ] {
        msr_page(&ram, 0x4000_0083, 1, 1, 0, valid);
        p.calls.clear();
        assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
        assert!(p.calls.is_empty(), "{valid:?}");
        assert_eq!(
            ram.u64_at(GHCB + at::SW_EXIT_INFO_1 as u64),
            EXIT_INFO_ERROR
        );
    }
}

#[test]
fn other_exit_codes_and_refusals_answer_an_error_in_the_page() {
    let ram = ram();
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    for code in [0x72u64, 0x7b, 0x400, 0x8000_0001, u64::MAX] {
        msr_page(&ram, 0x4000_0080, 0, 0, 0, &[at::RCX]);
        ram.put(GHCB + at::SW_EXIT_CODE as u64, &code.to_le_bytes());
        assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
        assert_eq!(
            ram.u64_at(GHCB + at::SW_EXIT_INFO_1 as u64),
            EXIT_INFO_ERROR
        );
    }
    assert!(p.calls.is_empty());
    for refusal in [MsrOutcome::Gp, MsrOutcome::NotMine] {
        p.synic = refusal;
        msr_page(&ram, 0x4000_0080, 0, 0x55, 0x66, &[at::RCX]);
        assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
        assert_eq!(
            ram.u64_at(GHCB + at::SW_EXIT_INFO_1 as u64),
            EXIT_INFO_ERROR
        );
        assert_eq!(ram.u64_at(GHCB + at::RAX as u64), 0x55);
    }
    p.synic = MsrOutcome::Failed;
    msr_page(&ram, 0x4000_0080, 0, 0, 0, &[at::RCX]);
    assert!(failed(&mut g, &ram, &mut p));
}

#[test]
fn exit_info_1_other_than_one_is_a_read() {
    let ram = ram();
    let mut g = Ghcb::new(GHCB);
    let mut p = peers();
    p.synic = MsrOutcome::Done(3);
    msr_page(&ram, 0x4000_0080, 3, 0, 0, &[at::RCX]);
    assert_eq!(g.vmgexit(&ram, &mut p, Instance::HYPERVISOR), Outcome::Done);
    assert_eq!(
        p.calls,
        [Call::Synic(Instance::HYPERVISOR, 0x4000_0080, None)]
    );
    assert_eq!(ram.u64_at(GHCB + at::RAX as u64), 3);
}
