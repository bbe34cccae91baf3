//! Unit tests of the hypercall gateway core against in-process guest memory and a
//! recording [`Effects`].

use ::core::sync::atomic::AtomicU64;
use std::vec::Vec;

use hvdef::cpuid::{self as leaves, IsolationType};
use hvdef::hypercall::*;
use hvdef::message::{HvMessage, HvMessageType};
use hvdef::msr::*;
use hvdef::{
    Control, HvStatus, HypercallCode, HypercallResult, Vtl, HV_PARTITION_ID_SELF, HV_VP_INDEX_SELF,
};
use ipc::{Perms, Region};
use synic_api::{Instance, PostOutcome, SintTarget};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::gateway::{HypercallRequest, Outcome, PeerError};
use crate::msr::{hypercall_page_code, MsrError};
use crate::*;

const RAM_PAGES: usize = 16;
const SHARED_GPA: u64 = 1 << 20;
const SHARED_PAGES: usize = 4;
const IN: u64 = 0x3000; // a private input page
const OUT: u64 = 0x4000; // a private output page
const SHARED_IN: u64 = SHARED_GPA + 0x1000;

type Core = HvcallCore<2, 8>;

struct Guest {
    ram: Vec<AtomicU64>,
    shared: Vec<AtomicU64>,
}

impl Guest {
    fn new() -> Self {
        Self {
            ram: (0..RAM_PAGES * 512).map(|_| AtomicU64::new(0)).collect(),
            shared: (0..SHARED_PAGES * 512).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn mem(&self, boundary: Option<u64>) -> GuestMemory<'_> {
        let mut m = GuestMemory::new(boundary);
        m.add(0, Region::from_atomics(&self.ram, Perms::RW))
            .unwrap();
        m.add(SHARED_GPA, Region::from_atomics(&self.shared, Perms::RW))
            .unwrap();
        m
    }

    fn write(&self, gpa: u64, bytes: &[u8]) {
        self.mem(None)
            .range(gpa, bytes.len())
            .unwrap()
            .write_bytes(0, bytes)
            .unwrap();
    }

    fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = std::vec![0u8; len];
        self.mem(None)
            .range(gpa, len)
            .unwrap()
            .read_bytes(0, &mut v)
            .unwrap();
        v
    }
}

#[derive(Debug, PartialEq)]
enum Call {
    SynicPost(SintTarget, HvMessage),
    SynicSignal(SintTarget, u32),
    ServicePost(u8, ServiceMessage),
    ServiceSignal(u8),
    Host(HostCall),
}

struct Fx {
    calls: Vec<Call>,
    synic_post: Result<PostOutcome, HvStatus>,
    service_post: Result<(), HvStatus>,
    host: HypercallResult,
}

impl Default for Fx {
    fn default() -> Self {
        Self {
            calls: Vec::new(),
            synic_post: Ok(PostOutcome::Delivered),
            service_post: Ok(()),
            host: HypercallResult::SUCCESS,
        }
    }
}

impl Effects for Fx {
    fn synic_post(
        &mut self,
        target: SintTarget,
        message: &HvMessage,
    ) -> Result<PostOutcome, HvStatus> {
        self.calls.push(Call::SynicPost(target, *message));
        self.synic_post
    }
    fn synic_signal(&mut self, target: SintTarget, flag: u32) -> Result<bool, HvStatus> {
        self.calls.push(Call::SynicSignal(target, flag));
        Ok(true)
    }
    fn service_post(&mut self, channel: u8, message: &ServiceMessage) -> Result<(), HvStatus> {
        self.calls.push(Call::ServicePost(channel, *message));
        self.service_post
    }
    fn service_signal(&mut self, channel: u8) -> Result<(), HvStatus> {
        self.calls.push(Call::ServiceSignal(channel));
        Ok(())
    }
    fn host_forward(&mut self, call: &HostCall) -> HypercallResult {
        self.calls.push(Call::Host(*call));
        self.host
    }
}

fn config() -> Config {
    Config {
        vp_count: 2,
        isolation: IsolationType::SNP,
        shared_gpa_boundary: Some(SHARED_GPA),
        confidential_vmbus: true,
        max_guest_vtl: Vtl::VTL1,
    }
}

/// [`config`] for a guest without isolation: nothing private, no boundary.
fn unisolated() -> Config {
    Config {
        isolation: IsolationType::NONE,
        shared_gpa_boundary: None,
        ..config()
    }
}

struct Rig {
    guest: Guest,
    core: Core,
    fx: Fx,
}

const MSG_PORT: SintTarget = SintTarget {
    vp: 1,
    instance: Instance::PARAVISOR,
    sint: 2,
};

impl Rig {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(cfg: Config) -> Self {
        let mut core = Core::new(cfg).unwrap();
        let routes = [
            (
                4,
                Destination::SynicMessage {
                    target: MSG_PORT,
                    port_id: 0x44,
                },
            ),
            (
                5,
                Destination::SynicEvent {
                    target: MSG_PORT,
                    flag_base: 100,
                    flag_count: 8,
                },
            ),
            (6, Destination::Service { channel: 9 }),
            (7, Destination::Host),
        ];
        for (conn, destination) in routes {
            core.register_route(Route {
                connection_id: conn,
                vtl: Vtl::VTL0,
                destination,
                owner: 1,
            })
            .unwrap();
        }
        Self {
            guest: Guest::new(),
            core,
            fx: Fx::default(),
        }
    }

    fn call_as(
        &mut self,
        vp: u32,
        vtl: Vtl,
        control: Control,
        rdx: u64,
        r8: u64,
    ) -> Result<Outcome, PeerError> {
        let mem = self.guest.mem(self.core.config().shared_gpa_boundary);
        self.core.hypercall(
            &mem,
            &mut self.fx,
            HypercallRequest {
                vp,
                vtl,
                control,
                rdx,
                r8,
            },
        )
    }

    /// A call on VP 0 from `vtl` that must complete (not switch VTLs).
    fn call_in(&mut self, vtl: Vtl, control: Control, rdx: u64, r8: u64) -> HypercallResult {
        match self.call_as(0, vtl, control, rdx, r8).unwrap() {
            Outcome::Complete(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn call(&mut self, control: Control, rdx: u64, r8: u64) -> HypercallResult {
        self.call_in(Vtl::VTL0, control, rdx, r8)
    }

    fn status(&mut self, control: Control, rdx: u64, r8: u64) -> HvStatus {
        self.call(control, rdx, r8).status()
    }

    /// HvCallSignalEvent as Linux makes it: a fast call with the input in RDX.
    fn signal_event(&mut self, input: u64) -> HvStatus {
        self.status(fast(HypercallCode::SIGNAL_EVENT), input, 0)
    }

    /// A slow call without output, its input `bytes` placed at `gpa` first.
    fn slow_at(&mut self, code: HypercallCode, gpa: u64, bytes: &[u8]) -> HvStatus {
        self.guest.write(gpa, bytes);
        self.status(slow(code), gpa, 0)
    }

    fn post(&mut self, gpa: u64, input: &PostMessageInput) -> HvStatus {
        self.slow_at(HypercallCode::POST_MESSAGE, gpa, input.as_bytes())
    }

    fn wrmsr(&mut self, vtl: Vtl, msr: u32, value: u64) -> Result<(), MsrError> {
        let mem = self.guest.mem(self.core.config().shared_gpa_boundary);
        self.core.write_msr(&mem, 0, vtl, msr, value)
    }
}

fn slow(code: HypercallCode) -> Control {
    Control::new(code)
}

fn fast(code: HypercallCode) -> Control {
    Control::new(code).with_fast(true)
}

fn post_input(conn: u32, payload: &[u8]) -> PostMessageInput {
    PostMessageInput::new(conn, 1, payload).unwrap()
}

fn signal(conn: u32, flag: u16) -> u64 {
    SignalEventInput::new(conn, flag).to_u64()
}

// ---- the control word ------------------------------------------------------------

#[test]
fn reserved_control_bits_and_the_nested_bit_are_invalid_input() {
    let mut r = Rig::new();
    for bit in (27..31).chain(44..48).chain(60..64) {
        let c = Control(fast(HypercallCode::SIGNAL_EVENT).0 | 1 << bit);
        assert_eq!(
            r.status(c, signal(5, 0), 0),
            HvStatus::INVALID_HYPERCALL_INPUT,
            "bit {bit}"
        );
    }
    let c = fast(HypercallCode::SIGNAL_EVENT).with_nested(true);
    assert_eq!(
        r.status(c, signal(5, 0), 0),
        HvStatus::INVALID_HYPERCALL_INPUT
    );
    assert!(r.fx.calls.is_empty());
}

#[test]
fn unknown_and_unimplemented_codes_are_invalid_hypercall_code() {
    let mut r = Rig::new();
    for code in [
        0x0000, 0x0001, 0x0002, 0x000C, 0x0099, 0x00C1, 0x8001, 0xFFFF,
    ] {
        assert_eq!(
            r.status(slow(HypercallCode(code)), IN, OUT),
            HvStatus::INVALID_HYPERCALL_CODE,
            "{code:#x}"
        );
    }
}

#[test]
fn rep_fields_must_match_the_call_class() {
    let mut r = Rig::new();
    let sig = fast(HypercallCode::SIGNAL_EVENT);
    for c in [
        sig.with_rep_count(1),
        sig.with_rep_start(1),
        sig.with_variable_header_qwords(1),
    ] {
        assert_eq!(
            r.status(c, signal(5, 0), 0),
            HvStatus::INVALID_HYPERCALL_INPUT,
            "{c:?}"
        );
    }
    let get = slow(HypercallCode::GET_VP_REGISTERS);
    for c in [
        get,
        get.with_rep_count(2).with_rep_start(2),
        get.with_rep_count(2).with_rep_start(7),
        get.with_rep_count(1).with_variable_header_qwords(1),
    ] {
        assert_eq!(
            r.status(c, IN, OUT),
            HvStatus::INVALID_HYPERCALL_INPUT,
            "{c:?}"
        );
    }
    let vtl = slow(HypercallCode::VTL_CALL).with_rep_count(1);
    assert_eq!(r.status(vtl, 0, 0), HvStatus::INVALID_HYPERCALL_INPUT);
}

// ---- slow-call buffers -----------------------------------------------------------

#[test]
fn input_buffers_must_be_aligned_within_one_page_and_in_guest_memory() {
    let mut r = Rig::new();
    let input = post_input(4, b"x");
    for (gpa, why) in [
        (IN + 4, "not 8-byte aligned"),
        (IN + 1, "not 8-byte aligned"),
        (IN + 0xF08, "256 bytes from here span into the next page"),
        (RAM_PAGES as u64 * 4096, "past the end of RAM"),
        (
            SHARED_GPA + SHARED_PAGES as u64 * 4096,
            "past the shared window",
        ),
        (!7, "nowhere"),
    ] {
        assert_eq!(
            r.status(slow(HypercallCode::POST_MESSAGE), gpa, 0),
            HvStatus::INVALID_ALIGNMENT,
            "{why}"
        );
    }
    // The last 256 bytes of a page are fine.
    assert_eq!(r.post(IN + 0xF00, &input), HvStatus::SUCCESS);
    // A call without output ignores R8 entirely.
    r.guest.write(IN, input.as_bytes());
    assert_eq!(
        r.status(slow(HypercallCode::POST_MESSAGE), IN, 0xDEAD_BEEF_0001),
        HvStatus::SUCCESS
    );
}

#[test]
fn output_buffers_are_checked_like_inputs() {
    let mut r = Rig::new();
    r.guest.write(
        IN,
        &regs_input(HV_VP_INDEX_SELF, 0, &[HvRegisterName::VP_INDEX; 2]),
    );
    let c = slow(HypercallCode::GET_VP_REGISTERS).with_rep_count(2);
    assert_eq!(r.status(c, IN, OUT + 8 + 4), HvStatus::INVALID_ALIGNMENT);
    assert_eq!(
        r.status(c, IN, OUT + 0xFF8),
        HvStatus::INVALID_ALIGNMENT,
        "32 bytes span pages"
    );
    assert_eq!(r.status(c, IN, 1 << 40), HvStatus::INVALID_ALIGNMENT);
    assert_eq!(r.status(c, IN, OUT + 0xFE0), HvStatus::SUCCESS);
    // A rep count whose input alone exceeds a page can never be valid.
    let big = slow(HypercallCode::GET_VP_REGISTERS).with_rep_count(0xFFF);
    assert_eq!(r.status(big, IN, OUT), HvStatus::INVALID_ALIGNMENT);
}

#[test]
fn fast_calls_take_only_sixteen_bytes_of_input_and_no_output() {
    let mut r = Rig::new();
    assert_eq!(
        r.status(fast(HypercallCode::POST_MESSAGE), 4, 0),
        HvStatus::INVALID_HYPERCALL_INPUT
    );
    let get = fast(HypercallCode::GET_VP_REGISTERS).with_rep_count(1);
    assert_eq!(
        r.status(get, HV_PARTITION_ID_SELF, 0),
        HvStatus::INVALID_HYPERCALL_INPUT
    );
    let ep = fast(HypercallCode::ENABLE_PARTITION_VTL);
    assert_eq!(
        r.status(ep, HV_PARTITION_ID_SELF, 1),
        HvStatus::SUCCESS,
        "16-byte input fits RDX:R8"
    );
    assert!(r.fx.calls.is_empty());
}

// ---- HvCallPostMessage -----------------------------------------------------------

#[test]
fn post_message_validates_its_input() {
    let mut r = Rig::new();
    type Case = (&'static str, fn(&mut PostMessageInput));
    let cases: [Case; 5] = [
        ("payload past 240 bytes", |p| p.payload_size = 241),
        ("payload size u32::MAX", |p| p.payload_size = u32::MAX),
        ("message type 0", |p| p.message_type = 0),
        ("hypervisor message types", |p| p.message_type = 0x8000_0001),
        ("reserved field", |p| p.reserved = 1),
    ];
    for (what, mutate) in cases {
        let mut p = post_input(4, b"x");
        mutate(&mut p);
        assert_eq!(r.post(IN, &p), HvStatus::INVALID_PARAMETER, "{what}");
    }
    assert!(r.fx.calls.is_empty());
    let p = post_input(4, &[0xAB; 240]);
    assert_eq!(
        r.post(IN, &p),
        HvStatus::SUCCESS,
        "exactly 240 bytes is fine"
    );
}

#[test]
fn post_message_to_unknown_or_other_vtl_connections_is_invalid_connection_id() {
    let mut r = Rig::new();
    r.core
        .register_route(Route {
            connection_id: 99,
            vtl: Vtl::VTL1,
            destination: Destination::Host,
            owner: 1,
        })
        .unwrap();
    for (conn, what) in [(3, "no route"), (99, "VTL1's connection")] {
        assert_eq!(
            r.post(IN, &post_input(conn, b"x")),
            HvStatus::INVALID_CONNECTION_ID,
            "{what}"
        );
    }
    assert!(r.fx.calls.is_empty());
}

#[test]
fn post_message_reaches_a_synic_message_port() {
    let mut r = Rig::new();
    assert_eq!(r.post(IN, &post_input(4, b"hello")), HvStatus::SUCCESS);
    let [Call::SynicPost(target, msg)] = &r.fx.calls[..] else {
        panic!("{:?}", r.fx.calls)
    };
    assert_eq!(*target, MSG_PORT);
    assert_eq!(msg.header.message_type, HvMessageType(1));
    assert_eq!(msg.header.payload_size, 5);
    assert_eq!(msg.header.sender, 0x44, "the port id");
    assert_eq!(msg.header.flags, 0);
    assert_eq!(msg.payload(), b"hello");
}

#[test]
fn a_full_sint_queue_is_insufficient_buffers() {
    let mut r = Rig::new();
    r.fx.synic_post = Err(HvStatus::INSUFFICIENT_BUFFERS);
    assert_eq!(
        r.post(IN, &post_input(4, b"x")),
        HvStatus::INSUFFICIENT_BUFFERS
    );
    r.fx.synic_post = Ok(PostOutcome::Queued);
    assert_eq!(
        r.post(IN, &post_input(4, b"x")),
        HvStatus::SUCCESS,
        "queued is posted"
    );
}

#[test]
fn post_message_reaches_a_service_queue() {
    let mut r = Rig::new();
    assert_eq!(r.post(IN, &post_input(6, b"svc")), HvStatus::SUCCESS);
    let [Call::ServicePost(9, m)] = &r.fx.calls[..] else {
        panic!("{:?}", r.fx.calls)
    };
    assert_eq!(
        (m.connection_id, m.message_type, m.payload_size, m.vtl),
        (6, 1, 3, 0)
    );
    assert_eq!(m.payload(), b"svc");
    r.fx.service_post = Err(HvStatus::INSUFFICIENT_BUFFERS);
    assert_eq!(
        r.post(IN, &post_input(6, b"svc")),
        HvStatus::INSUFFICIENT_BUFFERS
    );
}

#[test]
fn posting_to_an_event_port_is_invalid_port_id() {
    let mut r = Rig::new();
    assert_eq!(r.post(IN, &post_input(5, b"x")), HvStatus::INVALID_PORT_ID);
    assert!(r.fx.calls.is_empty());
}

// ---- HvCallSignalEvent -----------------------------------------------------------

#[test]
fn signal_event_sets_base_plus_flag_of_the_event_port() {
    let mut r = Rig::new();
    assert_eq!(r.signal_event(signal(5, 3)), HvStatus::SUCCESS);
    assert_eq!(r.fx.calls, [Call::SynicSignal(MSG_PORT, 103)]);
    assert_eq!(
        r.signal_event(signal(5, 8)),
        HvStatus::INVALID_PARAMETER,
        "beyond the port's flags"
    );
    assert_eq!(
        r.signal_event(signal(5, 0) | 1 << 48),
        HvStatus::INVALID_PARAMETER,
        "RsvdZ"
    );
    // The same call through an input page.
    let page_input = signal(5, 7).to_le_bytes();
    assert_eq!(
        r.slow_at(HypercallCode::SIGNAL_EVENT, IN, &page_input),
        HvStatus::SUCCESS
    );
    assert_eq!(r.fx.calls.last(), Some(&Call::SynicSignal(MSG_PORT, 107)));
}

#[test]
fn signal_event_notifies_a_service_and_refuses_message_ports_and_unknown_ids() {
    let mut r = Rig::new();
    assert_eq!(r.signal_event(signal(6, 0)), HvStatus::SUCCESS);
    assert_eq!(r.fx.calls, [Call::ServiceSignal(9)]);
    assert_eq!(r.signal_event(signal(4, 0)), HvStatus::INVALID_PORT_ID);
    assert_eq!(
        r.signal_event(signal(1234, 0)),
        HvStatus::INVALID_CONNECTION_ID
    );
    assert_eq!(r.fx.calls.len(), 1);
}

// ---- forwarding to the host (seed 000) ---------------------------------------------

#[test]
fn a_host_forward_carries_a_shared_buffer_and_returns_the_hosts_status() {
    let mut r = Rig::new();
    r.fx.host = HypercallResult::new(HvStatus::INSUFFICIENT_MEMORY, 0);
    assert_eq!(
        r.post(SHARED_IN, &post_input(7, b"to host")),
        HvStatus::INSUFFICIENT_MEMORY
    );
    assert_eq!(
        r.fx.calls,
        [Call::Host(HostCall {
            vp: 0,
            control: slow(HypercallCode::POST_MESSAGE),
            input: SHARED_IN,
            output: 0
        })]
    );
}

#[test]
fn a_forward_whose_buffer_is_private_is_refused_and_never_reaches_the_host() {
    let mut r = Rig::new();
    assert_eq!(
        r.post(IN, &post_input(7, b"secret")),
        HvStatus::ACCESS_DENIED
    );
    let page_input = signal(7, 0).to_le_bytes();
    assert_eq!(
        r.slow_at(HypercallCode::SIGNAL_EVENT, IN, &page_input),
        HvStatus::ACCESS_DENIED
    );
    // The last private bytes are still private.
    let last = RAM_PAGES as u64 * 4096 - 8;
    assert_eq!(
        r.slow_at(HypercallCode::SIGNAL_EVENT, last, &page_input),
        HvStatus::ACCESS_DENIED
    );
    assert!(r.fx.calls.is_empty(), "{:?}", r.fx.calls);
}

#[test]
fn a_fast_forward_carries_only_registers() {
    let mut r = Rig::new();
    assert_eq!(r.signal_event(signal(7, 2)), HvStatus::SUCCESS);
    assert_eq!(
        r.fx.calls,
        [Call::Host(HostCall {
            vp: 0,
            control: fast(HypercallCode::SIGNAL_EVENT),
            input: signal(7, 2),
            output: 0
        })]
    );
}

#[test]
fn without_isolation_everything_is_host_visible() {
    let mut r = Rig::with(unisolated());
    assert_eq!(r.post(IN, &post_input(7, b"plain")), HvStatus::SUCCESS);
    assert_eq!(r.fx.calls.len(), 1);
}

// ---- host visibility ---------------------------------------------------------------

fn visibility(
    r: &mut Rig,
    partition: u64,
    access: u32,
    pages: &[u64],
    start: u16,
) -> HypercallResult {
    let mut input = ModifyHostVisibilityHeader {
        partition_id: partition,
        host_visibility: access,
        reserved: 0,
    }
    .as_bytes()
    .to_vec();
    for p in pages {
        input.extend_from_slice(&p.to_le_bytes());
    }
    r.guest.write(IN, &input);
    let c = slow(HypercallCode::MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY)
        .with_rep_count(pages.len() as u16)
        .with_rep_start(start);
    r.call(c, IN, 0)
}

#[test]
fn host_visibility_covers_private_ram_pages_of_an_isolated_guest_only() {
    let mut r = Rig::new();
    let ok = visibility(&mut r, HV_PARTITION_ID_SELF, 3, &[0, 1, 2], 0);
    assert_eq!((ok.status(), ok.reps_completed()), (HvStatus::SUCCESS, 3));
    let back = visibility(&mut r, HV_PARTITION_ID_SELF, 0, &[1], 0);
    assert_eq!(back.status(), HvStatus::SUCCESS);
    // A page of the shared alias, or past guest RAM, stops the list there.
    let alias = SHARED_GPA >> 12;
    let bad = visibility(&mut r, HV_PARTITION_ID_SELF, 3, &[0, alias, 1], 0);
    assert_eq!(
        (bad.status(), bad.reps_completed()),
        (HvStatus::INVALID_PARAMETER, 1)
    );
    let far = visibility(&mut r, HV_PARTITION_ID_SELF, 3, &[u64::MAX], 0);
    assert_eq!(
        (far.status(), far.reps_completed()),
        (HvStatus::INVALID_PARAMETER, 0)
    );
    // A restart continues from the rep index the guest gives.
    let resumed = visibility(&mut r, HV_PARTITION_ID_SELF, 3, &[alias, 1, 2], 1);
    assert_eq!(
        (resumed.status(), resumed.reps_completed()),
        (HvStatus::SUCCESS, 3)
    );
    assert_eq!(
        visibility(&mut r, 7, 3, &[0], 0).status(),
        HvStatus::ACCESS_DENIED,
        "another partition"
    );
    assert_eq!(
        visibility(&mut r, HV_PARTITION_ID_SELF, 4, &[0], 0).status(),
        HvStatus::INVALID_PARAMETER,
        "unknown access bits"
    );
}

#[test]
fn a_guest_without_isolation_has_nothing_to_share() {
    let mut r = Rig::with(unisolated());
    assert_eq!(
        visibility(&mut r, HV_PARTITION_ID_SELF, 3, &[0], 0).status(),
        HvStatus::ACCESS_DENIED
    );
}

// ---- VSM ---------------------------------------------------------------------------

fn enable_partition(r: &mut Rig, vtl: Vtl, target: u8) -> HvStatus {
    let inp = EnablePartitionVtlInput {
        partition_id: HV_PARTITION_ID_SELF,
        target_vtl: target,
        flags: 0,
        reserved_z0: 0,
        reserved_z1: 0,
    };
    r.guest.write(IN, inp.as_bytes());
    r.call_in(vtl, slow(HypercallCode::ENABLE_PARTITION_VTL), IN, 0)
        .status()
}

fn enable_vp(r: &mut Rig, caller: Vtl, vp: u32, target: u8) -> HvStatus {
    let mut inp = EnableVpVtlInput::new_zeroed();
    inp.partition_id = HV_PARTITION_ID_SELF;
    inp.vp_index = vp;
    inp.target_vtl = target;
    inp.context.rip = 0xFFFF_8000_1234_0000;
    r.guest.write(IN, inp.as_bytes());
    r.call_in(caller, slow(HypercallCode::ENABLE_VP_VTL), IN, 0)
        .status()
}

#[test]
fn enable_partition_vtl_checks_its_input_and_the_callers_vtl() {
    let mut r = Rig::new();
    assert_eq!(
        enable_partition(&mut r, Vtl::VTL0, 2),
        HvStatus::ACCESS_DENIED,
        "VTL2 is the paravisor's"
    );
    assert_eq!(
        enable_partition(&mut r, Vtl::VTL0, 3),
        HvStatus::INVALID_PARAMETER
    );
    let mut inp = EnablePartitionVtlInput {
        partition_id: 5,
        target_vtl: 1,
        flags: 0,
        reserved_z0: 0,
        reserved_z1: 0,
    };
    assert_eq!(
        r.slow_at(HypercallCode::ENABLE_PARTITION_VTL, IN, inp.as_bytes()),
        HvStatus::INVALID_PARTITION_ID
    );
    inp.partition_id = HV_PARTITION_ID_SELF;
    for (flags, z0, z1) in [(1, 0, 0), (0x80, 0, 0), (0, 1, 0), (0, 0, 1)] {
        inp.flags = flags;
        inp.reserved_z0 = z0;
        inp.reserved_z1 = z1;
        assert_eq!(
            r.slow_at(HypercallCode::ENABLE_PARTITION_VTL, IN, inp.as_bytes()),
            HvStatus::INVALID_PARAMETER
        );
    }
    assert_eq!(enable_partition(&mut r, Vtl::VTL0, 1), HvStatus::SUCCESS);
    assert_eq!(r.core.partition_enabled_vtls(), 0b11);
    assert_eq!(
        enable_partition(&mut r, Vtl::VTL0, 1),
        HvStatus::VTL_ALREADY_ENABLED
    );
    assert_eq!(
        enable_partition(&mut r, Vtl::VTL0, 0),
        HvStatus::VTL_ALREADY_ENABLED
    );
}

#[test]
fn only_the_highest_vtl_below_a_target_may_enable_it() {
    let mut r = Rig::with(Config {
        max_guest_vtl: Vtl::VTL2,
        ..config()
    });
    assert_eq!(enable_partition(&mut r, Vtl::VTL0, 1), HvStatus::SUCCESS);
    assert_eq!(
        enable_partition(&mut r, Vtl::VTL0, 2),
        HvStatus::ACCESS_DENIED,
        "VTL1 sits in between"
    );
    assert_eq!(enable_vp(&mut r, Vtl::VTL0, 0, 1), HvStatus::SUCCESS);
    assert_eq!(enable_partition(&mut r, Vtl::VTL1, 2), HvStatus::SUCCESS);
}

#[test]
fn enable_vp_vtl_requires_the_partition_vtl_and_stores_the_start_context() {
    let mut r = Rig::new();
    assert_eq!(
        enable_vp(&mut r, Vtl::VTL0, 0, 1),
        HvStatus::INVALID_VTL_STATE
    );
    enable_partition(&mut r, Vtl::VTL0, 1);
    assert_eq!(
        enable_vp(&mut r, Vtl::VTL0, 2, 1),
        HvStatus::INVALID_VP_INDEX
    );
    assert_eq!(
        enable_vp(&mut r, Vtl::VTL0, 0, 7),
        HvStatus::INVALID_PARAMETER
    );
    assert_eq!(enable_vp(&mut r, Vtl::VTL0, 0, 2), HvStatus::ACCESS_DENIED);
    assert_eq!(
        enable_vp(&mut r, Vtl::VTL0, HV_VP_INDEX_SELF, 1),
        HvStatus::SUCCESS
    );
    assert_eq!(r.core.vp_enabled_vtls(0), Some(0b11));
    assert_eq!(r.core.vp_enabled_vtls(1), Some(0b01), "only VP 0");
    assert_eq!(
        r.core.initial_context(0, Vtl::VTL1).map(|c| c.rip),
        Some(0xFFFF_8000_1234_0000)
    );
    assert_eq!(
        enable_vp(&mut r, Vtl::VTL0, 0, 1),
        HvStatus::VTL_ALREADY_ENABLED
    );
    // Now that VTL1 runs somewhere, only VTL1 (or higher) brings it up elsewhere.
    assert_eq!(enable_vp(&mut r, Vtl::VTL0, 1, 1), HvStatus::ACCESS_DENIED);
    assert_eq!(enable_vp(&mut r, Vtl::VTL1, 1, 1), HvStatus::SUCCESS);
    let mut inp = EnableVpVtlInput::new_zeroed();
    inp.partition_id = HV_PARTITION_ID_SELF;
    inp.target_vtl = 1;
    inp.reserved = [0, 1, 0];
    assert_eq!(
        r.slow_at(HypercallCode::ENABLE_VP_VTL, IN, inp.as_bytes()),
        HvStatus::INVALID_PARAMETER
    );
    inp.partition_id = 0;
    assert_eq!(
        r.slow_at(HypercallCode::ENABLE_VP_VTL, IN, inp.as_bytes()),
        HvStatus::INVALID_PARTITION_ID
    );
}

#[test]
fn vtl_call_and_return_switch_only_between_enabled_vtls() {
    let mut r = Rig::new();
    let call = slow(HypercallCode::VTL_CALL);
    let ret = slow(HypercallCode::VTL_RETURN);
    let denied = Ok(Outcome::Complete(HypercallResult::from(
        HvStatus::ACCESS_DENIED,
    )));
    for (control, why) in [(call, "call before VTL1"), (ret, "return before VTL1")] {
        assert_eq!(r.call_as(0, Vtl::VTL0, control, 0, 0), denied, "{why}");
    }
    enable_partition(&mut r, Vtl::VTL0, 1);
    enable_vp(&mut r, Vtl::VTL0, 0, 1);
    let (up, down) = (
        Ok(Outcome::SwitchVtl(Vtl::VTL1)),
        Ok(Outcome::SwitchVtl(Vtl::VTL0)),
    );
    // In order: each case runs on the state the ones before it left.
    let cases = [
        (0, Vtl::VTL0, call, up, "VTL0 calls VTL1"),
        (0, Vtl::VTL1, ret, down, "VTL1 returns"),
        (0, Vtl::VTL1, call, denied, "nothing above VTL1"),
        (1, Vtl::VTL0, call, denied, "VP 1 has no VTL1"),
        // The fast bit does not matter for VTL switches.
        (0, Vtl::VTL0, call.with_fast(true), up, "a fast VTL call"),
    ];
    for (vp, vtl, control, want, why) in cases {
        assert_eq!(r.call_as(vp, vtl, control, 0, 0), want, "{why}");
    }
}

#[test]
fn impossible_callers_are_peer_errors() {
    let mut r = Rig::new();
    assert_eq!(
        r.call_as(2, Vtl::VTL0, fast(HypercallCode::SIGNAL_EVENT), 0, 0),
        Err(PeerError::InvalidVp)
    );
    assert_eq!(
        r.call_as(0, Vtl::VTL1, fast(HypercallCode::SIGNAL_EVENT), 0, 0),
        Err(PeerError::VtlNotEnabled)
    );
    assert_eq!(
        r.call_as(0, Vtl::VTL2, slow(HypercallCode::VTL_RETURN), 0, 0),
        Err(PeerError::VtlNotEnabled)
    );
}

// ---- rep calls: Get/SetVpRegisters -------------------------------------------------

/// A Get/SetVpRegisters input: the header naming `vp` and `input_vtl`, then `names`
/// (the rep list of a get; a set appends its own elements to an empty list).
fn regs_input(vp: u32, input_vtl: u8, names: &[HvRegisterName]) -> Vec<u8> {
    let hdr = GetSetVpRegistersHeader {
        partition_id: HV_PARTITION_ID_SELF,
        vp_index: vp,
        input_vtl,
        reserved: [0; 3],
    };
    let mut v = hdr.as_bytes().to_vec();
    for n in names {
        v.extend_from_slice(n.as_bytes());
    }
    v
}

fn output_values(r: &Rig, n: usize) -> Vec<u64> {
    r.guest
        .read(OUT, n * 16)
        .chunks(16)
        .map(|c| HvRegisterValue::read_from_bytes(c).unwrap().low)
        .collect()
}

#[test]
fn get_vp_registers_completes_every_rep() {
    let mut r = Rig::new();
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID, 0x8100_0000_0006_0000)
        .unwrap();
    let names = [
        HvRegisterName::VP_INDEX,
        HvRegisterName::GUEST_OS_ID,
        HvRegisterName::VSM_VP_STATUS,
        HvRegisterName::VSM_CODE_PAGE_OFFSETS,
    ];
    r.guest.write(IN, &regs_input(1, 0, &names));
    let res = r.call(
        slow(HypercallCode::GET_VP_REGISTERS).with_rep_count(4),
        IN,
        OUT,
    );
    assert_eq!((res.status(), res.reps_completed()), (HvStatus::SUCCESS, 4));
    assert_eq!(
        output_values(&r, 4),
        [
            1,
            0x8100_0000_0006_0000,
            vsm_vp_status(0, 1),
            vsm_code_page_offsets(4, 0x10)
        ]
    );
}

#[test]
fn a_rep_start_skips_completed_elements_and_leaves_their_output_alone() {
    let mut r = Rig::new();
    r.guest.write(OUT, &[0xEE; 48]);
    r.guest
        .write(IN, &regs_input(1, 0, &[HvRegisterName::VP_INDEX; 3]));
    let c = slow(HypercallCode::GET_VP_REGISTERS)
        .with_rep_count(3)
        .with_rep_start(1);
    let res = r.call(c, IN, OUT);
    assert_eq!((res.status(), res.reps_completed()), (HvStatus::SUCCESS, 3));
    assert_eq!(
        r.guest.read(OUT, 16),
        [0xEE; 16],
        "element 0 was done earlier"
    );
    assert_eq!(output_values(&r, 3)[1..], [1, 1]);
}

#[test]
fn a_failing_element_reports_the_reps_before_it_and_writes_only_those() {
    let mut r = Rig::new();
    r.guest.write(OUT, &[0xEE; 48]);
    let names = [
        HvRegisterName::VP_INDEX,
        HvRegisterName(0x1234_5678),
        HvRegisterName::VP_INDEX,
    ];
    r.guest.write(IN, &regs_input(0, 0, &names));
    let res = r.call(
        slow(HypercallCode::GET_VP_REGISTERS).with_rep_count(3),
        IN,
        OUT,
    );
    assert_eq!(
        (res.status(), res.reps_completed()),
        (HvStatus::INVALID_PARAMETER, 1)
    );
    assert_eq!(output_values(&r, 1), [0]);
    assert_eq!(r.guest.read(OUT + 16, 32), [0xEE; 32]);
    // The guest retries from the failed element after fixing it.
    let names = [HvRegisterName::VP_INDEX; 3];
    r.guest.write(IN, &regs_input(0, 0, &names));
    let res = r.call(
        slow(HypercallCode::GET_VP_REGISTERS)
            .with_rep_count(3)
            .with_rep_start(1),
        IN,
        OUT,
    );
    assert_eq!((res.status(), res.reps_completed()), (HvStatus::SUCCESS, 3));
}

#[test]
fn register_calls_may_not_reach_up_a_vtl() {
    let mut r = Rig::new();
    enable_partition(&mut r, Vtl::VTL0, 1);
    enable_vp(&mut r, Vtl::VTL0, 0, 1);
    let target_vtl1 = hvdef::vtl::HvInputVtl::target(Vtl::VTL1).0;
    r.guest
        .write(IN, &regs_input(0, target_vtl1, &[HvRegisterName::VP_INDEX]));
    let c = slow(HypercallCode::GET_VP_REGISTERS).with_rep_count(1);
    assert_eq!(r.status(c, IN, OUT), HvStatus::ACCESS_DENIED);
    assert_eq!(
        r.call_in(Vtl::VTL1, c, IN, OUT).status(),
        HvStatus::SUCCESS,
        "VTL1 reads its own"
    );
    r.guest
        .write(IN, &regs_input(0, 0xE0, &[HvRegisterName::VP_INDEX]));
    assert_eq!(
        r.status(c, IN, OUT),
        HvStatus::INVALID_PARAMETER,
        "reserved input-VTL bits"
    );
    r.guest
        .write(IN, &regs_input(1, target_vtl1, &[HvRegisterName::VP_INDEX]));
    assert_eq!(
        r.call_in(Vtl::VTL1, c, IN, OUT).status(),
        HvStatus::INVALID_VTL_STATE,
        "VP 1 has no VTL1"
    );
    r.guest
        .write(IN, &regs_input(5, 0, &[HvRegisterName::VP_INDEX]));
    let res = r.call(c.with_rep_count(2).with_rep_start(1), IN, OUT);
    assert_eq!(
        (res.status(), res.reps_completed()),
        (HvStatus::INVALID_VP_INDEX, 1),
        "header errors report rep_start"
    );
}

#[test]
fn set_vp_registers_writes_until_the_first_bad_element() {
    let mut r = Rig::new();
    let mut input = regs_input(HV_VP_INDEX_SELF, 0, &[]);
    for (name, value) in [
        (HvRegisterName::GUEST_OS_ID, 0x1234u64),
        (HvRegisterName::VP_INDEX, 7),
        (HvRegisterName::GUEST_OS_ID, 0x5678),
    ] {
        input.extend_from_slice(
            HvRegisterAssoc {
                name,
                reserved: [0; 3],
                value: value.into(),
            }
            .as_bytes(),
        );
    }
    r.guest.write(IN, &input);
    let res = r.call(
        slow(HypercallCode::SET_VP_REGISTERS).with_rep_count(3),
        IN,
        0,
    );
    assert_eq!(
        (res.status(), res.reps_completed()),
        (HvStatus::INVALID_PARAMETER, 1)
    );
    assert_eq!(
        r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID),
        Ok(0x1234)
    );
    let res = r.call(
        slow(HypercallCode::SET_VP_REGISTERS)
            .with_rep_count(3)
            .with_rep_start(2),
        IN,
        0,
    );
    assert_eq!((res.status(), res.reps_completed()), (HvStatus::SUCCESS, 3));
    assert_eq!(
        r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID),
        Ok(0x5678)
    );
}

// ---- MSRs --------------------------------------------------------------------------

#[test]
fn the_hypercall_page_needs_a_guest_os_id_and_gets_the_calling_sequences() {
    let mut r = Rig::new();
    let msr = HypercallMsr::new(true, false, 5).0;
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_HYPERCALL, msr).unwrap();
    assert_eq!(
        r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_HYPERCALL),
        Ok(0),
        "ignored without a guest OS id"
    );
    assert_eq!(r.guest.read(0x5000, 4), [0; 4]);
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID, 0x8100_0000_0006_0000)
        .unwrap();
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_HYPERCALL, msr | 0xFF0)
        .unwrap();
    assert_eq!(
        r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_HYPERCALL),
        Ok(msr),
        "reserved bits read as zero"
    );
    assert_eq!(
        r.guest.read(0x5000, 4),
        [0x0F, 0x01, 0xD9, 0xC3],
        "VMMCALL; RET on SNP"
    );
    assert_eq!(
        r.guest.read(0x5004, 12),
        [0x48, 0x89, 0xC8, 0xB9, 0x11, 0, 0, 0, 0x0F, 0x01, 0xD9, 0xC3]
    );
    assert_eq!(
        r.guest.read(0x5010, 12),
        [0x48, 0x89, 0xC8, 0xB9, 0x12, 0, 0, 0, 0x0F, 0x01, 0xD9, 0xC3]
    );
    // Clearing the guest OS id turns the page off.
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID, 0).unwrap();
    assert_eq!(
        r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_HYPERCALL),
        Ok(msr & !1)
    );
}

#[test]
fn vmcall_outside_snp_and_locked_or_out_of_range_pages() {
    assert_eq!(
        hypercall_page_code([0x0F, 0x01, 0xC1])[..4],
        [0x0F, 0x01, 0xC1, 0xC3]
    );
    let mut r = Rig::with(Config {
        isolation: IsolationType::TDX,
        shared_gpa_boundary: Some(1 << 47),
        ..config()
    });
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID, 1).unwrap();
    assert_eq!(
        r.wrmsr(
            Vtl::VTL0,
            HV_X64_MSR_HYPERCALL,
            HypercallMsr::new(true, false, 0x10_0000).0
        ),
        Err(MsrError::Gp)
    );
    r.wrmsr(
        Vtl::VTL0,
        HV_X64_MSR_HYPERCALL,
        HypercallMsr::new(true, true, 6).0,
    )
    .unwrap();
    assert_eq!(r.guest.read(0x6000, 4), [0x0F, 0x01, 0xC1, 0xC3]);
    r.wrmsr(Vtl::VTL0, HV_X64_MSR_HYPERCALL, 0).unwrap();
    assert_eq!(
        r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_HYPERCALL),
        Ok(HypercallMsr::new(true, true, 6).0),
        "locked"
    );
}

#[test]
fn vp_index_is_read_only_and_other_msrs_are_not_ours() {
    let mut r = Rig::new();
    assert_eq!(r.core.read_msr(1, Vtl::VTL0, HV_X64_MSR_VP_INDEX), Ok(1));
    assert_eq!(
        r.wrmsr(Vtl::VTL0, HV_X64_MSR_VP_INDEX, 0),
        Err(MsrError::Gp)
    );
    for msr in [
        HV_X64_MSR_SCONTROL,
        HV_X64_MSR_SINT0,
        0x4000_0003,
        0xC000_0080,
    ] {
        assert_eq!(r.core.read_msr(0, Vtl::VTL0, msr), Err(MsrError::NotMine));
        assert_eq!(r.wrmsr(Vtl::VTL0, msr, 0), Err(MsrError::NotMine));
    }
    // Each VTL has its own guest OS id.
    r.wrmsr(Vtl::VTL1, HV_X64_MSR_GUEST_OS_ID, 9).unwrap();
    assert_eq!(r.core.read_msr(0, Vtl::VTL0, HV_X64_MSR_GUEST_OS_ID), Ok(0));
}

// ---- CPUID -------------------------------------------------------------------------

#[test]
fn cpuid_passes_linux_hyperv_detection() {
    let r = Rig::new();
    let [max, b, c, d] = r.core.cpuid(leaves::LEAF_VENDOR_AND_MAX, 0).unwrap();
    assert!((leaves::LEAF_MIN_MAX..=0x4000_FFFF).contains(&max));
    let mut sig = Vec::new();
    for w in [b, c, d] {
        sig.extend_from_slice(&w.to_le_bytes());
    }
    assert_eq!(sig, b"Microsoft Hv");
    assert_eq!(
        r.core.cpuid(leaves::LEAF_INTERFACE, 0).unwrap()[0],
        u32::from_le_bytes(*b"Hv#1")
    );
    let [eax, ebx, _, edx] = r.core.cpuid(leaves::LEAF_FEATURES, 0).unwrap();
    assert_ne!(eax & (1 << 5), 0, "HV_MSR_HYPERCALL_AVAILABLE");
    assert_ne!(eax & (1 << 6), 0, "HV_MSR_VP_INDEX_AVAILABLE");
    assert_ne!(eax & (1 << 2), 0, "SynIC MSRs");
    assert_eq!(ebx & (1 << 12), 0, "never CPU_MANAGEMENT");
    assert_ne!(ebx & (1 << 22), 0, "isolation");
    assert_ne!(ebx & (1 << 4), 0, "post messages");
    assert_ne!(ebx & (1 << 5), 0, "signal events");
    assert_eq!(edx & (1 << 4), 0, "no XMM fast hypercalls");
    assert_ne!(
        r.core.cpuid(leaves::LEAF_ENLIGHTENMENTS, 0).unwrap()[0] & (1 << 9),
        0,
        "deprecate auto-EOI"
    );
    assert_eq!(
        r.core.cpuid(leaves::LEAF_IMPLEMENTATION_LIMITS, 0).unwrap()[0],
        2
    );
    for leaf in 0x4000_0000..=max {
        assert!(r.core.cpuid(leaf, 0).is_some(), "{leaf:#x}");
    }
}

#[test]
fn cpuid_isolation_and_confidential_vmbus_leaves() {
    let r = Rig::new();
    let [eax, ebx, _, _] = r.core.cpuid(leaves::LEAF_ISOLATION_CONFIG, 0).unwrap();
    assert_eq!(eax & 1, 1, "paravisor present");
    assert_eq!(ebx & 0xF, 2, "SNP");
    assert_ne!(ebx & (1 << 5), 0, "shared GPA boundary active");
    assert_eq!((ebx >> 6) & 0x3F, 20, "vTOM = 1 << 20");
    assert_eq!(
        r.core.cpuid(leaves::LEAF_VS_PROPERTIES, 0).unwrap()[0] & (1 << 3),
        1 << 3
    );
    assert_eq!(
        r.core.cpuid(leaves::LEAF_VS_INTERFACE, 0).unwrap()[0],
        u32::from_le_bytes(*b"VS#1")
    );

    let plain = Rig::with(Config {
        confidential_vmbus: false,
        max_guest_vtl: Vtl::VTL0,
        ..unisolated()
    });
    assert_eq!(
        plain.core.cpuid(leaves::LEAF_ISOLATION_CONFIG, 0),
        Some([0; 4])
    );
    assert_eq!(
        plain.core.cpuid(leaves::LEAF_VS_PROPERTIES, 0).unwrap()[0] & (1 << 3),
        0
    );
    let ebx = plain.core.cpuid(leaves::LEAF_FEATURES, 0).unwrap()[1];
    assert_eq!(ebx & (1 << 22), 0, "no isolation bit");
    assert_eq!(ebx & (1 << 16), 0, "no VSM");
    for leaf in [0, 1, 0x3FFF_FFFF, 0x4000_0100, 0x8000_0000] {
        assert_eq!(
            plain.core.cpuid(leaf, 0),
            None,
            "{leaf:#x} is the vCPU PD's"
        );
    }
}

// ---- malformed input ---------------------------------------------------------------

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn control() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            (
                prop_oneof![
                    Just(0x5Cu64),
                    Just(0x5D),
                    Just(0x0D),
                    Just(0x0F),
                    Just(0x11),
                    Just(0x12),
                    Just(0x50),
                    Just(0x51)
                ],
                any::<bool>(),
                0u64..4,
                0u64..20,
                0u64..20
            )
                .prop_map(|(code, fast, varhdr, count, start)| code
                    | (fast as u64) << 16
                    | varhdr << 17
                    | count << 32
                    | start << 48),
        ]
    }

    fn gpa() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0u64..0x10000,
            (SHARED_GPA - 64)..(SHARED_GPA + 0x4000)
        ]
    }

    proptest! {
        /// Any register and memory contents: no panic, a status from the TLFS set,
        /// and never more reps reported than were asked for.
        #[test]
        fn any_hypercall_is_answered(rcx in control(), rdx in gpa(), r8 in gpa(), vtl in 0u8..2,
                                     page in proptest::collection::vec(any::<u8>(), 4096)) {
            let mut r = Rig::new();
            r.guest.write(rdx & 0xF000, &page);
            r.guest.write(IN, &page);
            let out = r.call_as(0, Vtl::new(vtl).unwrap(), Control(rcx), rdx, r8);
            match out {
                Ok(Outcome::Complete(res)) => {
                    let allowed = [
                        HvStatus::SUCCESS, HvStatus::INVALID_HYPERCALL_CODE, HvStatus::INVALID_HYPERCALL_INPUT,
                        HvStatus::INVALID_ALIGNMENT, HvStatus::INVALID_PARAMETER, HvStatus::ACCESS_DENIED,
                        HvStatus::INVALID_PARTITION_ID, HvStatus::INVALID_VP_INDEX, HvStatus::INVALID_PORT_ID,
                        HvStatus::INVALID_CONNECTION_ID, HvStatus::INVALID_VTL_STATE, HvStatus::VTL_ALREADY_ENABLED,
                    ];
                    prop_assert!(allowed.contains(&res.status()), "{:?}", res);
                    prop_assert!(res.reps_completed() <= Control(rcx).rep_count());
                    if res.status().is_success() {
                        prop_assert_eq!(res.reps_completed(), Control(rcx).rep_count());
                    }
                }
                Ok(Outcome::SwitchVtl(_)) => {}
                Err(e) => prop_assert_eq!(e, PeerError::VtlNotEnabled),
            }
            // Private buffers never reach the host.
            for call in &r.fx.calls {
                if let Call::Host(h) = call {
                    prop_assert!(h.control.fast() || h.input >= SHARED_GPA, "{:?}", h);
                }
            }
        }
    }
}
