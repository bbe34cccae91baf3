//! The echo VSP PD under a hostile guest and a hostile vmbus-server: the input is a
//! script of calls with arbitrary labels and registers, GPADL window contents,
//! well-formed opens (so the ring code is reached quickly), packets, scribbles over
//! the ring pages and guest signals. The PD must never panic, whatever arrives.
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use std::sync::OnceLock;

use bytes::word;
use ipc::testing::{leaked_region, FakeInit, RoutingKernel};
use ipc::{Channel, ChannelSet, Handler, MessageInfo, MessageRegisters, Perms, PpCall, PpReply};
use libfuzzer_sys::fuzz_target;
use vmbus_device::names as config;
use vmbus_ring::{GpadlRingMem, OutgoingKind, OutgoingPacket, OutgoingRing, RingMem, PAGE_SIZE};
use vmbus_server::protocol::gpa;
use vmbus_server::protocol::{GpadlId, Relid, Version};
use vmbus_server::vsp::{self, MapGpadl, VspOpen};
use vmbus_server::Confidentiality;

const VMBUS: Channel = Channel::new(0);
const HVCALL: Channel = Channel::new(1);
const SYNIC: Channel = Channel::new(2);
const RAM_PAGES: usize = 32;

/// hvcall-pd and synic-pd that say yes to everything.
fn peers(call: PpCall<'_>) -> PpReply {
    if call.ch == SYNIC {
        call.mrs.set(0, 0);
        call.mrs.set(1, 1);
        return Ok(MessageInfo::new(0, 2));
    }
    Ok(MessageInfo::new(0, 0))
}

/// Guest RAM, its shared alias and the GPADL window: leaked once (the PD wants
/// `'static` regions, as a runtime gives them), zeroed for every input.
fn memory() -> (
    ipc::Region<'static>,
    ipc::Region<'static>,
    ipc::Region<'static>,
) {
    static MEMORY: OnceLock<(
        ipc::Region<'static>,
        ipc::Region<'static>,
        ipc::Region<'static>,
    )> = OnceLock::new();
    let m = *MEMORY.get_or_init(|| {
        (
            leaked_region(RAM_PAGES * PAGE_SIZE),
            leaked_region(8 * PAGE_SIZE),
            leaked_region(PAGE_SIZE),
        )
    });
    for r in [m.0, m.1, m.2] {
        r.fill(0, r.len(), 0).expect("writable");
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let (ram, shared, window) = memory();
    let init = FakeInit::new("echo_vsp")
        .region(config::GUEST_RAM, ram)
        .region(config::GUEST_SHARED, shared)
        .region(config::GPADL_WINDOW, window.restrict(Perms::R))
        .variable(config::VMBUS_CHANNEL, 0)
        .variable(config::HVCALL_CHANNEL, 1)
        .variable(config::SYNIC_CHANNEL, 2)
        .variable(config::GUEST_RAM_GPA, 0)
        .variable(
            config::GUEST_SHARED_GPA,
            echo_vsp::config::build::GUEST_SHARED_GPA,
        );
    let Ok(mut pd) = echo_vsp::init(&init) else {
        return;
    };
    let mut k = RoutingKernel::new(peers);
    let mut tx: Option<OutgoingRing<GpadlRingMem<'static, Vec<u64>>>> = None;
    let mut ops = data.chunks(24);
    let mut n = 0u64;
    while let Some(op) = ops.next() {
        let (&kind, arg) = op.split_first().unwrap_or((&0, &[]));
        match kind % 7 {
            // Any call, any registers.
            0 => {
                let mut mrs = MessageRegisters::new();
                for i in 0..4 {
                    mrs.set(i, word(arg, i * 8));
                }
                let label = 0x5600 | u64::from(arg.first().copied().unwrap_or(0) & 0xf);
                let count = usize::from(arg.get(1).copied().unwrap_or(0) % 32);
                let _ = pd.protected(
                    &mut k,
                    PpCall::new(VMBUS, MessageInfo::new(label, count), &mut mrs),
                );
            }
            // GPADL window contents and a MAP_GPADL naming them.
            1 => {
                let words: Vec<u64> = (0..3).map(|i| word(arg, 1 + i * 8)).collect();
                let _ = vsp::write_window(&window, words.into_iter());
                let map = MapGpadl {
                    relid: Relid(1),
                    gpadl: GpadlId(u32::from(arg.first().copied().unwrap_or(0))),
                    range_count: 1,
                    words: 3,
                    confidentiality: Confidentiality::NONE,
                };
                let mut mrs = MessageRegisters::new();
                let msg = map.encode(&mut mrs);
                let _ = pd.protected(&mut k, PpCall::new(VMBUS, msg, &mut mrs));
            }
            // A well-formed ring GPADL and OPEN on 4 + 4 private pages.
            2 => {
                let first = u64::from(arg.first().copied().unwrap_or(0) % 24);
                let pfns: Vec<u64> = (first..first + 8).collect();
                let words = core::iter::once(gpa::range_header(8 * PAGE_SIZE as u32, 0))
                    .chain(pfns.iter().copied());
                let Ok(count) = vsp::write_window(&window, words) else {
                    continue;
                };
                let gpadl = GpadlId(0x100 + n as u32);
                n += 1;
                let map = MapGpadl {
                    relid: Relid(1),
                    gpadl,
                    range_count: 1,
                    words: count,
                    confidentiality: Confidentiality::NONE,
                };
                let mut mrs = MessageRegisters::new();
                let msg = map.encode(&mut mrs);
                let _ = pd.protected(&mut k, PpCall::new(VMBUS, msg, &mut mrs));
                let open = VspOpen {
                    relid: Relid(1),
                    subchannel_index: 0,
                    open_id: 1,
                    ring_gpadl: gpadl,
                    downstream_page_offset: u32::from(arg.get(1).copied().unwrap_or(4) % 9),
                    target_vp: 0,
                    target_sint: 2,
                    paravisor_synic: true,
                    confidentiality: Confidentiality {
                        ring: arg.get(2).is_some_and(|b| b & 1 != 0),
                        external: false,
                    },
                    signal_connection_id: 0x2001,
                    event_flag: 1,
                    version: Version::V6_0,
                    user_data: [0; 120],
                };
                let msg = open.encode(&mut mrs);
                let _ = pd.protected(&mut k, PpCall::new(VMBUS, msg, &mut mrs));
                tx = GpadlRingMem::new(ram, pfns[..4].to_vec())
                    .ok()
                    .and_then(|m| {
                        if arg.get(3).is_some_and(|b| b & 1 != 0) {
                            m.control().initialize();
                        }
                        OutgoingRing::new(m).ok()
                    });
            }
            // The guest sends a packet of arbitrary bytes.
            3 => {
                if let Some(ring) = tx.as_mut() {
                    let packet = OutgoingPacket {
                        transaction_id: word(arg, 0),
                        completion_requested: false,
                        kind: OutgoingKind::InBand,
                    };
                    let _ = ring.write_packet(&packet, &[arg]);
                    let _ = ring.commit();
                }
            }
            // A scribble over guest RAM (rings included).
            4 => {
                let at = (word(arg, 0) as usize % (RAM_PAGES * PAGE_SIZE)) & !7;
                let _ = ram.write(at, &word(arg, 8));
            }
            // The guest signals.
            5 => {
                let _ = pd.notified(&mut k, ChannelSet::from_iter([HVCALL]));
            }
            // CLOSE / UNMAP of whatever is open.
            _ => {
                let mut mrs = MessageRegisters::new();
                mrs.set(0, 1);
                mrs.set(1, word(arg, 0) & 0x1ff);
                let label = if arg.first().is_some_and(|b| b & 1 != 0) {
                    vsp::label::CLOSE
                } else {
                    vsp::label::UNMAP_GPADL
                };
                let _ = pd.protected(
                    &mut k,
                    PpCall::new(VMBUS, MessageInfo::new(label, 2), &mut mrs),
                );
            }
        }
    }
});
