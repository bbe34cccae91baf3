//! Shared test memory: a ring in process memory both endpoints attach to, plus raw
//! access for tests that play a lying peer.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use ipc::{Perms, Region};
use vmbus_ring::protocol::{control_offsets, PAGE_SIZE};
use vmbus_ring::{
    IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing, RegionRingMem, RingMem,
};

pub struct Backing {
    words: Vec<AtomicU64>,
}

impl Backing {
    /// A freshly created ring (as its allocator leaves it) with `data_pages` pages.
    pub fn new(data_pages: usize) -> Self {
        let words = (0..(1 + data_pages) * PAGE_SIZE / 8)
            .map(|_| AtomicU64::new(0))
            .collect();
        let b = Self { words };
        b.mem().control().initialize();
        b
    }

    pub fn region(&self) -> Region<'_> {
        Region::from_atomics(&self.words, Perms::RW)
    }

    pub fn mem(&self) -> RegionRingMem<'_> {
        RegionRingMem::new(self.region()).unwrap()
    }

    pub fn data_len(&self) -> u32 {
        (self.words.len() * 8 - PAGE_SIZE) as u32
    }

    pub fn reader(&self) -> IncomingRing<RegionRingMem<'_>> {
        IncomingRing::new(self.mem()).unwrap()
    }

    pub fn writer(&self) -> OutgoingRing<RegionRingMem<'_>> {
        OutgoingRing::new(self.mem()).unwrap()
    }

    // Control words are accessed as whole `u32` atomics, as the ring and a real peer
    // do: a byte-wise store over a word the ring stored is a mixed-size race that
    // Miri's weak-memory model cannot represent.
    pub fn set_control(&self, offset: usize, value: u32) {
        self.region()
            .atomic_u32(offset)
            .unwrap()
            .store(value, Ordering::SeqCst);
    }

    pub fn control(&self, offset: usize) -> u32 {
        self.region()
            .atomic_u32(offset)
            .unwrap()
            .load(Ordering::SeqCst)
    }

    pub fn write_index(&self) -> u32 {
        self.control(control_offsets::WRITE_INDEX)
    }

    pub fn read_index(&self) -> u32 {
        self.control(control_offsets::READ_INDEX)
    }

    /// Both indices at `index`: an empty ring whose next packet starts there.
    pub fn start_at(&self, index: u32) {
        self.set_control(control_offsets::WRITE_INDEX, index);
        self.set_control(control_offsets::READ_INDEX, index);
    }

    /// Raw bytes into the data area at ring offset `at`, wrapping.
    pub fn poke(&self, at: u32, bytes: &[u8]) {
        let size = self.data_len() as usize;
        for (i, b) in bytes.iter().enumerate() {
            let off = PAGE_SIZE + (at as usize + i) % size;
            self.region().write(off, b).unwrap();
        }
    }

    pub fn peek_bytes(&self, at: u32, len: usize) -> Vec<u8> {
        let size = self.data_len() as usize;
        (0..len)
            .map(|i| {
                self.region()
                    .read::<u8>(PAGE_SIZE + (at as usize + i) % size)
                    .unwrap()
            })
            .collect()
    }
}

pub fn in_band(transaction_id: u64) -> OutgoingPacket<'static> {
    OutgoingPacket {
        transaction_id,
        completion_requested: false,
        kind: OutgoingKind::InBand,
    }
}

/// Writes and commits one in-band packet; returns the signal decision.
pub fn send<M: RingMem>(w: &mut OutgoingRing<M>, transaction_id: u64, payload: &[u8]) -> bool {
    w.write_packet(&in_band(transaction_id), &[payload])
        .unwrap();
    w.commit().unwrap()
}

/// Reads one packet's payload (padding included) without committing.
pub fn take<M: RingMem>(r: &mut IncomingRing<M>) -> (u64, Vec<u8>) {
    let p = r.read().unwrap();
    let mut buf = vec![0; p.payload.len()];
    assert_eq!(r.copy_from(&p.payload, 0, &mut buf).unwrap(), buf.len());
    (p.transaction_id, buf)
}

pub fn padded(payload: &[u8]) -> Vec<u8> {
    let mut v = payload.to_vec();
    v.resize(payload.len().next_multiple_of(8), 0);
    v
}
