//! Flows every backend must pass on its platform model: the contract of the
//! [`Isolation`] trait that does not depend on the platform. Each backend's tests
//! run these against its model (snp-backend over the RMP and GHCB host, tdx-backend
//! over the TDX module and VMCALL host), instead of each pasting its own copy.
//!
//! A backend under test is booted with the standard [`Layout`]: all RAM accepted
//! as private, the `shared` pages made host-visible, the `ring` pages (standing
//! for Confidential VMBus rings) left private.

use core::ops::Range;

use crate::{
    Gpa, GpaClass, GuestAccess, HostCall, HostReply, Hypercall, Isolation, IsolationError,
    PageRange, RamRange,
};

/// What a platform model reveals about the host, for judging the paravisor.
pub trait HostView {
    /// Exits to the host so far (VMGEXITs, TDVMCALLs).
    fn host_exits(&self) -> u64;
    /// GFNs (private numbering) the host read or wrote.
    fn host_touched(&self) -> &[u64];
    /// Whether the host can read the page now.
    fn host_can_read(&self, gfn: u64) -> bool;
}

/// A backend together with its model.
pub trait Harness: Isolation {
    type View: HostView;
    fn view(&mut self) -> &Self::View;
}

/// Where the booted backend's pages are, in GFNs below the boundary.
#[derive(Clone, Debug)]
pub struct Layout {
    pub ring: Range<u64>,
    pub shared: Range<u64>,
}

/// The models' RAM: pages 0..64 from GPA 0.
pub const PAGES: usize = 64;
pub static RAM: [RamRange; 1] = [RamRange {
    start: 0,
    end: PAGES as u64 * 4096,
}];

/// The layout every backend's flows boot into.
pub const STANDARD: Layout = Layout {
    ring: 10..14,
    shared: 20..22,
};

/// `gfns` as a page range of private addresses.
pub fn pages(gfns: Range<u64>) -> PageRange {
    PageRange::new(gpa(gfns.start), gfns.end - gfns.start).expect("a non-empty range")
}

fn gpa(gfn: u64) -> Gpa {
    Gpa(gfn << 12)
}

/// Page `gfn` named by its shared (host-visible) alias.
fn shared_alias<B: Isolation>(b: &B, gfn: u64) -> PageRange {
    PageRange::new(Gpa(b.partition().boundary() | gfn << 12), 1).expect("one page")
}

/// Accepting accepted memory is reported, and a shared address is never
/// accepted as private memory.
pub fn accepting_twice_and_shared_addresses_are_refused<B: Isolation>(b: &mut B, gfn: u64) {
    let page = PageRange::new(gpa(gfn), 1).expect("one page");
    assert_eq!(
        b.accept_private(page),
        Err(IsolationError::AlreadyDone(gpa(gfn)))
    );
    let shared = shared_alias(b, gfn);
    assert!(matches!(
        b.accept_private(shared),
        Err(IsolationError::WrongClass { .. })
    ));
}

/// Guest access rights are a property of private memory: a page named by its
/// shared alias is refused.
pub fn guest_access_is_set_only_through_private_addresses<B: Isolation>(b: &mut B, gfn: u64) {
    let all = GuestAccess {
        execute: true,
        ..GuestAccess::RW
    };
    let shared = shared_alias(b, gfn);
    assert!(matches!(
        b.set_guest_access(shared, all),
        Err(IsolationError::WrongClass { .. })
    ));
}

/// A hypercall naming a private buffer is refused before anything reaches the
/// host; one with host-visible buffers gets the host's answer. Afterwards the host
/// has touched only pages it could read, and never a ring page.
pub fn hypercalls_reach_the_host_only_with_host_visible_buffers<B: Harness>(
    b: &mut B,
    layout: &Layout,
) {
    let boundary = b.partition().boundary();
    let shared = |i: u64| Some(Gpa(boundary | (layout.shared.start + i) << 12));
    let before = b.view().host_exits();
    let leak = HostCall::HvHypercall(Hypercall {
        control: 0x5c,
        input: shared(0),
        output: Some(gpa(layout.ring.start)),
    });
    assert!(matches!(
        b.call_host(leak),
        Err(IsolationError::WrongClass { .. })
    ));
    assert_eq!(
        b.view().host_exits(),
        before,
        "refused before anything left"
    );
    let ok = HostCall::HvHypercall(Hypercall {
        control: 1 << 32 | 0x14,
        input: shared(0),
        output: shared(1),
    });
    assert_eq!(b.call_host(ok), Ok(HostReply::Hypercall { result: 0 }));
    let v = b.view();
    assert!(!v.host_touched().is_empty());
    for &g in v.host_touched() {
        assert!(!layout.ring.contains(&g), "host touched ring page {g}");
        assert!(v.host_can_read(g), "gfn {g} touched while private");
    }
    for g in layout.ring.clone() {
        assert!(!v.host_can_read(g), "ring page {g} readable by the host");
    }
}

/// Visibility changes given in either alias reach the same RAM, and the host
/// can read exactly the pages made shared.
pub fn visibility_round_trips_in_either_alias<B: Harness>(b: &mut B, gfns: Range<u64>) {
    let boundary = b.partition().boundary();
    let n = gfns.end - gfns.start;
    let private = PageRange::new(gpa(gfns.start), n).expect("pages");
    let shared = PageRange::new(Gpa(boundary | gfns.start << 12), n).expect("pages");
    assert_eq!(b.set_visibility(private, GpaClass::Shared), Ok(()));
    assert!(gfns.clone().all(|g| b.view().host_can_read(g)));
    assert_eq!(b.set_visibility(shared, GpaClass::Private), Ok(()));
    assert!(gfns.clone().all(|g| !b.view().host_can_read(g)));
}

/// With a host set to answer a hypercall in a way its protocol does not allow,
/// the call is a [`IsolationError::HostViolation`], never a result.
pub fn a_lying_hypercall_answer_is_a_violation<B: Isolation>(b: &mut B) {
    let call = HostCall::HvHypercall(Hypercall {
        control: 0x5c,
        input: None,
        output: None,
    });
    assert_eq!(b.call_host(call), Err(IsolationError::HostViolation));
}
