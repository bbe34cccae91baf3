//! The signal decisions, case by case, against Linux's rules
//! (`hv_signal_on_write`, `hv_pkt_iter_close`, `hv_end_read`).

mod common;

use common::{in_band, send, take, Backing};
use vmbus_ring::protocol::control_offsets::{FEATURE_BITS, INTERRUPT_MASK, PENDING_SEND_SIZE};
use vmbus_ring::{in_band_packet_size, IncomingRing, OutgoingRing, RegionRingMem, WriteError};

/// 232 payload bytes make a 256-byte packet: 16 of them fill a one-page ring.
const PAYLOAD: usize = 232;
const PACKET: u32 = 256;

#[test]
fn writer_signals_only_on_empty_to_non_empty_with_interrupts_unmasked() {
    // (interrupt_mask, unread packets before the commit, expected needs_signal)
    let table = [
        (0, 0, true),
        (1, 0, false),
        (0, 1, false),
        (1, 1, false),
        (0, 3, false),
        (0xffff_ffff, 0, false),
    ];
    for (mask, queued, expected) in table {
        let b = Backing::new(1);
        let mut w = b.writer();
        for i in 0..queued {
            w.write_packet(&in_band(i), &[b"queued"]).unwrap();
        }
        let _ = w.commit().unwrap();
        b.set_control(INTERRUPT_MASK, mask);
        assert_eq!(
            send(&mut w, 99, b"x"),
            expected,
            "mask={mask:#x} queued={queued}"
        );
    }
}

#[test]
fn writer_signals_once_per_batch_and_not_for_empty_commits() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();
    assert!(!w.commit().unwrap());
    for i in 0..4 {
        w.write_packet(&in_band(i), &[b"batch"]).unwrap();
    }
    assert!(w.commit().unwrap());
    assert!(!w.commit().unwrap());
    // Reader drains part of it: still non-empty, so no signal.
    take(&mut r);
    let _ = r.commit().unwrap();
    assert!(!send(&mut w, 5, b"more"));
    // Reader drains everything: the next packet makes it non-empty again.
    while r.read().is_ok() {}
    let _ = r.commit().unwrap();
    assert!(send(&mut w, 6, b"again"));
}

fn fill(b: &Backing, packets: usize) {
    let mut w = b.writer();
    for i in 0..packets {
        w.write_packet(&in_band(i as u64), &[&[0; PAYLOAD]])
            .expect("fits");
    }
    let _ = w.commit().expect("commit");
}

#[test]
fn reader_signals_when_free_space_crosses_pending_send_size() {
    assert_eq!(in_band_packet_size(PAYLOAD) as u32, PACKET);
    // (feature bits, queued packets, pending_send_size, packets consumed per commit,
    //  expected needs_signal for each commit)
    #[allow(clippy::type_complexity)]
    let table: &[(u32, usize, u32, &[usize], &[bool])] = &[
        // Writer blocked for one packet with one slot's worth (256) free.
        (1, 15, PACKET, &[1], &[true]),
        // Feature not advertised: Linux never signals.
        (0, 15, PACKET, &[1], &[false]),
        // Nobody waiting.
        (1, 15, 0, &[1, 1], &[false, false]),
        // Needs 512 free: 256 -> 512 is not enough (exactly full counts as full),
        // 512 -> 768 crosses.
        (1, 15, 2 * PACKET, &[1, 1, 1], &[false, true, false]),
        // Already more than pending_send_size free before: no transition.
        (1, 15, 100, &[1], &[false]),
        // Writer wants almost everything: only the last commit crosses.
        (1, 15, 15 * PACKET, &[14, 1], &[false, true]),
        // One commit of many packets crossing the threshold signals once.
        (1, 15, 3 * PACKET, &[5, 5], &[true, false]),
        // A bogus huge request never signals (and never breaks anything).
        (1, 15, u32::MAX, &[15], &[false]),
    ];
    for &(features, queued, pending, consumes, expected) in table {
        let b = Backing::new(1);
        fill(&b, queued);
        b.set_control(FEATURE_BITS, features);
        b.set_control(PENDING_SEND_SIZE, pending);
        let mut r = b.reader();
        for (step, (&n, &want)) in consumes.iter().zip(expected).enumerate() {
            for _ in 0..n {
                r.consume().unwrap();
            }
            assert_eq!(
                r.commit().unwrap(),
                want,
                "features={features} queued={queued} pending={pending} step={step}"
            );
        }
    }
}

#[test]
fn consumption_signals_only_at_commit() {
    let b = Backing::new(1);
    fill(&b, 15);
    b.set_control(PENDING_SEND_SIZE, PACKET);
    let mut r = b.reader();
    r.consume().unwrap();
    r.consume().unwrap();
    assert_eq!(b.read_index(), 0);
    assert!(r.commit().unwrap());
    assert_eq!(b.read_index(), 2 * PACKET);
}

type Writer<'a> = OutgoingRing<RegionRingMem<'a>>;
type Reader<'a> = IncomingRing<RegionRingMem<'a>>;

/// Both ends of `b`'s one-page ring after the writer committed 15 packets, and what
/// the 16th needs: 256 bytes stay free, and a packet that would fill the ring
/// exactly is refused.
fn full_but_one(b: &Backing) -> (Writer<'_>, Reader<'_>, u32) {
    let mut w = b.writer();
    let r = b.reader();
    for i in 0..15 {
        w.write_packet(&in_band(i), &[&[0; PAYLOAD]]).expect("room");
    }
    let _ = w.commit().expect("commit");
    match w.write_packet(&in_band(15), &[&[0; PAYLOAD]]) {
        Err(WriteError::Full { needed }) => (w, r, needed),
        other => panic!("ring should be full: {other:?}"),
    }
}

#[test]
fn full_writer_waits_with_pending_send_size_and_is_woken() {
    let b = Backing::new(1);
    let (mut w, mut r, needed) = full_but_one(&b);
    assert_eq!(needed, PACKET);
    assert!(!w.set_pending_send_size(needed).unwrap());
    assert_eq!(b.control(PENDING_SEND_SIZE), PACKET);

    r.consume().unwrap();
    assert!(r.commit().unwrap(), "reader must wake the blocked writer");
    w.write_packet(&in_band(15), &[&[0; PAYLOAD]]).unwrap();
    w.clear_pending_send_size();
    assert_eq!(b.control(PENDING_SEND_SIZE), 0);
}

#[test]
fn pending_send_size_set_after_space_was_freed_reports_it() {
    // The reader freed space before the writer published its request, so no signal
    // will come: set_pending_send_size must say so.
    let b = Backing::new(1);
    let (mut w, mut r, needed) = full_but_one(&b);
    r.consume().unwrap();
    assert!(!r.commit().unwrap(), "nobody asked yet");
    assert!(w.set_pending_send_size(needed).unwrap());
    assert!(w.set_pending_send_size(1 << 20).is_err());
}

#[test]
fn reader_rearm_rechecks_so_no_wake_up_is_lost() {
    let b = Backing::new(1);
    let mut w = b.writer();
    let mut r = b.reader();

    // Polling: the writer sees the mask and does not signal.
    r.mask_interrupts();
    assert!(!send(&mut w, 1, b"while polling"));
    take(&mut r);
    let _ = r.commit().unwrap();
    // A packet lands between the last empty read and the unmask: the writer did not
    // signal (mask was set), so unmask must report it.
    assert!(!send(&mut w, 2, b"race"));
    assert!(r.unmask_interrupts().unwrap());
    take(&mut r);
    let _ = r.commit().unwrap();
    // Now truly idle: unmask reports nothing, and the next write signals.
    assert!(!r.unmask_interrupts().unwrap());
    assert_eq!(b.control(INTERRUPT_MASK), 0);
    assert!(send(&mut w, 3, b"wake"));
    assert!(!r.is_empty().unwrap());
}
