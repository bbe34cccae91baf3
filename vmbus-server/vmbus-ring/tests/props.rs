//! Property tests: random traffic against a model (nothing lost, order kept, free
//! space exact, signal decisions as Linux makes them), and random bytes (never a
//! panic).

mod common;

use std::collections::VecDeque;

use common::Backing;
use proptest::prelude::*;
use vmbus_ring::protocol::control_offsets::{
    FEATURE_BITS, INTERRUPT_MASK, PENDING_SEND_SIZE, READ_INDEX, WRITE_INDEX,
};
use vmbus_ring::protocol::PAGE_SIZE;
use vmbus_ring::{
    GpaRangeRef, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing, ReadError,
    RingMem, TransferPageRange, WriteError,
};

#[derive(Clone, Debug)]
enum Op {
    Write {
        len: usize,
        kind: u8,
        completion: bool,
    },
    Read,
    CommitRead,
    CommitWrite,
    RevertRead,
    Mask,
    Unmask,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..2500, 0u8..4, any::<bool>())
            .prop_map(|(len, kind, completion)| Op::Write { len, kind, completion }),
        4 => Just(Op::Read),
        2 => Just(Op::CommitRead),
        2 => Just(Op::CommitWrite),
        1 => Just(Op::RevertRead),
        1 => Just(Op::Mask),
        1 => Just(Op::Unmask),
    ]
}

/// A packet as the model remembers it.
#[derive(Clone, Debug)]
struct Sent {
    txid: u64,
    kind: u8,
    completion: bool,
    len: usize,
    ring_len: u32,
}

fn payload(txid: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (txid as usize * 31 + i) as u8).collect()
}

/// Deterministic ranges for a packet, so the reader side can check them.
fn gpa_pfns(txid: u64) -> Vec<Vec<u64>> {
    (0..1 + txid % 3)
        .map(|r| {
            (0..1 + (txid + r) % 4)
                .map(|p| txid * 100 + r * 10 + p)
                .collect()
        })
        .collect()
}

fn gpa_ranges(pfns: &[Vec<u64>]) -> Vec<GpaRangeRef<'_>> {
    pfns.iter()
        .map(|p| GpaRangeRef {
            byte_count: (p.len() * PAGE_SIZE) as u32 - 1,
            byte_offset: 1,
            pfns: p,
        })
        .collect()
}

fn tp_ranges(txid: u64) -> Vec<TransferPageRange> {
    (0..txid % 5)
        .map(|i| TransferPageRange {
            byte_count: i as u32 + 1,
            byte_offset: txid as u32,
        })
        .collect()
}

fn ring_len(kind: u8, txid: u64, len: usize) -> u32 {
    let header = match kind {
        2 => {
            24 + gpa_pfns(txid)
                .iter()
                .map(|p| 8 + 8 * p.len())
                .sum::<usize>()
        }
        3 => 24 + 8 * tp_ranges(txid).len(),
        _ => 16,
    };
    (header + len.next_multiple_of(8) + 8) as u32
}

fn write<M: RingMem>(w: &mut OutgoingRing<M>, s: &Sent) -> Result<(), WriteError> {
    let pfns = gpa_pfns(s.txid);
    let gpa = gpa_ranges(&pfns);
    let tp = tp_ranges(s.txid);
    let kind = match s.kind {
        0 => OutgoingKind::InBand,
        1 => OutgoingKind::Completion,
        2 => OutgoingKind::GpaDirect(&gpa),
        _ => OutgoingKind::TransferPages {
            transfer_page_set_id: s.txid as u16,
            ranges: &tp,
        },
    };
    let p = OutgoingPacket {
        transaction_id: s.txid,
        completion_requested: s.completion,
        kind,
    };
    let data = payload(s.txid, s.len);
    let (a, b) = data.split_at(s.len / 3);
    w.write_packet(&p, &[a, b])
}

fn check_read<M: RingMem>(r: &mut IncomingRing<M>, s: &Sent) {
    let got = r.read().expect("model says a packet is there");
    assert_eq!(got.transaction_id, s.txid);
    assert_eq!(got.completion_requested, s.completion);
    let mut buf = vec![0; got.payload.len()];
    r.copy_from(&got.payload, 0, &mut buf).expect("payload");
    let mut want = payload(s.txid, s.len);
    want.resize(s.len.next_multiple_of(8), 0);
    assert_eq!(buf, want);
    match (got.kind, s.kind) {
        (IncomingKind::InBand, 0) | (IncomingKind::Completion, 1) => {}
        (IncomingKind::GpaDirect(g), 2) => {
            let pfns = gpa_pfns(s.txid);
            let ranges: Vec<_> = r.gpa_ranges(&g).map(|x| x.expect("range")).collect();
            assert_eq!(ranges.len(), pfns.len());
            for (range, want) in ranges.iter().zip(&pfns) {
                let mut got = vec![0; range.pfn_count()];
                r.read_pfns(range, 0, &mut got).expect("pfns");
                assert_eq!(&got, want);
            }
        }
        (IncomingKind::TransferPages(t), 3) => {
            assert_eq!(t.transfer_page_set_id, s.txid as u16);
            let got: Vec<_> = r.transfer_ranges(&t).map(|x| x.expect("range")).collect();
            assert_eq!(got, tp_ranges(s.txid));
        }
        (got, want) => panic!("kind {want} came back as {got:?}"),
    }
}

/// The model: packets by state, and the writer's outstanding space request.
#[derive(Default)]
struct Model {
    /// Finished by the writer, not committed.
    unpublished: VecDeque<Sent>,
    /// Published, not consumed.
    visible: VecDeque<Sent>,
    /// Consumed, not committed (still holding ring space).
    consumed: VecDeque<Sent>,
    pending_send_size: u32,
    masked: bool,
}

impl Model {
    fn used(&self) -> u32 {
        self.unpublished
            .iter()
            .chain(&self.visible)
            .chain(&self.consumed)
            .map(|s| s.ring_len)
            .sum()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_traffic_matches_the_model(
        pages in 1usize..4,
        start in 0u32..512,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let b = Backing::new(pages);
        let size = b.data_len();
        b.start_at((start * 8) % size);
        let mut w = b.writer();
        let mut r = b.reader();
        let mut m = Model::default();
        let mut next_txid = 0u64;

        for op in ops {
            match op {
                Op::Write { len, kind, completion } => {
                    let s = Sent { txid: next_txid, kind, completion, len,
                                   ring_len: ring_len(kind, next_txid, len) };
                    next_txid += 1;
                    let free = size - m.used();
                    match write(&mut w, &s) {
                        Ok(()) => {
                            prop_assert!(s.ring_len < free);
                            if m.pending_send_size != 0 {
                                w.clear_pending_send_size();
                                m.pending_send_size = 0;
                            }
                            m.unpublished.push_back(s);
                        }
                        Err(WriteError::Full { needed }) => {
                            prop_assert_eq!(needed, s.ring_len);
                            prop_assert!(s.ring_len >= free);
                            // Nothing freed meanwhile: the request must not claim space.
                            prop_assert!(!w.set_pending_send_size(needed).unwrap());
                            m.pending_send_size = needed;
                        }
                        Err(WriteError::Invalid(_)) => {
                            prop_assert!(s.ring_len as usize > w.max_packet_ring_size());
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Read => match m.visible.pop_front() {
                    Some(s) => {
                        check_read(&mut r, &s);
                        m.consumed.push_back(s);
                    }
                    None => prop_assert_eq!(r.peek(), Err(ReadError::Empty)),
                },
                Op::CommitRead => {
                    // The reader judges free space by the published write index, so
                    // the writer's unpublished packets do not count.
                    let published: u32 = m.visible.iter().chain(&m.consumed).map(|s| s.ring_len).sum();
                    let before = size - published;
                    let freed: u32 = m.consumed.drain(..).map(|s| s.ring_len).sum();
                    let after = before + freed;
                    let p = m.pending_send_size;
                    let want = freed != 0 && p != 0 && before <= p && after > p;
                    prop_assert_eq!(r.commit().unwrap(), want);
                }
                Op::CommitWrite => {
                    let was_drained = m.visible.is_empty() && m.consumed.is_empty();
                    let want = !m.unpublished.is_empty() && !m.masked && was_drained;
                    prop_assert_eq!(w.commit().unwrap(), want);
                    m.visible.extend(m.unpublished.drain(..));
                }
                Op::RevertRead => {
                    r.revert();
                    for s in m.consumed.drain(..).rev() {
                        m.visible.push_front(s);
                    }
                }
                Op::Mask => {
                    r.mask_interrupts();
                    m.masked = true;
                }
                Op::Unmask => {
                    prop_assert_eq!(r.unmask_interrupts().unwrap(), !m.visible.is_empty());
                    m.masked = false;
                }
            }
            // Whether a packet fits is exact too, though the writer trusts its last
            // look at the read index while that shows enough space.
            let free = (size - m.used() - 8) as usize;
            for n in [free.saturating_sub(8), free, free + 8] {
                prop_assert_eq!(w.fits(n).unwrap(), n <= free, "{} of {} free", n, free);
            }
            // Free space is exact: the writer sees the reader's committed index.
            prop_assert_eq!(w.free_bytes().unwrap() as u32, size - m.used() - 8);
        }

        // Drain: everything written arrives, in order.
        let _ = w.commit().unwrap();
        m.visible.extend(m.unpublished.drain(..));
        while let Some(s) = m.visible.pop_front() {
            check_read(&mut r, &s);
        }
        prop_assert_eq!(r.read(), Err(ReadError::Empty));
        let _ = r.commit().unwrap();
        prop_assert_eq!(b.read_index(), b.write_index());
        prop_assert_eq!(w.free_bytes().unwrap() as u32, size - 8);
    }
}

/// Reads everything a (possibly lying) ring offers, touching every accessor. Returns
/// how many packets were read. Must never panic.
fn drain_all<M: RingMem>(r: &mut IncomingRing<M>) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 512];
    let mut pfns = [0u64; 16];
    // Each packet takes at least 24 ring bytes, so a bounded loop cannot cut a valid
    // sequence short in these small rings.
    for _ in 0..2000 {
        let p = match r.read() {
            Ok(p) => p,
            Err(_) => break,
        };
        n += 1;
        let _ = r.copy_from(&p.payload, 0, &mut buf);
        let _ = r.copy_from(&p.payload, p.payload.len().saturating_sub(3), &mut buf);
        match p.kind {
            IncomingKind::GpaDirect(g) => {
                for range in r.gpa_ranges(&g).take(64) {
                    match range {
                        Ok(range) => {
                            let _ = r.read_pfns(&range, 0, &mut pfns);
                        }
                        Err(_) => break,
                    }
                }
            }
            IncomingKind::TransferPages(t) => {
                for range in r.transfer_ranges(&t).take(64) {
                    if range.is_err() {
                        break;
                    }
                }
            }
            _ => {}
        }
        if n % 3 == 0 {
            let _ = r.commit();
        }
    }
    let _ = r.commit();
    let _ = r.unmask_interrupts();
    n
}

fn control_word() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..1024).prop_map(|x| x * 8), Just(0)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Entirely random control page and data area.
    #[test]
    fn random_rings_never_panic(
        pages in 1usize..3,
        control in proptest::collection::vec(control_word(), 5),
        data in proptest::collection::vec(any::<u8>(), 0..2 * PAGE_SIZE),
        fill in any::<u8>(),
    ) {
        let b = Backing::new(pages);
        let size = b.data_len() as usize;
        let mut bytes = data;
        bytes.resize(size, fill);
        b.poke(0, &bytes);
        for (offset, value) in
            [WRITE_INDEX, READ_INDEX, INTERRUPT_MASK, PENDING_SEND_SIZE, FEATURE_BITS]
                .into_iter()
                .zip(control)
        {
            b.set_control(offset, value);
        }
        if let Ok(mut r) = IncomingRing::new(b.mem()) {
            drain_all(&mut r);
        }
        if let Ok(mut w) = OutgoingRing::new(b.mem()) {
            let _ = w.write_packet(&common::in_band(1), &[&bytes[..100.min(bytes.len())]]);
            let _ = w.commit();
            let _ = w.free_bytes();
            let _ = w.set_pending_send_size(64);
        }
    }

    /// Valid traffic with a few bytes flipped: close enough to real packets to get
    /// deep into the parser.
    #[test]
    fn mutated_traffic_never_panics(
        lens in proptest::collection::vec((0usize..600, 0u8..4), 1..12),
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        start in 0u32..512,
    ) {
        let b = Backing::new(1);
        let size = b.data_len();
        b.start_at((start * 8) % size);
        let mut w = b.writer();
        let mut written = 0;
        for (i, (len, kind)) in lens.into_iter().enumerate() {
            let s = Sent { txid: i as u64, kind, completion: true, len, ring_len: 0 };
            if write(&mut w, &s).is_ok() {
                written += 1;
            }
        }
        let _ = w.commit().unwrap();
        for (at, xor) in flips {
            let at = u32::from(at) % size;
            let old = b.peek_bytes(at, 1)[0];
            b.poke(at, &[old ^ xor.max(1)]);
        }
        let mut r = b.reader();
        drain_all(&mut r);
        prop_assert!(written > 0 || r.read() == Err(ReadError::Empty));
    }
}
