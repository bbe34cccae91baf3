//! Ready queues: one FIFO per priority, a bitmap to find the highest non-empty
//! one in a few instructions. Intrusive links (one `next` per PD), no allocation.

use kernel_abi::image::MAX_PDS;

const NONE: u8 = 0xff;

#[derive(Clone, Debug)]
pub struct ReadyQueue {
    head: [u8; 256],
    tail: [u8; 256],
    next: [u8; MAX_PDS],
    queued: u64,
    bitmap: [u64; 4],
}

impl Default for ReadyQueue {
    fn default() -> Self {
        Self {
            head: [NONE; 256],
            tail: [NONE; 256],
            next: [NONE; MAX_PDS],
            queued: 0,
            bitmap: [0; 4],
        }
    }
}

impl ReadyQueue {
    pub fn contains(&self, pd: u8) -> bool {
        self.queued & (1 << pd) != 0
    }

    /// Appends `pd` at `prio`; a PD already queued stays where it is.
    #[inline(always)]
    pub fn push_back(&mut self, pd: u8, prio: u8) {
        if self.contains(pd) || usize::from(pd) >= MAX_PDS {
            return;
        }
        let p = usize::from(prio);
        self.next[usize::from(pd)] = NONE;
        match self.tail[p] {
            NONE => self.head[p] = pd,
            t => self.next[usize::from(t)] = pd,
        }
        self.tail[p] = pd;
        self.mark(pd, prio);
    }

    /// Puts `pd` first at `prio`: a preempted PD resumes before its peers.
    #[inline(always)]
    pub fn push_front(&mut self, pd: u8, prio: u8) {
        if self.contains(pd) || usize::from(pd) >= MAX_PDS {
            return;
        }
        let p = usize::from(prio);
        self.next[usize::from(pd)] = self.head[p];
        if self.head[p] == NONE {
            self.tail[p] = pd;
        }
        self.head[p] = pd;
        self.mark(pd, prio);
    }

    #[inline(always)]
    fn mark(&mut self, pd: u8, prio: u8) {
        self.queued |= 1 << pd;
        self.bitmap[usize::from(prio / 64)] |= 1 << (prio % 64);
    }

    /// The highest priority with a queued PD. Unrolled: it is on every fast path.
    #[inline(always)]
    pub fn highest(&self) -> Option<u8> {
        let [b0, b1, b2, b3] = self.bitmap;
        let (word, bits) = match () {
            _ if b3 != 0 => (3, b3),
            _ if b2 != 0 => (2, b2),
            _ if b1 != 0 => (1, b1),
            _ if b0 != 0 => (0, b0),
            _ => return None,
        };
        Some((word * 64 + 63 - bits.leading_zeros()) as u8)
    }

    /// Removes and returns the first PD at the highest priority.
    #[inline(always)]
    pub fn pop_highest(&mut self) -> Option<u8> {
        let prio = self.highest()?;
        let p = usize::from(prio);
        let pd = self.head[p];
        self.head[p] = self.next[usize::from(pd)];
        if self.head[p] == NONE {
            self.tail[p] = NONE;
            self.bitmap[p / 64] &= !(1 << (p % 64));
        }
        self.queued &= !(1 << pd);
        Some(pd)
    }

    /// The PDs queued at `prio`, first to run first.
    #[cfg(test)]
    fn order(&self, prio: u8) -> std::vec::Vec<u8> {
        let mut out = std::vec::Vec::new();
        let mut cur = self.head[usize::from(prio)];
        while cur != NONE {
            out.push(cur);
            cur = self.next[usize::from(cur)];
        }
        out
    }

    /// Removes `pd` from wherever it is queued at `prio`.
    pub fn remove(&mut self, pd: u8, prio: u8) {
        if !self.contains(pd) {
            return;
        }
        let p = usize::from(prio);
        let mut prev = NONE;
        let mut cur = self.head[p];
        while cur != NONE {
            if cur == pd {
                let after = self.next[usize::from(cur)];
                match prev {
                    NONE => self.head[p] = after,
                    q => self.next[usize::from(q)] = after,
                }
                if self.tail[p] == pd {
                    self.tail[p] = prev;
                }
                break;
            }
            prev = cur;
            cur = self.next[usize::from(cur)];
        }
        if self.head[p] == NONE {
            self.bitmap[p / 64] &= !(1 << (p % 64));
        }
        self.queued &= !(1 << pd);
    }
}

/// Equal when the same PDs are queued in the same order: links of unqueued PDs
/// are stale and do not count.
#[cfg(test)]
impl PartialEq for ReadyQueue {
    fn eq(&self, other: &Self) -> bool {
        self.queued == other.queued
            && self.bitmap == other.bitmap
            && (0..=255u8).all(|p| self.order(p) == other.order(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::collections::VecDeque;
    use std::vec::Vec;

    #[test]
    fn highest_priority_first_fifo_within_a_priority() {
        let mut q = ReadyQueue::default();
        q.push_back(1, 10);
        q.push_back(2, 200);
        q.push_back(3, 10);
        q.push_front(4, 10);
        let order: Vec<u8> = core::iter::from_fn(|| q.pop_highest()).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Back(u8, u8),
        Front(u8, u8),
        Pop,
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..8, any::<u8>()).prop_map(|(a, b)| Op::Back(a, b)),
            (0u8..8, any::<u8>()).prop_map(|(a, b)| Op::Front(a, b)),
            Just(Op::Pop),
            (0u8..8).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The queue behaves like a map of priority -> deque.
        #[test]
        fn matches_a_simple_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut q = ReadyQueue::default();
            let mut model: BTreeMap<u8, VecDeque<u8>> = BTreeMap::new();
            let mut prio_of: BTreeMap<u8, u8> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Back(pd, p) | Op::Front(pd, p) if prio_of.contains_key(&pd) => {
                        let _ = p;
                        // Already queued: no change, in both.
                        if let Op::Back(..) = op { q.push_back(pd, p) } else { q.push_front(pd, p) }
                    }
                    Op::Back(pd, p) => { q.push_back(pd, p); model.entry(p).or_default().push_back(pd); prio_of.insert(pd, p); }
                    Op::Front(pd, p) => { q.push_front(pd, p); model.entry(p).or_default().push_front(pd); prio_of.insert(pd, p); }
                    Op::Pop => {
                        let want = model.iter_mut().next_back().and_then(|(_, d)| d.pop_front());
                        model.retain(|_, d| !d.is_empty());
                        if let Some(pd) = want { prio_of.remove(&pd); }
                        prop_assert_eq!(q.pop_highest(), want);
                    }
                    Op::Remove(pd) => {
                        if let Some(p) = prio_of.remove(&pd) {
                            q.remove(pd, p);
                            if let Some(d) = model.get_mut(&p) { d.retain(|&x| x != pd); }
                            model.retain(|_, d| !d.is_empty());
                        }
                    }
                }
                prop_assert_eq!(q.highest(), model.keys().next_back().copied());
            }
        }
    }
}
