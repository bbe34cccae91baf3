//! sDDF-style single-producer single-consumer queues over a shared [`Region`].
//!
//! The region is mapped by two PDs, either of which may be hostile. Layout:
//!
//! ```text
//! 0x000  tail                    u32, stored by the producer only
//! 0x040  head                    u32, stored by the consumer only
//! 0x080  consumer_wants_signal   u32, set by the consumer, cleared by the producer
//! 0x0c0  producer_wants_signal   u32, set by the producer, cleared by the consumer
//! 0x100  capacity entries of T, back to back
//! ```
//!
//! Each word has its own 64-byte cache line, so the producer's hot stores to `tail`
//! do not bounce the line the consumer stores `head` to. A zero-filled region is an
//! empty queue, which is how the runtime hands regions out; [`Queue::init`] is only
//! for reusing one. Both ends need the region mapped read-write and must agree on the
//! capacity and entry type out of band (the system description).
//!
//! Typical loops (the signal calls are what keeps notifications rare):
//!
//! ```text
//! producer:  enqueue_batch(..); if take_signal_request() { notify(consumer) }
//!            when full: if prepare_to_sleep()? { wait for a notification }
//! consumer:  dequeue_batch(..); if take_signal_request() { notify(producer) }
//!            when empty: if prepare_to_sleep()? { wait for a notification }
//! ```

pub mod protocol;

use core::fmt;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{Region, RegionError, SharedWords};
use protocol::{Capacity, Consuming, Index, Producing, Role, Word};

/// What a queue can carry: plain data any byte pattern of which is a valid value,
/// because the peer writes the bytes.
pub trait QueueEntry: FromBytes + IntoBytes + Immutable + KnownLayout {}
impl<T: FromBytes + IntoBytes + Immutable + KnownLayout> QueueEntry for T {}

/// The queue header in the region. Only ever accessed word by word through atomics;
/// the struct pins the offsets.
#[repr(C)]
#[derive(Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct QueueHeader {
    pub tail: u32,
    _pad0: [u8; 60],
    pub head: u32,
    _pad1: [u8; 60],
    pub consumer_wants_signal: u32,
    _pad2: [u8; 60],
    pub producer_wants_signal: u32,
    _pad3: [u8; 60],
}

/// Byte offset of the first entry.
pub const HEADER_SIZE: usize = size_of::<QueueHeader>();

const _: () = {
    assert!(HEADER_SIZE == 256);
    assert!(offset_of!(QueueHeader, tail) == 0);
    assert!(offset_of!(QueueHeader, head) == 64);
    assert!(offset_of!(QueueHeader, consumer_wants_signal) == 128);
    assert!(offset_of!(QueueHeader, producer_wants_signal) == 192);
};

/// Alignment the region must have: that of the header's atomic words.
pub const REGION_ALIGN: usize = 4;

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The capacity is not a power of two (zero included).
    #[error("queue capacity {0} is not a power of two")]
    BadCapacity(u32),
    /// The region cannot hold the header and `capacity` entries (or that size
    /// overflows `usize`, in which case `needed` is `usize::MAX`).
    #[error("queue needs {needed:#x} bytes, region has {len:#x}")]
    RegionTooSmall { needed: usize, len: usize },
    /// The region does not start on a [`REGION_ALIGN`] boundary.
    #[error("queue region at {address:#x} is not {}-byte aligned", REGION_ALIGN)]
    Misaligned { address: usize },
    /// Both ends write the header, so both need the region read-write.
    #[error("queue region is mapped read-only")]
    ReadOnly,
    /// The peer's index is impossible: more than `capacity` entries in flight, or
    /// it moved backwards. The connection is corrupt; fault the peer.
    #[error("queue peer published impossible index {peer_index:#x} (ours is {own_index:#x})")]
    PeerMisbehaved { peer_index: u32, own_index: u32 },
    /// A region access failed. Construction rules this out; kept so that a broken
    /// invariant surfaces as an error rather than a panic.
    #[error("queue region access: {0}")]
    Region(RegionError),
}

crate::wrap_from!(QueueError { Region(RegionError) });

/// Why [`Producer::try_enqueue`] did not enqueue.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryEnqueueError<T> {
    /// No free slot; the value is handed back.
    #[error("queue is full")]
    Full(T),
    #[error("{0}")]
    Queue(QueueError),
}

impl<T> From<QueueError> for TryEnqueueError<T> {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

/// Layout arithmetic and (re)initialisation for a queue of `T`.
pub struct Queue<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Queue")
    }
}

impl<T: QueueEntry> Queue<T> {
    /// Bytes a region must have to hold a queue of `capacity` entries.
    pub fn layout_size(capacity: u32) -> Result<usize, QueueError> {
        Capacity::new(capacity).ok_or(QueueError::BadCapacity(capacity))?;
        (capacity as usize)
            .checked_mul(size_of::<T>())
            .and_then(|entries| entries.checked_add(HEADER_SIZE))
            .ok_or(QueueError::RegionTooSmall {
                needed: usize::MAX,
                len: 0,
            })
    }

    /// Resets the header to an empty queue. Only while neither end is attached.
    pub fn init(region: &Region<'_>, capacity: u32) -> Result<(), QueueError> {
        Self::init_at_index(region, capacity, 0)
    }

    /// Resets to an empty queue whose indices start at `index`, so tests can cross
    /// the `u32::MAX` wrap without pushing four billion entries first.
    #[doc(hidden)]
    pub fn init_at_index(region: &Region<'_>, capacity: u32, index: u32) -> Result<(), QueueError> {
        let (words, _) = Layout::<T>::check(region, capacity)?;
        for (word, value) in [
            (Word::Tail, index),
            (Word::Head, index),
            (Word::ConsumerWantsSignal, 0),
            (Word::ProducerWantsSignal, 0),
        ] {
            words.store(word, value, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The header words of a queue inside a region.
#[derive(Copy, Clone, Debug)]
struct RegionWords<'a> {
    tail: &'a AtomicU32,
    head: &'a AtomicU32,
    consumer_wants_signal: &'a AtomicU32,
    producer_wants_signal: &'a AtomicU32,
}

impl RegionWords<'_> {
    fn word(&self, word: Word) -> &AtomicU32 {
        match word {
            Word::Tail => self.tail,
            Word::Head => self.head,
            Word::ConsumerWantsSignal => self.consumer_wants_signal,
            Word::ProducerWantsSignal => self.producer_wants_signal,
        }
    }
}

impl SharedWords<Word> for RegionWords<'_> {
    fn load(&self, word: Word, order: Ordering) -> u32 {
        self.word(word).load(order)
    }

    fn store(&self, word: Word, value: u32, order: Ordering) {
        self.word(word).store(value, order);
    }

    fn fence_seq_cst(&self) {
        core::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// A region checked to hold a queue: its header words and its entry array.
struct Layout<T>(PhantomData<fn() -> T>);

impl<T: QueueEntry> Layout<T> {
    fn check<'a>(
        region: &Region<'a>,
        capacity: u32,
    ) -> Result<(RegionWords<'a>, Region<'a>), QueueError> {
        let needed = Queue::<T>::layout_size(capacity)?;
        if region.len() < needed {
            return Err(QueueError::RegionTooSmall {
                needed,
                len: region.len(),
            });
        }
        if !region.base_address().is_multiple_of(REGION_ALIGN) {
            return Err(QueueError::Misaligned {
                address: region.base_address(),
            });
        }
        if !region.perms().write {
            return Err(QueueError::ReadOnly);
        }
        let words = RegionWords {
            tail: region.atomic_u32(offset_of!(QueueHeader, tail))?,
            head: region.atomic_u32(offset_of!(QueueHeader, head))?,
            consumer_wants_signal: region
                .atomic_u32(offset_of!(QueueHeader, consumer_wants_signal))?,
            producer_wants_signal: region
                .atomic_u32(offset_of!(QueueHeader, producer_wants_signal))?,
        };
        let entries = region.subregion(HEADER_SIZE, needed - HEADER_SIZE)?;
        Ok((words, entries))
    }
}

/// Copies `values` into consecutive slots starting at `first_slot`, wrapping once at
/// the end of the array (so at most two copies, whatever the batch size).
fn write_slots<T: QueueEntry>(
    entries: &Region<'_>,
    capacity: u32,
    first_slot: u32,
    values: &[T],
) -> Result<(), RegionError> {
    let until_end = (capacity - first_slot) as usize;
    let (before_wrap, after_wrap) = values.split_at(values.len().min(until_end));
    entries.write_bytes(first_slot as usize * size_of::<T>(), before_wrap.as_bytes())?;
    if !after_wrap.is_empty() {
        entries.write_bytes(0, after_wrap.as_bytes())?;
    }
    Ok(())
}

fn read_slots<T: QueueEntry>(
    entries: &Region<'_>,
    capacity: u32,
    first_slot: u32,
    out: &mut [T],
) -> Result<(), RegionError> {
    let until_end = (capacity - first_slot) as usize;
    let split = out.len().min(until_end);
    let (before_wrap, after_wrap) = out.split_at_mut(split);
    entries.read_bytes(
        first_slot as usize * size_of::<T>(),
        before_wrap.as_mut_bytes(),
    )?;
    if !after_wrap.is_empty() {
        entries.read_bytes(0, after_wrap.as_mut_bytes())?;
    }
    Ok(())
}

/// One end of a queue: the producer ([`Producer`]) or the consumer ([`Consumer`]).
pub struct QueueEnd<'a, T, R> {
    words: RegionWords<'a>,
    entries: Region<'a>,
    index: Index<R>,
    _entry: PhantomData<fn() -> T>,
}

/// The producing end: the only side that writes entries and `tail`.
pub type Producer<'a, T> = QueueEnd<'a, T, Producing>;

/// The consuming end: the only side that writes `head`.
pub type Consumer<'a, T> = QueueEnd<'a, T, Consuming>;

impl<T, R: Role> fmt::Debug for QueueEnd<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(R::END).field("index", &self.index).finish()
    }
}

impl<'a, T: QueueEntry, R: Role> QueueEnd<'a, T, R> {
    /// Attaches to the queue in `region`, continuing from the indices it holds.
    pub fn new(region: Region<'a>, capacity: u32) -> Result<Self, QueueError> {
        let (words, entries) = Layout::<T>::check(&region, capacity)?;
        let capacity = Capacity::new(capacity).ok_or(QueueError::BadCapacity(capacity))?;
        let index = Index::attach(&words, capacity)?;
        Ok(Self {
            words,
            entries,
            index,
            _entry: PhantomData,
        })
    }

    pub fn capacity(&self) -> u32 {
        self.index.capacity().get()
    }

    /// Call after enqueueing (dequeueing): `true` means the peer asked to be woken
    /// and the caller must notify it now (the request is consumed).
    pub fn take_signal_request(&mut self) -> bool {
        self.index.take_signal_request(&self.words)
    }

    /// Asks the peer to notify us once it frees space (publishes entries). Prefer
    /// [`Self::prepare_to_sleep`], which also does the mandatory re-check.
    pub fn request_signal(&mut self) {
        self.index.request_signal(&self.words);
    }

    pub fn cancel_signal(&mut self) {
        self.index.cancel_signal(&self.words);
    }

    /// When full (empty): requests a signal, then re-checks (sDDF's "reprocess").
    /// `Ok(true)`: still full (empty), wait for a notification. `Ok(false)`: there
    /// is room now, carry on.
    pub fn prepare_to_sleep(&mut self) -> Result<bool, QueueError> {
        self.index.prepare_to_sleep(&self.words)
    }

    /// The one step both ends take: up to `wanted` entries are copied by
    /// `copy(entries, capacity, first_slot, count)` and published with one index
    /// store. Returns how many moved (0 when full/empty: `copy` is not called).
    fn transfer(
        &mut self,
        wanted: usize,
        copy: impl FnOnce(&Region<'a>, u32, u32, usize) -> Result<(), RegionError>,
    ) -> Result<usize, QueueError> {
        let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
        let count = self.index.room(&self.words, wanted)?.min(wanted);
        if count > 0 {
            copy(
                &self.entries,
                self.capacity(),
                self.index.slot(0),
                count as usize,
            )?;
            self.index.advance(&self.words, count);
        }
        Ok(count as usize)
    }
}

impl<T: QueueEntry> Producer<'_, T> {
    /// Free slots right now (re-reads the consumer's index).
    pub fn free_slots(&mut self) -> Result<u32, QueueError> {
        self.index.refresh(&self.words)
    }

    pub fn try_enqueue(&mut self, value: T) -> Result<(), TryEnqueueError<T>> {
        let sent = self.transfer(1, |entries, capacity, slot, _| {
            write_slots(entries, capacity, slot, core::slice::from_ref(&value))
        })?;
        if sent == 0 {
            return Err(TryEnqueueError::Full(value));
        }
        Ok(())
    }

    /// Enqueues as many of `values` as fit, in order, with one index publish.
    /// Returns how many went in (0 when full).
    pub fn enqueue_batch(&mut self, values: &[T]) -> Result<usize, QueueError> {
        self.transfer(values.len(), |entries, capacity, slot, n| {
            write_slots(entries, capacity, slot, &values[..n])
        })
    }
}

impl<T: QueueEntry> Consumer<'_, T> {
    /// Entries ready right now (re-reads the producer's index).
    pub fn len(&mut self) -> Result<u32, QueueError> {
        self.index.refresh(&self.words)
    }

    pub fn is_empty(&mut self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }

    /// The oldest entry, or `Ok(None)` when the queue is empty.
    pub fn dequeue(&mut self) -> Result<Option<T>, QueueError> {
        let mut value = T::new_zeroed();
        let got = self.transfer(1, |entries, capacity, slot, _| {
            read_slots(entries, capacity, slot, core::slice::from_mut(&mut value))
        })?;
        Ok((got == 1).then_some(value))
    }

    /// Fills `out` with as many entries as are ready, oldest first, with one index
    /// publish. Returns how many (0 when empty).
    pub fn dequeue_batch(&mut self, out: &mut [T]) -> Result<usize, QueueError> {
        self.transfer(out.len(), |entries, capacity, slot, n| {
            read_slots(entries, capacity, slot, &mut out[..n])
        })
    }
}
