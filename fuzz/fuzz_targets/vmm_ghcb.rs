//! vmm GHCB: any GHCB page, GHCB MSR value, RAM size and peer answers through
//! `Ghcb::vmgexit` must never panic; the VMM writes only inside the registered
//! page; an MSR that names another page is refused; SEV_INFO is always answered.
//!
//! Input: a 24-byte header (RAM size, peer answers, instance, how the MSR is set,
//! repeats, MSR value, peer value), then the page's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synic_pd::Instance;
use vmm::ghcb::{self, Ghcb, Outcome, PAGE, PAGE_GPA};
use vmm::peers::MsrOutcome;
use vmm::testing::{Call, FakePeers, Ram};

fuzz_target!(|data: &[u8]| {
    let Some((head, page)) = data.split_first_chunk::<24>() else {
        return;
    };
    let msr_value = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let value = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    // Mostly RAM that holds the page, sometimes RAM that ends inside or before it.
    let ram_size = match head[0] % 4 {
        0 => PAGE_GPA as usize - usize::from(head[1]) * 64,
        1 => PAGE_GPA as usize + usize::from(head[1]) * 16,
        _ => (PAGE_GPA + PAGE) as usize,
    };
    let mut bytes = vec![0u8; ram_size];
    let at = PAGE_GPA as usize;
    if let Some(dst) = bytes.get_mut(at..) {
        let n = dst.len().min(page.len());
        dst[..n].copy_from_slice(&page[..n]);
    }
    let ram = Ram::from_bytes(bytes).writable_only(PAGE_GPA..PAGE_GPA + PAGE);
    let mut peers = FakePeers {
        synic: match head[2] % 4 {
            0 => MsrOutcome::Done(value),
            1 => MsrOutcome::Gp,
            2 => MsrOutcome::NotMine,
            _ => MsrOutcome::Failed,
        },
        hypercall: (head[3] & 1 != 0).then_some(value.rotate_left(13)),
        ..FakePeers::default()
    };
    let instance = if head[4] & 1 != 0 {
        Instance::HYPERVISOR
    } else {
        Instance::PARAVISOR
    };
    let mut g = Ghcb::new(PAGE_GPA);
    let msr = match head[5] % 4 {
        0 => PAGE_GPA,
        1 => PAGE_GPA | (msr_value & ghcb::info::MASK),
        2 => msr_value & !ghcb::info::MASK,
        _ => msr_value,
    };
    g.write_msr(msr);
    for _ in 0..=head[6] % 3 {
        let before = g.read_msr();
        let request = before & ghcb::info::MASK;
        let outcome = g.vmgexit(&ram, &mut peers, instance);
        for call in peers.calls.drain(..) {
            assert!(
                matches!(call, Call::Synic(..) | Call::Hypercall(..)),
                "the GHCB reaches past synic-pd and hvcall-pd: {call:?}"
            );
        }
        match request {
            ghcb::info::SEV_INFO_REQ => {
                assert_eq!(outcome, Outcome::Done);
                assert_eq!(g.read_msr() & ghcb::info::MASK, ghcb::info::SEV_INFO_RESP);
            }
            ghcb::info::TERM_REQ => assert!(matches!(outcome, Outcome::Terminate { .. })),
            0 if before != PAGE_GPA => assert!(matches!(outcome, Outcome::Failed(_))),
            _ => {}
        }
        if !matches!(outcome, Outcome::Done) {
            break;
        }
    }
});
