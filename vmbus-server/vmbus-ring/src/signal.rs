//! When an endpoint must signal the other, over the control page's words alone.
//!
//! Linux's rules (`hv_signal_on_write`, `hv_pkt_iter_close`) and the mask dance of
//! a reader that polls: while it polls it sets `interrupt_mask` and the writer
//! signals nobody; before it sleeps it clears the mask and looks at `write_index`
//! once more, since a packet committed while the mask was set got no signal. Each
//! side stores its word, then a SeqCst fence, then loads the other's: of two
//! sides that race, at least one sees the other's store (and what it stored
//! before), so either the writer signals or the reader sees the packet. The same
//! holds for a writer waiting for space (`pending_send_size` against
//! `read_index`). Fences rather than SeqCst accesses: the same one full barrier
//! per commit on x86, and what loom can check (it treats SeqCst accesses as
//! AcqRel, which would report lost wake-ups that cannot happen).
//!
//! [`IncomingRing`](crate::IncomingRing) and [`OutgoingRing`](crate::OutgoingRing)
//! run exactly these functions over the control page; the loom model check
//! (tests/loom_signal.rs) runs them over loom atomics and finds no lost wake-up.
//! Values loaded here are the peer's and unchecked: the rings validate them.

use core::sync::atomic::Ordering::{self, Acquire, Relaxed, Release};

use ipc::SharedWords;

use crate::control::ControlPage;
use crate::protocol::FEATURE_PENDING_SEND_SIZE;

/// The control page's words the protocol uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Word {
    WriteIndex,
    ReadIndex,
    InterruptMask,
    PendingSendSize,
    FeatureBits,
}

/// The rings' words (tests/loom_signal.rs runs the same functions over a model's).
impl SharedWords<Word> for ControlPage<'_> {
    #[inline]
    fn load(&self, word: Word, order: Ordering) -> u32 {
        self.word(word).load(order)
    }

    #[inline]
    fn store(&self, word: Word, value: u32, order: Ordering) {
        self.word(word).store(value, order);
    }

    #[inline]
    fn fence_seq_cst(&self) {
        core::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Writer: publishes `write` (its packet bytes with it) and samples what decides
/// the signal. `None`: the reader masked interrupts (it polls and will see the
/// packet); `Some(read_index)`, raw: signal if the reader had read everything
/// before this commit ([`writer_must_signal`]).
#[inline]
pub fn publish_write<W: SharedWords<Word> + ?Sized>(words: &W, write: u32) -> Option<u32> {
    words.store(Word::WriteIndex, write, Release);
    words.fence_seq_cst();
    if words.load(Word::InterruptMask, Relaxed) != 0 {
        return None;
    }
    Some(words.load(Word::ReadIndex, Acquire))
}

/// The ring went from empty to non-empty: the reader's index was where the
/// writer's was before the commit.
#[inline]
pub fn writer_must_signal(write_before: u32, read: u32) -> bool {
    read == write_before
}

/// Reader, about to poll: the writer need not signal.
#[inline]
pub fn mask<W: SharedWords<Word> + ?Sized>(words: &W) {
    words.store(Word::InterruptMask, 1, Relaxed);
}

/// Reader, about to sleep: asks for signals again, then samples `write_index`
/// (raw). If it moved past what was read, read on instead of sleeping.
#[inline]
pub fn unmask<W: SharedWords<Word> + ?Sized>(words: &W) -> u32 {
    words.store(Word::InterruptMask, 0, Relaxed);
    words.fence_seq_cst();
    words.load(Word::WriteIndex, Acquire)
}

/// Reader: publishes `read` (hands the space back) and samples what decides the
/// signal: `None` when the writer asked for nothing (feature off, or no pending
/// size), else `(pending_send_size, write_index)`, raw, for
/// [`reader_must_signal`].
#[inline]
pub fn publish_read<W: SharedWords<Word> + ?Sized>(words: &W, read: u32) -> Option<(u32, u32)> {
    words.store(Word::ReadIndex, read, Release);
    words.fence_seq_cst();
    if words.load(Word::FeatureBits, Relaxed) & FEATURE_PENDING_SEND_SIZE == 0 {
        return None;
    }
    let pending = words.load(Word::PendingSendSize, Relaxed);
    if pending == 0 {
        return None;
    }
    Some((pending, words.load(Word::WriteIndex, Acquire)))
}

/// Whether freeing `freed` bytes, leaving `free_now` free, took the writer from
/// blocked (free space not above `pending`) to unblocked. Exactly `pending` free
/// counts as blocked: a writer can never use the last 8 bytes. If the writer
/// already refilled past the freed space, `free_now - freed` underflows: it was
/// not blocked.
#[inline]
pub fn reader_must_signal(free_now: u32, freed: u32, pending: u32) -> bool {
    let was_blocked = free_now.checked_sub(freed).is_some_and(|f| f <= pending);
    was_blocked && free_now > pending
}

/// Writer, about to wait for space: asks for a signal once more than `needed`
/// bytes are free, then samples `read_index` (raw). If that much is free already,
/// retry instead of sleeping.
#[inline]
pub fn request_space<W: SharedWords<Word> + ?Sized>(words: &W, needed: u32) -> u32 {
    words.store(Word::PendingSendSize, needed, Relaxed);
    words.fence_seq_cst();
    words.load(Word::ReadIndex, Acquire)
}

/// Writer: withdraws a space request once its write went through.
#[inline]
pub fn withdraw_space_request<W: SharedWords<Word> + ?Sized>(words: &W) {
    words.store(Word::PendingSendSize, 0, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_signals_only_a_writer_it_unblocked() {
        // (free_now, freed, pending, expected)
        let table = [
            (256, 256, 200, true),   // was 0 free, now 256 > 200
            (264, 8, 256, true),     // was exactly 256: blocked
            (512, 256, 200, false),  // had 256 > 200 before: not blocked
            (200, 100, 200, false),  // still not above pending
            (100, 200, 50, false),   // refilled past: underflow, not blocked
            (u32::MAX, 0, 0, false), // nothing freed
        ];
        for (free_now, freed, pending, want) in table {
            assert_eq!(
                reader_must_signal(free_now, freed, pending),
                want,
                "{free_now} {freed} {pending}"
            );
        }
        assert!(writer_must_signal(64, 64));
        assert!(!writer_must_signal(64, 56));
    }
}
