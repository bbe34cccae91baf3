//! The one seam between a shared-memory protocol and the memory it runs over.

use core::sync::atomic::Ordering;

/// Atomic access to the u32 words, named by `W`, that a protocol shares with its
/// peer. The queue's index/flag protocol and the VMBus ring's signalling are written
/// against this rather than against their memory, so that their loom tests run the
/// very same code over loom's model-checked atomics.
pub trait SharedWords<W> {
    fn load(&self, word: W, order: Ordering) -> u32;
    fn store(&self, word: W, value: u32, order: Ordering);
    /// `fence(SeqCst)` of the memory model the words live in.
    fn fence_seq_cst(&self);
}
