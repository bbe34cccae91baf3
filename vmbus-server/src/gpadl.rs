//! GPADL assembly: a header message, then body messages until the promised range
//! bytes have arrived, then validation against guest memory.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use vmbus_protocol::gpa::{self, GpaRangeError, GpaRanges};
use vmbus_protocol::{GpadlId, Relid};

use crate::config::{Limits, PfnRange};

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpadlError {
    /// A live GPADL already has this handle.
    #[error("GPADL handle already in use{}", still_being_sent(.complete))]
    Duplicate { complete: bool },
    /// No GPADL with this handle (or not one the message may name).
    #[error("no {0}")]
    Unknown(GpadlId),
    /// A GPADL_BODY for a GPADL that already has all its bytes.
    #[error("{0} already has all its pages")]
    AlreadyComplete(GpadlId),
    /// The GPADL belongs to another channel than the message names.
    #[error("{gpadl} belongs to {owner}")]
    WrongChannel { gpadl: GpadlId, owner: Relid },
    /// The ring of an open channel.
    #[error("{0} is the ring of an open channel")]
    InUse(GpadlId),
    /// `range_buf_len` is zero or not a multiple of 8.
    #[error("range buffer length {0} is not a positive multiple of 8")]
    BadLength(u16),
    /// The page list is malformed.
    #[error(transparent)]
    Ranges(GpaRangeError),
    /// A page number outside guest RAM.
    #[error("page {pfn:#x} is outside guest memory")]
    OutsideMemory { pfn: u64 },
    /// The limits on GPADL count or pages are reached.
    #[error("GPADL limits reached")]
    Limit,
}

/// How [`GpadlError::Duplicate`] tells the two cases apart.
fn still_being_sent(complete: &bool) -> &'static str {
    if *complete {
        ""
    } else {
        " by a GPADL still being sent"
    }
}

#[derive(Debug)]
pub(crate) struct Gpadl {
    pub relid: Relid,
    range_count: u16,
    /// Range headers and page numbers, in wire order.
    words: Vec<u64>,
    /// How many words the header promised.
    expected: usize,
    /// Passed validation and is mapped.
    pub ready: bool,
    /// The ring of an open channel.
    pub in_use: bool,
}

impl Gpadl {
    pub fn is_complete(&self) -> bool {
        self.words.len() == self.expected
    }

    pub fn ranges(&self) -> Result<GpaRanges<'_>, GpaRangeError> {
        gpa::validate(&self.words, usize::from(self.range_count))
    }

    /// Appends whole words from `bytes`, ignoring whatever exceeds the promised
    /// length (some clients always send full-size messages).
    fn append(&mut self, bytes: &[u8]) {
        let room = self.expected - self.words.len();
        for chunk in bytes.chunks_exact(8).take(room) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.words.push(u64::from_le_bytes(word));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct GpadlTable {
    map: BTreeMap<GpadlId, Gpadl>,
    /// Words promised by all live GPADLs; bounded by `Limits::max_gpadl_pages`.
    words: usize,
}

impl GpadlTable {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, id: GpadlId) -> Option<&Gpadl> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: GpadlId) -> Option<&mut Gpadl> {
        self.map.get_mut(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (GpadlId, &Gpadl)> {
        self.map.iter().map(|(&id, g)| (id, g))
    }

    pub fn words(&self) -> usize {
        self.words
    }

    /// Starts a GPADL from its header message. Returns whether it is already complete.
    pub fn begin(
        &mut self,
        id: GpadlId,
        relid: Relid,
        range_buf_len: u16,
        range_count: u16,
        data: &[u8],
        limits: &Limits,
    ) -> Result<bool, GpadlError> {
        if let Some(existing) = self.map.get(&id) {
            return Err(GpadlError::Duplicate {
                complete: existing.is_complete(),
            });
        }
        if range_buf_len == 0 || !range_buf_len.is_multiple_of(8) {
            return Err(GpadlError::BadLength(range_buf_len));
        }
        if range_count == 0 {
            return Err(GpadlError::Ranges(GpaRangeError::NoRanges));
        }
        let expected = usize::from(range_buf_len / 8);
        if self.map.len() >= limits.max_gpadls
            || self.words.saturating_add(expected) > limits.max_gpadl_pages
        {
            return Err(GpadlError::Limit);
        }
        let mut gpadl = Gpadl {
            relid,
            range_count,
            words: Vec::new(),
            expected,
            ready: false,
            in_use: false,
        };
        if gpadl.words.try_reserve_exact(expected).is_err() {
            return Err(GpadlError::Limit);
        }
        gpadl.append(data);
        let complete = gpadl.is_complete();
        self.words += expected;
        self.map.insert(id, gpadl);
        Ok(complete)
    }

    /// Adds a body message's page numbers. Returns the owner and whether the GPADL
    /// is now complete.
    pub fn body(&mut self, id: GpadlId, data: &[u8]) -> Result<(Relid, bool), GpadlError> {
        let gpadl = self.map.get_mut(&id).ok_or(GpadlError::Unknown(id))?;
        if gpadl.is_complete() {
            return Err(GpadlError::AlreadyComplete(id));
        }
        gpadl.append(data);
        Ok((gpadl.relid, gpadl.is_complete()))
    }

    /// Checks a complete GPADL's page list and that every page is guest RAM.
    pub fn validate(&self, id: GpadlId, memory: &[PfnRange]) -> Result<(), GpadlError> {
        let gpadl = self.map.get(&id).ok_or(GpadlError::Unknown(id))?;
        let ranges = gpadl.ranges().map_err(GpadlError::Ranges)?;
        for pfn in ranges.pfns() {
            if !memory.iter().any(|r| r.contains(pfn)) {
                return Err(GpadlError::OutsideMemory { pfn });
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, id: GpadlId) -> Option<Gpadl> {
        let gpadl = self.map.remove(&id)?;
        self.words -= gpadl.expected;
        Some(gpadl)
    }

    /// Removes every GPADL `select` picks, handing each to `removed`.
    pub fn drain_where(
        &mut self,
        mut select: impl FnMut(&Gpadl) -> bool,
        mut removed: impl FnMut(GpadlId, Gpadl),
    ) {
        let ids: Vec<GpadlId> = self
            .map
            .iter()
            .filter(|(_, g)| select(g))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(g) = self.remove(id) {
                removed(id, g);
            }
        }
    }

    /// Recomputes the word total, for invariant checks.
    pub fn recount(&self) -> usize {
        self.map.values().map(|g| g.expected).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    const MEM: [PfnRange; 1] = [PfnRange {
        start: 0x100,
        count: 0x100,
    }];

    #[test]
    fn a_gpadl_assembles_across_messages() {
        let mut t = GpadlTable::default();
        let words = vec![gpa::range_header(3 * 4096, 0), 0x100, 0x101, 0x102];
        let data = bytes(&words);
        let limits = Limits::default();
        assert_eq!(
            t.begin(GpadlId(1), Relid(2), 32, 1, &data[..16], &limits),
            Ok(false)
        );
        assert_eq!(t.body(GpadlId(1), &data[16..24]), Ok((Relid(2), false)));
        // Oversized tails are cut at the promised length.
        let mut tail = data[24..].to_vec();
        tail.extend([0xff; 24]);
        assert_eq!(t.body(GpadlId(1), &tail), Ok((Relid(2), true)));
        assert_eq!(
            t.body(GpadlId(1), &tail),
            Err(GpadlError::AlreadyComplete(GpadlId(1)))
        );
        assert_eq!(t.validate(GpadlId(1), &MEM), Ok(()));
        assert_eq!(t.words(), 4);
        t.remove(GpadlId(1));
        assert_eq!(t.words(), 0);
    }

    #[test]
    fn bad_headers_and_pages_are_refused() {
        let mut t = GpadlTable::default();
        let limits = Limits::default();
        assert_eq!(
            t.begin(GpadlId(1), Relid(1), 12, 1, &[], &limits),
            Err(GpadlError::BadLength(12))
        );
        assert_eq!(
            t.begin(GpadlId(1), Relid(1), 0, 1, &[], &limits),
            Err(GpadlError::BadLength(0))
        );
        let data = bytes(&[gpa::range_header(4096, 0), 0x200]);
        assert_eq!(
            t.begin(GpadlId(1), Relid(1), 16, 1, &data, &limits),
            Ok(true)
        );
        assert_eq!(
            t.validate(GpadlId(1), &MEM),
            Err(GpadlError::OutsideMemory { pfn: 0x200 })
        );
        assert_eq!(
            t.begin(GpadlId(1), Relid(1), 16, 1, &data, &limits),
            Err(GpadlError::Duplicate { complete: true })
        );
    }

    #[test]
    fn limits_bound_what_a_guest_can_make_the_server_hold() {
        let mut t = GpadlTable::default();
        let limits = Limits {
            max_gpadls: 2,
            max_gpadl_pages: 10,
            max_pending_messages: 1,
        };
        // (handle, range bytes, result): the page limit counts 8-byte words of the
        // range lists, here 10.
        let steps = [
            (1, 64, Ok(false)),
            (2, 24, Err(GpadlError::Limit)), // 8 + 3 words
            (2, 16, Ok(false)),              // 8 + 2 words
            (3, 8, Err(GpadlError::Limit)),  // a third GPADL
        ];
        for (id, len, result) in steps {
            assert_eq!(
                t.begin(GpadlId(id), Relid(1), len, 1, &[], &limits),
                result,
                "{id}"
            );
        }
    }
}
