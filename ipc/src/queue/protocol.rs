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

use core::marker::PhantomData;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::QueueError;
use crate::SharedWords;

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
fn store_then_fence<W: SharedWords<Word>>(words: &W, word: Word, value: u32) {
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
fn fence_then_take<W: SharedWords<Word>>(words: &W, word: Word) -> bool {
    words.fence_seq_cst();
    if words.load(word, Relaxed) == 0 {
        return false;
    }
    words.store(word, 0, Relaxed);
    true
}

/// Which end of the queue a side is: the words it owns, and how far the peer's index
/// may legally have moved.
pub trait Role: core::fmt::Debug {
    /// The end's name, for `Debug`.
    const END: &'static str;
    /// Its own index word, stored only by this side; the peer's is the
    /// [`Word::counterpart`], only ever loaded (and checked) here.
    const OWN: Word;
    /// The flag this side sets to be woken; the peer sets the counterpart.
    const WANTS_SIGNAL: Word;
    /// What this side can act on with `in_flight` entries published and not yet
    /// consumed: free slots for the producer, ready entries for the consumer.
    fn room(in_flight: u32, capacity: Capacity) -> u32;
    /// Whether the peer may have moved its index from `old` to `new`.
    fn peer_moved_legally(own: u32, old: u32, new: u32, capacity: Capacity) -> bool;
}

impl Word {
    /// The peer's word of the same kind: its index, or its signal flag.
    pub const fn counterpart(self) -> Self {
        match self {
            Self::Tail => Self::Head,
            Self::Head => Self::Tail,
            Self::ConsumerWantsSignal => Self::ProducerWantsSignal,
            Self::ProducerWantsSignal => Self::ConsumerWantsSignal,
        }
    }
}

/// Entries published and not yet consumed (`tail - head`, wrapping), from one
/// side's own and peer index.
fn in_flight<R: Role>(own: u32, peer: u32) -> u32 {
    match R::OWN {
        Word::Tail => own.wrapping_sub(peer),
        _ => peer.wrapping_sub(own),
    }
}

/// The producer: owns `tail`, validates `head`.
#[derive(Clone, Debug)]
pub enum Producing {}

/// The consumer: owns `head`, validates `tail`.
#[derive(Clone, Debug)]
pub enum Consuming {}

impl Role for Producing {
    const END: &'static str = "Producer";
    const OWN: Word = Word::Tail;
    const WANTS_SIGNAL: Word = Word::ProducerWantsSignal;

    fn room(in_flight: u32, capacity: Capacity) -> u32 {
        capacity.get() - in_flight
    }

    /// Legal heads lie between the last one seen and our tail: the consumer moves
    /// forward only, and never past what we published.
    fn peer_moved_legally(tail: u32, old: u32, new: u32, _: Capacity) -> bool {
        new.wrapping_sub(old) <= tail.wrapping_sub(old)
    }
}

impl Role for Consuming {
    const END: &'static str = "Consumer";
    const OWN: Word = Word::Head;
    const WANTS_SIGNAL: Word = Word::ConsumerWantsSignal;

    fn room(in_flight: u32, _: Capacity) -> u32 {
        in_flight
    }

    /// Legal tails leave at most `capacity` entries in flight and never take back
    /// entries already published (which we may be about to read).
    fn peer_moved_legally(head: u32, old: u32, new: u32, capacity: Capacity) -> bool {
        let available = new.wrapping_sub(head);
        available <= capacity.get() && available >= old.wrapping_sub(head)
    }
}

/// One side's private view: its own index and the last peer index it validated.
#[derive(Clone, Debug)]
pub struct Index<R> {
    own: u32,
    peer: u32,
    capacity: Capacity,
    _role: PhantomData<R>,
}

pub type ProducerIndex = Index<Producing>;
pub type ConsumerIndex = Index<Consuming>;

impl<R: Role> Index<R> {
    /// Takes over this side of a queue whose words already hold a state (zero for a
    /// fresh region).
    pub fn attach<W: SharedWords<Word>>(words: &W, capacity: Capacity) -> Result<Self, QueueError> {
        let own = words.load(R::OWN, Relaxed);
        let peer = words.load(R::OWN.counterpart(), Acquire);
        if in_flight::<R>(own, peer) > capacity.get() {
            return Err(QueueError::PeerMisbehaved {
                peer_index: peer,
                own_index: own,
            });
        }
        Ok(Self {
            own,
            peer,
            capacity,
            _role: PhantomData,
        })
    }

    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn cached_room(&self) -> u32 {
        R::room(in_flight::<R>(self.own, self.peer), self.capacity)
    }

    /// Free slots (producer) or ready entries (consumer), re-reading the peer's
    /// index only when the last validated value does not already cover `wanted`
    /// (the shared line is then not touched at all).
    pub fn room<W: SharedWords<Word>>(
        &mut self,
        words: &W,
        wanted: u32,
    ) -> Result<u32, QueueError> {
        let room = self.cached_room();
        if room >= wanted {
            return Ok(room);
        }
        self.refresh(words)
    }

    /// Re-reads and validates the peer's index. Acquire pairs with the peer's
    /// release of it: a consumer's reads of the entries it freed happen before the
    /// producer overwrites them, a producer's entry writes before the consumer reads.
    pub fn refresh<W: SharedWords<Word>>(&mut self, words: &W) -> Result<u32, QueueError> {
        let peer = words.load(R::OWN.counterpart(), Acquire);
        if !R::peer_moved_legally(self.own, self.peer, peer, self.capacity) {
            return Err(QueueError::PeerMisbehaved {
                peer_index: peer,
                own_index: self.own,
            });
        }
        self.peer = peer;
        Ok(self.cached_room())
    }

    /// The slot of the `i`-th entry after our index.
    pub fn slot(&self, i: u32) -> u32 {
        self.own.wrapping_add(i) & self.capacity.mask()
    }

    /// Moves our index past `count` slots already written (producer) or copied out
    /// (consumer). `count` must not exceed the last value [`Self::room`] returned.
    /// Release: those slot accesses happen before the peer sees the new index.
    pub fn advance<W: SharedWords<Word>>(&mut self, words: &W, count: u32) {
        debug_assert!(count <= self.cached_room());
        self.own = self.own.wrapping_add(count);
        words.store(R::OWN, self.own, Release);
    }

    /// After an advance: whether the peer asked to be woken (and if so, the request
    /// is consumed, so it is woken once per request).
    pub fn take_signal_request<W: SharedWords<Word>>(&self, words: &W) -> bool {
        fence_then_take(words, R::WANTS_SIGNAL.counterpart())
    }

    /// Asks the peer to notify us once it frees space (producer) or publishes
    /// entries (consumer).
    pub fn request_signal<W: SharedWords<Word>>(&self, words: &W) {
        store_then_fence(words, R::WANTS_SIGNAL, 1);
    }

    pub fn cancel_signal<W: SharedWords<Word>>(&self, words: &W) {
        words.store(R::WANTS_SIGNAL, 0, Relaxed);
    }

    /// Requests a signal and re-checks for room (sDDF's "reprocess" step).
    /// `Ok(true)`: still none, sleep until notified. `Ok(false)`: room appeared
    /// meanwhile, the request is withdrawn, carry on.
    pub fn prepare_to_sleep<W: SharedWords<Word>>(
        &mut self,
        words: &W,
    ) -> Result<bool, QueueError> {
        self.request_signal(words);
        if self.refresh(words)? > 0 {
            self.cancel_signal(words);
            return Ok(false);
        }
        Ok(true)
    }
}
