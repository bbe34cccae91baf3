//! The control page both endpoints share: each endpoint writes its own index and
//! flag and only reads the other's, but the peer can scribble over all of it.

use core::sync::atomic::{AtomicU32, Ordering};

use ipc::{Region, RegionError};

use crate::protocol::{control_offsets as off, FEATURE_PENDING_SEND_SIZE, PAGE_SIZE};

/// References to the control page's words. Cheap to copy; obtained once when a ring
/// is attached so index updates cost one atomic access each.
#[derive(Copy, Clone)]
pub struct ControlPage<'a> {
    write_index: &'a AtomicU32,
    read_index: &'a AtomicU32,
    interrupt_mask: &'a AtomicU32,
    pending_send_size: &'a AtomicU32,
    feature_bits: &'a AtomicU32,
}

impl core::fmt::Debug for ControlPage<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ControlPage")
            .field("write_index", &self.write_index.load(Ordering::Relaxed))
            .field("read_index", &self.read_index.load(Ordering::Relaxed))
            .field(
                "interrupt_mask",
                &self.interrupt_mask.load(Ordering::Relaxed),
            )
            .field(
                "pending_send_size",
                &self.pending_send_size.load(Ordering::Relaxed),
            )
            .field("feature_bits", &self.feature_bits.load(Ordering::Relaxed))
            .finish()
    }
}

impl<'a> ControlPage<'a> {
    /// The control page at the start of `region`, which must be a whole writable page
    /// (both endpoints store into it).
    pub fn from_region(region: Region<'a>) -> Result<Self, RegionError> {
        if region.len() < PAGE_SIZE {
            return Err(RegionError::OutOfBounds {
                offset: 0,
                len: PAGE_SIZE,
                region_len: region.len(),
            });
        }
        if !region.perms().write {
            return Err(RegionError::ReadOnly);
        }
        Ok(Self {
            write_index: region.atomic_u32(off::WRITE_INDEX)?,
            read_index: region.atomic_u32(off::READ_INDEX)?,
            interrupt_mask: region.atomic_u32(off::INTERRUPT_MASK)?,
            pending_send_size: region.atomic_u32(off::PENDING_SEND_SIZE)?,
            feature_bits: region.atomic_u32(off::FEATURE_BITS)?,
        })
    }

    /// For memory that is not a `Region` (tests, other backends): the first 17 words
    /// of the control page.
    pub fn from_words(words: &'a [AtomicU32; 17]) -> Self {
        Self {
            write_index: &words[off::WRITE_INDEX / 4],
            read_index: &words[off::READ_INDEX / 4],
            interrupt_mask: &words[off::INTERRUPT_MASK / 4],
            pending_send_size: &words[off::PENDING_SEND_SIZE / 4],
            feature_bits: &words[off::FEATURE_BITS / 4],
        }
    }

    /// The word the signalling protocol ([`crate::signal`]) names.
    #[inline]
    pub fn word(&self, word: crate::signal::Word) -> &'a AtomicU32 {
        use crate::signal::Word;
        match word {
            Word::WriteIndex => self.write_index,
            Word::ReadIndex => self.read_index,
            Word::InterruptMask => self.interrupt_mask,
            Word::PendingSendSize => self.pending_send_size,
            Word::FeatureBits => self.feature_bits,
        }
    }

    pub fn write_index(&self) -> &'a AtomicU32 {
        self.write_index
    }

    pub fn read_index(&self) -> &'a AtomicU32 {
        self.read_index
    }

    pub fn interrupt_mask(&self) -> &'a AtomicU32 {
        self.interrupt_mask
    }

    pub fn pending_send_size(&self) -> &'a AtomicU32 {
        self.pending_send_size
    }

    pub fn feature_bits(&self) -> &'a AtomicU32 {
        self.feature_bits
    }

    /// What the endpoint that allocates a ring does before offering it (Linux's
    /// `hv_ringbuffer_init`): both indices zero, nothing masked or pending, and the
    /// pending-send-size feature advertised.
    pub fn initialize(&self) {
        self.write_index.store(0, Ordering::Relaxed);
        self.read_index.store(0, Ordering::Relaxed);
        self.interrupt_mask.store(0, Ordering::Relaxed);
        self.pending_send_size.store(0, Ordering::Relaxed);
        self.feature_bits
            .store(FEATURE_PENDING_SEND_SIZE, Ordering::Release);
    }
}
