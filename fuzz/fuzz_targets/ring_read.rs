//! VMBus ring reader on arbitrary bytes: the input is a peer's whole view of a ring
//! (control words, then data), read through both memory layouts. Reading everything,
//! walking every range and copying every payload must never panic.
#![no_main]

use std::sync::atomic::AtomicU64;

use ipc::{Perms, Region};
use libfuzzer_sys::fuzz_target;
use vmbus_ring::protocol::{control_offsets as off, PAGE_SIZE};
use vmbus_ring::{GpadlRingMem, IncomingKind, IncomingRing, RegionRingMem, RingMem};

fuzz_target!(|data: &[u8]| {
    // Byte 0: data pages (1 or 2) and whether to scatter the ring over guest pages.
    // Bytes 1..21: write index, read index, interrupt mask, pending send size,
    // feature bits. The rest: the data area (zero-filled if short).
    let Some((&mode, rest)) = data.split_first() else { return };
    let pages = 1 + usize::from(mode & 1);
    let scattered = mode & 2 != 0;
    let (control, bytes) = rest.split_at(rest.len().min(20));
    let mut words = [0u32; 5];
    for (w, chunk) in words.iter_mut().zip(control.chunks(4)) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u32::from_le_bytes(b);
    }

    // Guest RAM of four pages; the ring uses pages [3, 1, 0] (scattered, control
    // first) or [0, 1, 2] (contiguous).
    let ram_words: Vec<AtomicU64> = (0..4 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect();
    let ram = Region::from_atomics(&ram_words, Perms::RW);
    let list: &[u64] = if scattered { &[3, 1, 0] } else { &[0, 1, 2] };
    let list = &list[..1 + pages];
    let control_at = list[0] as usize * PAGE_SIZE;
    for (field, value) in [
        off::WRITE_INDEX,
        off::READ_INDEX,
        off::INTERRUPT_MASK,
        off::PENDING_SEND_SIZE,
        off::FEATURE_BITS,
    ]
    .into_iter()
    .zip(words)
    {
        ram.write(control_at + field, &value).expect("control page in RAM");
    }
    for (i, page) in list[1..].iter().enumerate() {
        let chunk = bytes.get(i * PAGE_SIZE..).unwrap_or(&[]);
        let chunk = &chunk[..chunk.len().min(PAGE_SIZE)];
        ram.write_bytes(*page as usize * PAGE_SIZE, chunk).expect("data page in RAM");
    }

    if scattered {
        if let Ok(mem) = GpadlRingMem::new(ram, list) {
            read_all(mem);
        }
    } else if let Ok(mem) = RegionRingMem::new(ram.subregion(0, (1 + pages) * PAGE_SIZE).expect("ring")) {
        read_all(mem);
    }
});

fn read_all<M: RingMem>(mem: M) {
    let Ok(mut r) = IncomingRing::new(mem) else { return };
    let mut buf = [0u8; 256];
    let mut pfns = [0u64; 8];
    // A packet takes at least 24 bytes of at most 8 KiB: 400 reads drain any ring.
    for i in 0..400 {
        let Ok(p) = r.read() else { break };
        let _ = r.copy_from(&p.payload, 0, &mut buf);
        let _ = r.copy_from(&p.payload, p.payload.len().saturating_sub(5), &mut buf);
        match p.kind {
            IncomingKind::GpaDirect(g) => {
                for range in r.gpa_ranges(&g) {
                    let Ok(range) = range else { break };
                    let _ = r.read_pfns(&range, 0, &mut pfns);
                    let _ = r.read_pfns(&range, range.pfn_count().saturating_sub(1), &mut pfns);
                }
            }
            IncomingKind::TransferPages(t) => {
                for range in r.transfer_ranges(&t) {
                    if range.is_err() {
                        break;
                    }
                }
            }
            IncomingKind::InBand | IncomingKind::Completion => {}
        }
        if i % 4 == 3 {
            let _ = r.commit();
        }
    }
    let _ = r.commit();
    let _ = r.unmask_interrupts();
    let _ = r.is_empty();
}
