//! The index/flag protocol of the SPSC queue, apart from where its four words live.
//!
//! [`super::Producer`] and [`super::Consumer`] run this code over words in a
//! [`crate::Region`]; the loom test (`tests/loom_queue.rs`) runs the very same code over
//! loom's model-checked atomics. Keeping every load, store, ordering and fence of the
//! protocol in this one file is what makes the model check mean something.
//!
//! Indices run free: `tail` counts entries ever published, `head` entries ever
//! consumed, both wrapping at `u32::MAX`. With a power-of-two capacity `tail - head`
//! (wrapping) is the fill level and `index & (capacity - 1)` the slot, across the wrap.
//!
//! Each side keeps its own index privately and only ever stores it, never reads it
//! back: a peer scribbling over our index cannot make us skip or replay entries.
//! The peer's index is checked on every load against what it could legally be.

use core::sync::atomic::Ordering;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::QueueError;

/// The shared words of one queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// Entries published; stored only by the producer.
    Tail,
    /// Entries consumed; stored only by the consumer.
    Head,
    /// Non-zero: the consumer is about to sleep and wants a notification when
    /// entries arrive. Set by the consumer, taken (cleared) by the producer.
    ConsumerWantsSignal,
    /// Non-zero: the producer found the queue full and wants a notification when
    /// space frees up. Set by the producer, taken (cleared) by the consumer.
    ProducerWantsSignal,
}

/// Where the words live: a shared-memory region, or a model checker's atomics.
pub trait SharedWords {
    fn load(&self, word: Word, order: Ordering) -> u32;
    fn store(&self, word: Word, value: u32, order: Ordering);
    /// `fence(SeqCst)` of the memory model the words live in.
    fn fence_seq_cst(&self);
}

/// A queue capacity: a power of two, so free-running indices map onto slots
/// consistently when they wrap at `u32::MAX` (2^32 is a multiple of it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Capacity(u32);

impl Capacity {
    pub const fn new(entries: u32) -> Option<Self> {
        if entries.is_power_of_two() {
            Some(Self(entries))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    const fn mask(self) -> u32 {
        self.0 - 1
    }
}

/// Why a side may sleep: the other side must notify it once the condition changes.
///
/// Both "request a signal, then re-check" (the sleeper) and "publish, then check for a
/// request" (the waker) are Dekker-style: each side stores one word and then loads
/// the other's. Release/acquire cannot make that safe. A release store only orders
/// the accesses *before* it, and an acquire load only the accesses *after* it, so
/// nothing stops a store from being ordered after a later load to another location
/// (x86 lets exactly this happen through its store buffer). Both sides could then
/// read the other's old value: the sleeper sees no new entries, the waker sees no
/// request, and the wake-up is lost. A SeqCst fence between the store and the load on
/// both sides puts the two fences in one total order. Whichever fence comes second,
/// its load sees the other side's store, so the sleeper finds the entries, or the
/// waker finds the request, or both.
fn store_then_fence<W: SharedWords>(words: &W, word: Word, value: u32) {
    words.store(word, value, Relaxed);
    words.fence_seq_cst();
}

/// Takes the peer's request if one is pending. The fence pairs with the one in
/// [`store_then_fence`] on the peer's side (see there); the caller's preceding index
/// publish is the store half of the pattern.
///
/// Seeing a request always means "notify", even if the clear below lands after the
/// peer withdrew that request and made a new one (the clear then erases the newer
/// request). That is safe because the notification the caller sends after the clear
/// stays pending until the peer waits, so the newer request is answered by it. The
/// cost is at most one spurious wake-up. A swap that notified only when it itself
/// read the request would avoid that, but it adds a locked RMW to the hot path and
/// leans on RMW atomicity, which loom does not model precisely.
fn fence_then_take<W: SharedWords>(words: &W, word: Word) -> bool {
    words.fence_seq_cst();
    if words.load(word, Relaxed) == 0 {
        return false;
    }
    words.store(word, 0, Relaxed);
    true
}

/// The producer's private view: its own `tail` and the last `head` it validated.
#[derive(Clone, Debug)]
pub struct ProducerIndex {
    tail: u32,
    head: u32,
    capacity: Capacity,
}

impl ProducerIndex {
    /// Takes over the producer side of a queue whose words already hold a state
    /// (zero for a fresh region).
    pub fn attach<W: SharedWords>(words: &W, capacity: Capacity) -> Result<Self, QueueError> {
        let tail = words.load(Word::Tail, Relaxed);
        let head = words.load(Word::Head, Acquire);
        if tail.wrapping_sub(head) > capacity.get() {
            return Err(QueueError::PeerMisbehaved {
                peer_index: head,
                own_index: tail,
            });
        }
        Ok(Self {
            tail,
            head,
            capacity,
        })
    }

    pub fn tail(&self) -> u32 {
        self.tail
    }

    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn cached_free(&self) -> u32 {
        self.capacity.get() - self.tail.wrapping_sub(self.head)
    }

    /// Free slots, re-reading `head` only when the last validated value does not
    /// already leave room for `wanted` (the shared line is then not touched at all).
    pub fn free<W: SharedWords>(&mut self, words: &W, wanted: u32) -> Result<u32, QueueError> {
        let free = self.cached_free();
        if free >= wanted {
            return Ok(free);
        }
        self.refresh(words)
    }

    /// Re-reads and validates `head`. Acquire pairs with the consumer's release of
    /// `head`: its reads of the entries it freed happen before we overwrite them.
    pub fn refresh<W: SharedWords>(&mut self, words: &W) -> Result<u32, QueueError> {
        let head = words.load(Word::Head, Acquire);
        // Legal heads lie between the last one seen and our tail: the consumer moves
        // forward only, and never past what we published.
        if head.wrapping_sub(self.head) > self.tail.wrapping_sub(self.head) {
            return Err(QueueError::PeerMisbehaved {
                peer_index: head,
                own_index: self.tail,
            });
        }
        self.head = head;
        Ok(self.cached_free())
    }

    /// The slot the `i`-th entry after the current tail goes into.
    pub fn slot(&self, i: u32) -> u32 {
        self.tail.wrapping_add(i) & self.capacity.mask()
    }

    /// Publishes `count` entries already written to `slot(0..count)`. `count` must
    /// not exceed the last value [`Self::free`] returned.
    pub fn publish<W: SharedWords>(&mut self, words: &W, count: u32) {
        debug_assert!(count <= self.cached_free());
        self.tail = self.tail.wrapping_add(count);
        // Release: the entry writes happen before the consumer sees the new tail.
        words.store(Word::Tail, self.tail, Release);
    }

    /// After a publish: whether the consumer asked to be woken (and if so, the
    /// request is consumed, so it is woken once per request).
    pub fn take_signal_request<W: SharedWords>(&self, words: &W) -> bool {
        fence_then_take(words, Word::ConsumerWantsSignal)
    }

    /// Asks the consumer to notify us once it frees space.
    pub fn request_signal<W: SharedWords>(&self, words: &W) {
        store_then_fence(words, Word::ProducerWantsSignal, 1);
    }

    pub fn cancel_signal<W: SharedWords>(&self, words: &W) {
        words.store(Word::ProducerWantsSignal, 0, Relaxed);
    }

    /// Requests a signal and re-checks for space. `Ok(true)`: still full, the
    /// producer may sleep until notified. `Ok(false)`: space appeared meanwhile, the
    /// request is withdrawn, go on enqueueing.
    pub fn prepare_to_sleep<W: SharedWords>(&mut self, words: &W) -> Result<bool, QueueError> {
        self.request_signal(words);
        if self.refresh(words)? > 0 {
            self.cancel_signal(words);
            return Ok(false);
        }
        Ok(true)
    }
}

/// The consumer's private view: its own `head` and the last `tail` it validated.
#[derive(Clone, Debug)]
pub struct ConsumerIndex {
    head: u32,
    tail: u32,
    capacity: Capacity,
}

impl ConsumerIndex {
    pub fn attach<W: SharedWords>(words: &W, capacity: Capacity) -> Result<Self, QueueError> {
        let head = words.load(Word::Head, Relaxed);
        let tail = words.load(Word::Tail, Acquire);
        if tail.wrapping_sub(head) > capacity.get() {
            return Err(QueueError::PeerMisbehaved {
                peer_index: tail,
                own_index: head,
            });
        }
        Ok(Self {
            head,
            tail,
            capacity,
        })
    }

    pub fn head(&self) -> u32 {
        self.head
    }

    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn cached_available(&self) -> u32 {
        self.tail.wrapping_sub(self.head)
    }

    /// Entries ready, re-reading `tail` only when the last validated value does not
    /// already cover `wanted`.
    pub fn available<W: SharedWords>(&mut self, words: &W, wanted: u32) -> Result<u32, QueueError> {
        let available = self.cached_available();
        if available >= wanted {
            return Ok(available);
        }
        self.refresh(words)
    }

    /// Re-reads and validates `tail`. Acquire pairs with the producer's release of
    /// `tail`: the entries it published are visible before we read them.
    pub fn refresh<W: SharedWords>(&mut self, words: &W) -> Result<u32, QueueError> {
        let tail = words.load(Word::Tail, Acquire);
        let available = tail.wrapping_sub(self.head);
        // Legal tails leave at most `capacity` entries in flight and never take back
        // entries already published (which we may be about to read).
        if available > self.capacity.get() || available < self.cached_available() {
            return Err(QueueError::PeerMisbehaved {
                peer_index: tail,
                own_index: self.head,
            });
        }
        self.tail = tail;
        Ok(available)
    }

    /// The slot of the `i`-th entry after the current head.
    pub fn slot(&self, i: u32) -> u32 {
        self.head.wrapping_add(i) & self.capacity.mask()
    }

    /// Hands `count` entries, already copied out of `slot(0..count)`, back to the
    /// producer. `count` must not exceed the last value [`Self::available`] returned.
    pub fn release<W: SharedWords>(&mut self, words: &W, count: u32) {
        debug_assert!(count <= self.cached_available());
        self.head = self.head.wrapping_add(count);
        // Release: our reads of those slots happen before the producer reuses them.
        words.store(Word::Head, self.head, Release);
    }

    /// After a release: whether the producer asked to be woken (consuming the request).
    pub fn take_signal_request<W: SharedWords>(&self, words: &W) -> bool {
        fence_then_take(words, Word::ProducerWantsSignal)
    }

    /// Asks the producer to notify us once it publishes entries.
    pub fn request_signal<W: SharedWords>(&self, words: &W) {
        store_then_fence(words, Word::ConsumerWantsSignal, 1);
    }

    pub fn cancel_signal<W: SharedWords>(&self, words: &W) {
        words.store(Word::ConsumerWantsSignal, 0, Relaxed);
    }

    /// Requests a signal and re-checks for entries (sDDF's "reprocess" step).
    /// `Ok(true)`: still empty, sleep until notified. `Ok(false)`: entries arrived
    /// meanwhile, the request is withdrawn, go on dequeueing.
    pub fn prepare_to_sleep<W: SharedWords>(&mut self, words: &W) -> Result<bool, QueueError> {
        self.request_signal(words);
        if self.refresh(words)? > 0 {
            self.cancel_signal(words);
            return Ok(false);
        }
        Ok(true)
    }
}
