//! hvcall-pd: any control word, register values, input page and caller must be
//! answered with a TLFS status; rep progress never exceeds what was asked, success
//! means every rep was done, and a slow call relayed to the host always carries a
//! host-visible buffer. The PPC decoders see the same bytes as message registers.
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use std::sync::atomic::AtomicU64;

use hvcall_pd::{
    api, Config, Destination, Effects, GuestMemory, HostCall, HvcallCore, HypercallRequest,
    Outcome, Route, ServiceMessage,
};
use hvdef::cpuid::IsolationType;
use hvdef::message::HvMessage;
use hvdef::{Control, HvStatus, HypercallResult, Vtl};
use ipc::{MessageInfo, MessageRegisters, Perms, Region};
use bytes::word;
use libfuzzer_sys::fuzz_target;
use synic_pd::{Instance, PostOutcome, SintTarget};

const SHARED: u64 = 1 << 16;

#[derive(Default)]
struct Fx {
    host: Vec<HostCall>,
}

impl Effects for Fx {
    fn synic_post(&mut self, _: SintTarget, m: &HvMessage) -> Result<PostOutcome, HvStatus> {
        assert!(m.header.payload_size <= 240);
        Ok(PostOutcome::Delivered)
    }
    fn synic_signal(&mut self, _: SintTarget, flag: u32) -> Result<bool, HvStatus> {
        assert!(flag < 2048);
        Ok(true)
    }
    fn service_post(&mut self, _: u8, m: &ServiceMessage) -> Result<(), HvStatus> {
        assert!(m.payload_size <= 240);
        Err(HvStatus::INSUFFICIENT_BUFFERS)
    }
    fn service_signal(&mut self, _: u8) -> Result<(), HvStatus> {
        Ok(())
    }
    fn host_forward(&mut self, call: &HostCall) -> HypercallResult {
        self.host.push(*call);
        HypercallResult(u64::MAX)
    }
}

fuzz_target!(|data: &[u8]| {
    // Header: control, rdx, r8, flags; then the bytes of the input page.
    let control = Control(word(data, 0));
    let flags = word(data, 24);
    // Keep GPAs mostly inside the two windows so the handlers run.
    let pick = |v: u64, sel: u64| match sel % 3 {
        0 => v & 0x3FFF,
        1 => SHARED + (v & 0x1FFF),
        _ => v,
    };
    let rdx = pick(word(data, 8), flags);
    let r8 = pick(word(data, 16), flags >> 2);
    let vtl = Vtl::new((flags >> 4) as u8 % 2).unwrap_or(Vtl::VTL0);
    let page = data.get(32..).unwrap_or(&[]);

    let ram: Vec<AtomicU64> = (0..4 * 512).map(|_| AtomicU64::new(0)).collect();
    let shared: Vec<AtomicU64> = (0..2 * 512).map(|_| AtomicU64::new(0)).collect();
    let mut mem = GuestMemory::new(Some(SHARED));
    mem.add(0, Region::from_atomics(&ram, Perms::RW)).expect("private RAM");
    mem.add(SHARED, Region::from_atomics(&shared, Perms::RW)).expect("shared alias");
    if let Some(r) = mem.range(rdx & !0xFFF, 4096) {
        let n = page.len().min(4096);
        let _ = r.write_bytes(0, &page[..n]);
    }

    let cfg = Config {
        vp_count: 2,
        isolation: IsolationType::SNP,
        shared_gpa_boundary: Some(SHARED),
        confidential_vmbus: true,
        max_guest_vtl: Vtl::VTL1,
    };
    let mut core = HvcallCore::<2, 8>::new(cfg).unwrap();
    let target = SintTarget { vp: 0, instance: Instance::PARAVISOR, sint: 2 };
    for (conn, destination) in [
        (1, Destination::Service { channel: 3 }),
        (2, Destination::SynicMessage { target, port_id: 2 }),
        (3, Destination::SynicEvent { target, flag_base: 2040, flag_count: 8 }),
        (4, Destination::Host),
    ] {
        let _ = core.register_route(Route { connection_id: conn, vtl: Vtl::VTL0, destination, owner: 0 });
    }
    let vp = (flags >> 8) as u32 % 3;
    if (flags >> 10) & 1 == 1 {
        // Some runs start with VTL1 enabled everywhere so VSM paths are reachable.
        let mut fx = Fx::default();
        let enable = hvdef::hypercall::EnablePartitionVtlInput {
            partition_id: u64::MAX, target_vtl: 1, flags: 0, reserved_z0: 0, reserved_z1: 0,
        };
        let bytes = zerocopy::IntoBytes::as_bytes(&enable);
        let _ = core.hypercall(&mem, &mut fx, HypercallRequest {
            vp: 0, vtl: Vtl::VTL0,
            control: Control::new(hvdef::HypercallCode::ENABLE_PARTITION_VTL).with_fast(true),
            rdx: word(bytes, 0), r8: word(bytes, 8),
        });
    }

    let mut fx = Fx::default();
    let req = HypercallRequest { vp, vtl, control, rdx, r8 };
    match core.hypercall(&mem, &mut fx, req) {
        Ok(Outcome::Complete(res)) => {
            assert!(res.reps_completed() <= control.rep_count());
            if res.status().is_success() {
                assert_eq!(res.reps_completed(), control.rep_count());
            }
        }
        Ok(Outcome::SwitchVtl(to)) => assert_ne!(to, vtl),
        Err(_) => {}
    }
    for call in &fx.host {
        assert!(call.control.fast() || call.input >= SHARED, "private buffer forwarded: {call:?}");
    }

    // The same bytes as message registers for every decoder.
    let mut mrs = MessageRegisters::new();
    for (i, chunk) in data.chunks(8).take(64).enumerate() {
        mrs.set(i, word(chunk, 0));
    }
    // Every hvcall-api message under every label a request or reply carries (and
    // a stray one), so each decoder gets past its label check and also sees the
    // others' labels; what decodes must re-encode to itself.
    let count = data.len() % 70;
    let stray = flags & 0x48ff;
    for label in [
        api::label::HYPERCALL,
        api::label::REGISTER_CONNECTION,
        api::label::GRANT_CONNECTION,
        api::label::FORWARD,
        0,
        1,
        2,
        stray,
    ] {
        let msg = MessageInfo::new(label, count);
        round_trip::<api::HypercallRequest>(msg, &mrs);
        round_trip::<api::CpuidRequest>(msg, &mrs);
        round_trip::<api::ReadMsrRequest>(msg, &mrs);
        round_trip::<api::WriteMsrRequest>(msg, &mrs);
        round_trip::<api::InitialContextRequest>(msg, &mrs);
        round_trip::<api::Registration>(msg, &mrs);
        round_trip::<api::Unregistration>(msg, &mrs);
        round_trip::<api::ConnectionGrant>(msg, &mrs);
        round_trip::<api::ConnectionRevoke>(msg, &mrs);
        round_trip::<api::HostCall>(msg, &mrs);
        round_trip::<api::HypercallReply>(msg, &mrs);
        round_trip::<api::CpuidReply>(msg, &mrs);
        round_trip::<api::MsrResult>(msg, &mrs);
        round_trip::<api::InitialContextReply>(msg, &mrs);
        round_trip::<api::RegisterStatus>(msg, &mrs);
        round_trip::<api::ForwardReply>(msg, &mrs);
    }
});

fn round_trip<M: ipc::wire::Message + PartialEq + core::fmt::Debug>(
    msg: MessageInfo,
    mrs: &MessageRegisters,
) {
    if let Ok(m) = M::decode(msg, mrs) {
        let mut again = MessageRegisters::new();
        let info = m.encode(&mut again);
        assert_eq!(M::decode(info, &again), Ok(m));
    }
}
