//! Relid allocation.
//!
//! Relids are one namespace across everything the guest sees on this connection: the
//! paravisor's own offers and host offers a relay forwards (seed 001: the guest keys
//! channels by relid whichever SynIC the channel signals through). A relay keeps the
//! host's relid by [`RelidAllocator::reserve`]ing it; the paravisor's offers are
//! allocated from `first_dynamic` upward, so configuring `first_dynamic` above the
//! host's range keeps the two from ever colliding.

use vmbus_protocol::{Relid, MAX_RELID};

const WORDS: usize = (MAX_RELID as usize + 1).div_ceil(64);

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelidError {
    /// Outside 1..=2047 (0 is the shared-interrupt bit, never a channel).
    #[error("relid {0} is out of range")]
    OutOfRange(u32),
    #[error("{0} is in use")]
    InUse(Relid),
    #[error("no relid left")]
    Exhausted,
}

#[derive(Clone, Debug)]
pub struct RelidAllocator {
    used: [u64; WORDS],
    first_dynamic: u32,
    count: usize,
}

impl RelidAllocator {
    /// `first_dynamic` is clamped to 1..=2047.
    pub fn new(first_dynamic: u32) -> Self {
        Self {
            used: [0; WORDS],
            first_dynamic: first_dynamic.clamp(1, MAX_RELID),
            count: 0,
        }
    }

    pub fn is_allocated(&self, relid: Relid) -> bool {
        Self::slot(relid.0)
            .map(|(w, b)| self.used[w] & b != 0)
            .unwrap_or(false)
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The lowest free relid at or above `first_dynamic`.
    pub fn allocate(&mut self) -> Result<Relid, RelidError> {
        let relid = (self.first_dynamic..=MAX_RELID)
            .find(|&r| !self.is_allocated(Relid(r)))
            .ok_or(RelidError::Exhausted)?;
        self.mark(relid);
        Ok(Relid(relid))
    }

    /// Claims a specific relid (a relayed host offer keeps the host's number).
    pub fn reserve(&mut self, relid: Relid) -> Result<(), RelidError> {
        Self::slot(relid.0).ok_or(RelidError::OutOfRange(relid.0))?;
        if self.is_allocated(relid) {
            return Err(RelidError::InUse(relid));
        }
        self.mark(relid.0);
        Ok(())
    }

    /// Returns a relid; freeing one that is not allocated is a no-op.
    pub fn release(&mut self, relid: Relid) {
        if let Some((w, b)) = Self::slot(relid.0) {
            if self.used[w] & b != 0 {
                self.used[w] &= !b;
                self.count -= 1;
            }
        }
    }

    fn mark(&mut self, relid: u32) {
        if let Some((w, b)) = Self::slot(relid) {
            if self.used[w] & b == 0 {
                self.used[w] |= b;
                self.count += 1;
            }
        }
    }

    fn slot(relid: u32) -> Option<(usize, u64)> {
        if relid == 0 || relid > MAX_RELID {
            return None;
        }
        Some(((relid / 64) as usize, 1u64 << (relid % 64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_allocation_starts_at_first_dynamic_and_reuses_freed_ids() {
        let mut a = RelidAllocator::new(10);
        assert_eq!(a.allocate(), Ok(Relid(10)));
        assert_eq!(a.allocate(), Ok(Relid(11)));
        a.release(Relid(10));
        assert_eq!(a.allocate(), Ok(Relid(10)));
        assert_eq!(a.count(), 2);
    }

    #[test]
    fn a_relay_reserves_host_relids_without_colliding() {
        let mut a = RelidAllocator::new(64);
        assert_eq!(a.reserve(Relid(3)), Ok(()));
        assert_eq!(a.reserve(Relid(3)), Err(RelidError::InUse(Relid(3))));
        assert_eq!(a.allocate(), Ok(Relid(64)));
        // A host relid in the dynamic range is still honoured if free...
        assert_eq!(a.reserve(Relid(65)), Ok(()));
        // ...and dynamic allocation steps around it.
        assert_eq!(a.allocate(), Ok(Relid(66)));
        assert_eq!(a.reserve(Relid(0)), Err(RelidError::OutOfRange(0)));
        assert_eq!(a.reserve(Relid(2048)), Err(RelidError::OutOfRange(2048)));
    }

    #[test]
    fn exhaustion_is_reported() {
        let mut a = RelidAllocator::new(2046);
        assert!(a.allocate().is_ok());
        assert!(a.allocate().is_ok());
        assert_eq!(a.allocate(), Err(RelidError::Exhausted));
        a.release(Relid(5)); // never allocated: no effect
        assert_eq!(a.count(), 2);
    }
}
