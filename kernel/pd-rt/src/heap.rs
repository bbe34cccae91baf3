//! A heap for PDs that need `alloc` (vmbus-server and storvsp keep growable tables):
//! a first-fit, address-ordered free list with coalescing, over an arena that lives
//! in the PD's own bss, so the kernel needs no memory system call. Single-threaded,
//! like every PD.
//!
//! Use it with `pd_rt::global_heap!(BYTES);` in the PD binary.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// Per block: its size at offset 0; free blocks keep the next free block at 8.
/// An allocation's start is stored just below its payload.
const HEADER: usize = 16;
/// The smallest block worth splitting off.
const MIN_BLOCK: usize = 32;

/// The free list over one arena. Addresses are plain `usize`s inside the arena;
/// 0 ends the list.
#[derive(Debug)]
pub struct FreeList {
    head: usize,
}

impl FreeList {
    /// # Safety
    /// `base..base+len` must be writable memory used by nothing else for the
    /// list's lifetime, and `base` 16-byte aligned.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        let len = len & !15;
        if len < MIN_BLOCK {
            return Self { head: 0 };
        }
        let head = base as usize;
        // SAFETY: inside the arena, aligned (contract above).
        unsafe {
            write(head, len);
            write(head + 8, 0);
        }
        Self { head }
    }

    /// A block for `layout`, or null when no free block is large enough.
    ///
    /// # Safety
    /// The list must have been made by [`FreeList::new`] and only changed by these
    /// methods.
    pub unsafe fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let align = layout.align().max(16);
        let Some(need) = (HEADER + (align - 16))
            .checked_add(layout.size())
            .and_then(|n| n.checked_next_multiple_of(16))
        else {
            return core::ptr::null_mut();
        };
        let (mut prev, mut cur) = (0, self.head);
        while cur != 0 {
            // SAFETY: `cur` is a free block header inside the arena.
            let (size, next) = unsafe { (read(cur), read(cur + 8)) };
            if size >= need {
                if size - need >= MIN_BLOCK {
                    let tail = cur + need;
                    // SAFETY: the tail lies inside the block being split.
                    unsafe {
                        write(tail, size - need);
                        write(tail + 8, next);
                        write(cur, need);
                    }
                    self.link(prev, tail);
                } else {
                    self.link(prev, next);
                }
                let payload = (cur + HEADER).next_multiple_of(align);
                // SAFETY: payload - 8 >= cur + 8 lies inside the block.
                unsafe { write(payload - 8, cur) };
                return payload as *mut u8;
            }
            (prev, cur) = (cur, next);
        }
        core::ptr::null_mut()
    }

    /// Returns a block and merges it with free neighbours.
    ///
    /// # Safety
    /// `ptr` must come from [`FreeList::alloc`] on this list and not be freed yet.
    pub unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: alloc stored the block start below the payload and its size at it.
        let (block, size) = unsafe {
            let block = read(ptr as usize - 8);
            (block, read(block))
        };
        let (mut prev, mut cur) = (0, self.head);
        while cur != 0 && cur < block {
            prev = cur;
            // SAFETY: free block headers inside the arena.
            cur = unsafe { read(cur + 8) };
        }
        let (mut size, mut next) = (size, cur);
        // SAFETY: every address read or written is a block header in the arena.
        unsafe {
            if cur != 0 && block + size == cur {
                size += read(cur);
                next = read(cur + 8);
            }
            if prev != 0 && prev + read(prev) == block {
                write(prev, read(prev) + size);
                write(prev + 8, next);
            } else {
                write(block, size);
                write(block + 8, next);
                self.link(prev, block);
            }
        }
    }

    fn link(&mut self, prev: usize, to: usize) {
        if prev == 0 {
            self.head = to;
        } else {
            // SAFETY: `prev` is a free block header in the arena.
            unsafe { write(prev + 8, to) };
        }
    }
}

unsafe fn read(addr: usize) -> usize {
    // SAFETY: callers pass 8-aligned addresses of block headers in the arena.
    unsafe { (addr as *const usize).read() }
}

unsafe fn write(addr: usize, v: usize) {
    // SAFETY: as for `read`.
    unsafe { (addr as *mut usize).write(v) }
}

#[repr(C, align(4096))]
struct Arena<const N: usize>([u8; N]);

/// A global allocator over an `N`-byte arena in the PD's bss.
pub struct Heap<const N: usize> {
    arena: UnsafeCell<Arena<N>>,
    list: UnsafeCell<Option<FreeList>>,
}

impl<const N: usize> core::fmt::Debug for Heap<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Heap({N} bytes)")
    }
}

// SAFETY: a PD is a single thread, and the kernel never runs PD code concurrently.
unsafe impl<const N: usize> Sync for Heap<N> {}

impl<const N: usize> Heap<N> {
    pub const fn new() -> Self {
        Self {
            arena: UnsafeCell::new(Arena([0; N])),
            list: UnsafeCell::new(None),
        }
    }

    /// Runs `f` on the free list, made on first use.
    fn with_list<R>(&self, f: impl FnOnce(&mut FreeList) -> R) -> R {
        // SAFETY: single-threaded (see Sync), and the reference lives only for `f`,
        // which does not re-enter the allocator.
        let slot = unsafe { &mut *self.list.get() };
        // SAFETY: the arena is ours alone, 4096-aligned, N bytes.
        let list = slot.get_or_insert_with(|| unsafe { FreeList::new(self.arena.get().cast(), N) });
        f(list)
    }
}

impl<const N: usize> Default for Heap<N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks never overlap (first fit over a free list of disjoint blocks) and
// are aligned as the layout asks.
unsafe impl<const N: usize> GlobalAlloc for Heap<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the list is only changed through these methods.
        self.with_list(|l| unsafe { l.alloc(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` here.
        self.with_list(|l| unsafe { l.dealloc(ptr) })
    }
}

/// Defines the PD's global allocator: an arena of `$bytes` in its bss.
#[macro_export]
macro_rules! global_heap {
    ($bytes:expr) => {
        #[global_allocator]
        static PD_HEAP: $crate::heap::Heap<{ $bytes }> = $crate::heap::Heap::new();
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[repr(C, align(4096))]
    struct Space([u8; 1 << 16]);

    fn space() -> std::boxed::Box<Space> {
        std::boxed::Box::new(Space([0; 1 << 16]))
    }

    proptest! {
        /// Random allocations and frees: blocks are aligned, inside the arena, never
        /// overlap, keep their contents; after freeing everything the whole arena
        /// is one block again.
        #[test]
        fn blocks_are_disjoint_aligned_and_coalesce(
            ops in proptest::collection::vec((any::<bool>(), 1usize..3000, 0u32..8, any::<prop::sample::Index>()), 1..200)
        ) {
            let mut mem = space();
            let base = mem.0.as_mut_ptr() as usize;
            // SAFETY: the test owns `mem`.
            let mut list = unsafe { FreeList::new(mem.0.as_mut_ptr(), mem.0.len()) };
            let mut live: Vec<(usize, usize, u8)> = Vec::new();
            for (i, (do_alloc, size, align_log, pick)) in ops.into_iter().enumerate() {
                if do_alloc || live.is_empty() {
                    let layout = Layout::from_size_align(size, 1 << align_log).unwrap();
                    // SAFETY: list used only through its methods.
                    let p = unsafe { list.alloc(layout) } as usize;
                    if p == 0 {
                        continue;
                    }
                    prop_assert_eq!(p % layout.align(), 0);
                    prop_assert!(p >= base && p + size <= base + mem.0.len());
                    for &(q, n, _) in &live {
                        prop_assert!(p + size <= q || q + n <= p, "overlap");
                    }
                    let tag = i as u8;
                    // SAFETY: the block is ours.
                    unsafe { core::ptr::write_bytes(p as *mut u8, tag, size) };
                    live.push((p, size, tag));
                } else {
                    let (p, n, tag) = live.swap_remove(pick.index(live.len()));
                    // SAFETY: reading our own block.
                    let bytes = unsafe { core::slice::from_raw_parts(p as *const u8, n) };
                    prop_assert!(bytes.iter().all(|&b| b == tag), "contents changed");
                    // SAFETY: allocated above, freed once.
                    unsafe { list.dealloc(p as *mut u8) };
                }
            }
            for (p, _, _) in live.drain(..) {
                // SAFETY: allocated above, freed once.
                unsafe { list.dealloc(p as *mut u8) };
            }
            let all = Layout::from_size_align(mem.0.len() - HEADER, 16).unwrap();
            // SAFETY: list used only through its methods.
            prop_assert!(!unsafe { list.alloc(all) }.is_null(), "not coalesced back into one block");
        }
    }

    #[test]
    fn an_oversized_request_fails_cleanly() {
        let mut mem = space();
        // SAFETY: the test owns `mem`.
        let mut list = unsafe { FreeList::new(mem.0.as_mut_ptr(), mem.0.len()) };
        let huge = Layout::from_size_align(isize::MAX as usize - 64, 16).unwrap();
        // SAFETY: list used only through its methods.
        assert!(unsafe { list.alloc(huge) }.is_null());
        let big = Layout::from_size_align(1 << 17, 16).unwrap();
        // SAFETY: as above.
        assert!(unsafe { list.alloc(big) }.is_null());
    }
}
