//! The PD adapter driven the way the runtime drives it: vmbus-server's VSP calls
//! (protected), the guest's signals (notifications from hvcall-pd), and the
//! calls the PD makes to hvcall-pd and synic-pd recorded by a fake kernel.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::vmbus::Storvsc;
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, IpcError, Kernel, MessageInfo, MessageRegisters,
    Perms, PpCall, PpReply, Region,
};
use isolation::GuestMemory;
use storvsp::harness::MemBackend;
use storvsp::state_machine::NoSubChannels;
use storvsp::{StorvspDevice, StorvspPd};
use storvsp_protocol::{DataDirection, NtStatus, ProtocolVersion};
use vmbus_device::{Channels, VspPd};
use vmbus_protocol::gpa::range_header;
use vmbus_protocol::ids::interface;
use vmbus_protocol::{GpadlId, Relid, Version};
use vmbus_ring::GpadlRingMem;
use vsp_api::Confidentiality;
use vsp_api::{self as vsp, MapGpadl, VspOffer, VspOpen};

const VMBUS: Channel = Channel::new(1);
const HVCALL: Channel = Channel::new(2);
const SYNIC: Channel = Channel::new(3);
const RAM_PAGES: usize = 128;
/// Guest RAM starts at 1 MiB in guest physical space.
const RAM_GPA: u64 = 0x10_0000;
const RAM_PFN: u64 = RAM_GPA / 4096;
const RELID: Relid = Relid(5);
const RING_GPADL: GpadlId = GpadlId(0xE1E10);
const SIGNAL_CONNECTION: u32 = 0x2005;

#[derive(Default)]
struct FakeKernel {
    calls: Vec<(Channel, u64, Vec<u64>)>,
}

impl Kernel for FakeKernel {
    fn notify(&mut self, _ch: Channel) -> Result<(), IpcError> {
        Ok(())
    }

    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        let PpCall { ch, msg, mrs } = call;
        self.calls.push((
            ch,
            msg.label(),
            (0..msg.count()).map(|i| mrs.get(i)).collect(),
        ));
        if ch == SYNIC {
            mrs.set(0, 0); // HV_STATUS_SUCCESS
            mrs.set(1, 1); // newly signalled
            return Ok(MessageInfo::new(0, 2));
        }
        // hvcall-pd: registrations succeed.
        Ok(MessageInfo::new(0, 0))
    }

    fn irq_ack(&mut self, _ch: Channel) -> Result<(), IpcError> {
        Ok(())
    }

    fn debug_puts(&mut self, _text: &str) {}
}

/// `words` zeroed words of memory that live for the rest of the test run.
fn leaked(words: usize) -> Region<'static> {
    let words: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
    Region::from_atomics(words.leak(), Perms::RW)
}

/// vmbus-server's call `msg` to the PD; the status it answered.
fn call(
    pd: &mut StorvspPd<'_>,
    k: &mut FakeKernel,
    mrs: &mut MessageRegisters,
    msg: MessageInfo,
) -> u64 {
    let r = pd
        .protected(k, PpCall::new(VMBUS, msg, mrs))
        .expect("a VSP call is answered");
    status(r, mrs)
}

/// MAP_GPADL of `map`'s GPADL with `list` in the window.
fn map_list(
    pd: &mut StorvspPd<'_>,
    k: &mut FakeKernel,
    mrs: &mut MessageRegisters,
    window: &Region<'_>,
    map: MapGpadl,
    list: &[u64],
) -> u64 {
    let words = vsp::write_window(window, list.iter().copied()).expect("list fits the window");
    let msg = MapGpadl { words, ..map }.encode(mrs);
    call(pd, k, mrs, msg)
}

fn status(reply: MessageInfo, mrs: &MessageRegisters) -> u64 {
    assert_eq!(reply.label(), vsp::REPLY_OK);
    mrs.get(0)
}

/// Fresh control pages for the two-page rings at pages 0 and 2 of `ram`, as the
/// guest leaves them before an open.
fn init_rings(ram: Region<'_>) {
    for first in [0u64, 2] {
        let m = GpadlRingMem::new(ram, vec![first, first + 1]).expect("ring pages in RAM");
        vmbus_ring::RingMem::control(&m).initialize();
    }
}

fn open_request(downstream: u32) -> VspOpen {
    VspOpen {
        relid: RELID,
        subchannel_index: 0,
        open_id: 1,
        ring_gpadl: RING_GPADL,
        downstream_page_offset: downstream,
        target_vp: 0,
        target_sint: 2,
        paravisor_synic: true,
        confidentiality: Confidentiality::default(),
        signal_connection_id: SIGNAL_CONNECTION,
        event_flag: RELID.0,
        version: Version::V6_0,
        user_data: [0; 120],
    }
}

/// What a test drives: the PD (a disk of `blocks` blocks, RAM at [`RAM_GPA`], a
/// GPADL window of `window_words` words it may access as `window_perms`), that
/// RAM and window as the test writes them, and the kernel and registers
/// vmbus-server calls the PD with.
type Rig = (
    StorvspPd<'static>,
    Region<'static>,
    Region<'static>,
    FakeKernel,
    MessageRegisters,
);

fn rig(window_words: usize, window_perms: Perms, blocks: u64) -> Rig {
    let (ram, window) = (leaked(RAM_PAGES * 512), leaked(window_words));
    let channels = Channels {
        vmbus: VMBUS,
        hvcall: HVCALL,
        synic: SYNIC,
    };
    let mem = GuestMemory::private(RAM_GPA, ram).expect("page-aligned RAM");
    let device = StorvspDevice::new(Box::new(MemBackend::new(blocks)), NoSubChannels);
    let pd = VspPd::new(mem, window.restrict(window_perms), channels, device);
    (
        pd,
        ram,
        window,
        FakeKernel::default(),
        MessageRegisters::new(),
    )
}

#[test]
fn offer_map_open_serve_and_close() {
    let (mut pd, ram, window, mut k, mut mrs) = rig(512, Perms::R, 256);

    // GET_OFFER: one storage offer in slot 0, nothing after it.
    for (slot, storage) in [(0, true), (1, false)] {
        mrs.set(0, slot);
        let msg = MessageInfo::new(vsp::label::GET_OFFER, 1);
        let reply = pd
            .protected(&mut k, PpCall::new(VMBUS, msg, &mut mrs))
            .unwrap();
        let offer = VspOffer::decode(reply, &mrs).unwrap();
        assert_eq!(
            offer.map(|o| o.interface_id == interface::STORAGE),
            storage.then_some(true)
        );
    }

    // The guest initializes its ring control pages (RAM pages 0 and 2), then the
    // server maps the ring GPADL (4 pages) and opens with the rings split at 2.
    let ring_pages: Vec<u64> = (0..4).collect();
    init_rings(ram);
    let list =
        std::iter::once(range_header(4 * 4096, 0)).chain(ring_pages.iter().map(|p| p + RAM_PFN));
    let count = vsp::write_window(&window, list).unwrap();
    let map = MapGpadl {
        relid: RELID,
        gpadl: RING_GPADL,
        range_count: 1,
        words: count,
        confidentiality: Confidentiality::default(),
    };
    let msg = map.encode(&mut mrs);
    let reply = pd
        .protected(&mut k, PpCall::new(VMBUS, msg, &mut mrs))
        .unwrap();
    assert_eq!(status(reply, &mrs), 0);

    let msg = open_request(2).encode(&mut mrs);
    let reply = pd
        .protected(&mut k, PpCall::new(VMBUS, msg, &mut mrs))
        .unwrap();
    assert_eq!(status(reply, &mrs), 0);
    let reg = k.calls.last().unwrap();
    assert_eq!(
        reg.0, HVCALL,
        "the signal connection is claimed at hvcall-pd"
    );
    assert_eq!(reg.2[0], u64::from(SIGNAL_CONNECTION));

    // The guest talks storvsc over the rings; each signal is a notification.
    let mut guest = Storvsc::over(ram, vec![0, 1], vec![2, 3]);
    let run = |guest: &mut Storvsc<'_>,
               pd: &mut StorvspPd<'_>,
               k: &mut FakeKernel,
               payload: &[u8],
               buf: Option<&common::vmbus::GuestBuf>| {
        let id = guest.send(payload, buf);
        let mut set = ChannelSet::EMPTY;
        set.insert(HVCALL);
        pd.notified(k, set).unwrap();
        let (got, reply) = guest.recv().expect("completion");
        assert_eq!(got, id);
        reply
    };
    let control = |op: storvsp_protocol::Operation,
                   body: &[u8],
                   guest: &mut Storvsc<'_>,
                   pd: &mut StorvspPd<'_>,
                   k: &mut FakeKernel| {
        let p = storvsc_client::wire::control_payload(op, body);
        run(guest, pd, k, &p, None)
    };
    use storvsp_protocol::Operation as Op;
    assert_eq!(
        control(Op::BEGIN_INITIALIZATION, &[], &mut guest, &mut pd, &mut k)
            .header
            .status,
        NtStatus::SUCCESS
    );
    let v = ProtocolVersion::WIN10.0.to_le_bytes();
    assert_eq!(
        control(Op::QUERY_PROTOCOL_VERSION, &v, &mut guest, &mut pd, &mut k)
            .header
            .status,
        NtStatus::SUCCESS
    );
    assert_eq!(
        control(Op::QUERY_PROPERTIES, &[], &mut guest, &mut pd, &mut k)
            .header
            .status,
        NtStatus::SUCCESS
    );
    assert_eq!(
        control(Op::END_INITIALIZATION, &[], &mut guest, &mut pd, &mut k)
            .header
            .status,
        NtStatus::SUCCESS
    );
    let signals = k.calls.iter().filter(|c| c.0 == SYNIC).count();
    assert!(signals >= 1, "the guest was signalled");
    let last = k.calls.iter().rev().find(|c| c.0 == SYNIC).unwrap();
    assert_eq!(last.2[3], u64::from(RELID.0), "event flag = relid");

    // A READ(10) into guest RAM named by guest physical page numbers.
    let data_gpa = RAM_GPA + 16 * 4096;
    let buf = common::vmbus::GuestBuf::at(data_gpa, 4096);
    let p = Storvsc::srb_payload(&common::vmbus::rw10(0x28, 0, 8), DataDirection::READ, 4096);
    let r = run(&mut guest, &mut pd, &mut k, &p, Some(&buf));
    assert_eq!(r.srb().scsi_status, 0);
    assert_eq!(r.srb().data_transfer_length, 4096);
    // A page below guest RAM is refused with sense data.
    let low = common::vmbus::GuestBuf::at(0x1000, 4096);
    let r = run(&mut guest, &mut pd, &mut k, &p, Some(&low));
    assert_eq!(r.sense(), (0xB, 0x4B, 0x0A));

    // CLOSE releases the signal connection.
    mrs.set(0, u64::from(RELID.0));
    pd.protected(
        &mut k,
        PpCall::new(VMBUS, MessageInfo::new(vsp::label::CLOSE, 1), &mut mrs),
    )
    .unwrap();
    assert_eq!(k.calls.last().unwrap().0, HVCALL);
    // Other channels may not call.
    assert_eq!(
        pd.protected(
            &mut k,
            PpCall::new(SYNIC, MessageInfo::new(vsp::label::CLOSE, 1), &mut mrs)
        ),
        Err(HandlerError::UnexpectedCall(SYNIC))
    );
}

#[test]
fn bad_vsp_calls_are_refused() {
    let (mut pd, ram, window, mut k, mut mrs) = rig(16, Perms::RW, 64);
    // Unknown label.
    assert!(pd
        .protected(
            &mut k,
            PpCall::new(VMBUS, MessageInfo::new(0x1234, 0), &mut mrs)
        )
        .is_err());
    // More words than the window holds.
    let map = MapGpadl {
        relid: RELID,
        gpadl: RING_GPADL,
        range_count: 1,
        words: 100,
        confidentiality: Confidentiality::default(),
    };
    let msg = map.encode(&mut mrs);
    assert_ne!(call(&mut pd, &mut k, &mut mrs, msg), 0);
    // A page list that names pages below guest RAM is only a list, but it cannot
    // be a ring.
    let list = [range_header(4 * 4096, 0), 1, 2, 3, 4];
    assert_eq!(map_list(&mut pd, &mut k, &mut mrs, &window, map, &list), 0);
    let msg = open_request(2).encode(&mut mrs);
    assert_ne!(
        call(&mut pd, &mut k, &mut mrs, msg),
        0,
        "a ring outside guest RAM"
    );
    mrs.set(0, RELID.0.into());
    mrs.set(1, RING_GPADL.0.into());
    let unmap = MessageInfo::new(vsp::label::UNMAP_GPADL, 2);
    pd.protected(&mut k, PpCall::new(VMBUS, unmap, &mut mrs))
        .unwrap();
    // Opening with a GPADL that was never mapped, or a bad split.
    let msg = open_request(2).encode(&mut mrs);
    assert_ne!(call(&mut pd, &mut k, &mut mrs, msg), 0);
    let list = [
        range_header(4 * 4096, 0),
        RAM_PFN,
        RAM_PFN + 1,
        RAM_PFN + 2,
        RAM_PFN + 3,
    ];
    assert_eq!(map_list(&mut pd, &mut k, &mut mrs, &window, map, &list), 0);
    let msg = open_request(1).encode(&mut mrs);
    let one_page = call(&mut pd, &mut k, &mut mrs, msg);
    assert_ne!(one_page, 0, "a one-page ring is not a ring");
    assert!(
        k.calls.is_empty(),
        "nothing was registered for failed opens"
    );
    // A ring whose indices lie is dropped, not trusted.
    init_rings(ram);
    let msg = open_request(2).encode(&mut mrs);
    assert_eq!(call(&mut pd, &mut k, &mut mrs, msg), 0);
    let m = GpadlRingMem::new(ram, vec![0u64, 1]).unwrap();
    vmbus_ring::RingMem::control(&m)
        .write_index()
        .store(3, Ordering::SeqCst); // misaligned
    let mut set = ChannelSet::EMPTY;
    set.insert(HVCALL);
    let before = k.calls.len();
    pd.notified(&mut k, set).unwrap();
    assert_eq!(pd.stats.broken_rings, 1);
    // The broken channel's route goes back to hvcall-pd, exactly once, and the
    // channel is gone: another doorbell serves nothing and unregisters nothing.
    let unregisters = |k: &FakeKernel| {
        k.calls
            .iter()
            .filter(|(ch, label, _)| {
                *ch == HVCALL && *label == hvcall_api::label::UNREGISTER_CONNECTION
            })
            .map(|(_, _, args)| args.clone())
            .collect::<Vec<_>>()
    };
    let after_break = unregisters(&k);
    assert_eq!(after_break.len(), 1, "calls: {:?}", &k.calls[before..]);
    assert_eq!(after_break[0].first(), Some(&u64::from(SIGNAL_CONNECTION)));
    pd.notified(&mut k, set).unwrap();
    assert_eq!(pd.stats.broken_rings, 1);
    assert_eq!(unregisters(&k).len(), 1);
    // The relid can be opened again (the channel was closed, not left half-open).
    init_rings(ram);
    let msg = open_request(2).encode(&mut mrs);
    assert_eq!(call(&mut pd, &mut k, &mut mrs, msg), 0);
    // Notifications on channels the PD does not own are errors.
    let mut other = ChannelSet::EMPTY;
    other.insert(Channel::new(9));
    assert!(pd.notified(&mut k, other).is_err());
}
