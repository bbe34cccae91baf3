//! A PD's address space: everything below [`RESERVED_BASE`] is the PD's own
//! (program segments and system.xml maps); the kernel places the info page, the IPC
//! buffer and the stack above it. The upper half belongs to the kernel (supervisor
//! only). Page 0 is never mapped.

pub const PAGE_SIZE: u64 = 4096;

/// First address the kernel reserves for per-PD pages.
pub const RESERVED_BASE: u64 = 0x0000_7f00_0000_0000;
/// End of the user half (exclusive).
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// The read-only [`crate::info`] page. rdi at entry.
pub const INFO_VADDR: u64 = RESERVED_BASE;
/// The IPC buffer (message registers). rsi at entry. A guard page on each side.
pub const IPC_BUFFER_VADDR: u64 = RESERVED_BASE + 0x2000;
/// The stack grows down from here; the page below the stack is a guard.
pub const STACK_TOP: u64 = RESERVED_BASE + 0x1000_0000;
/// The largest stack that leaves the guard page between stack and IPC buffer.
pub const MAX_STACK_SIZE: u64 = STACK_TOP - IPC_BUFFER_VADDR - 2 * PAGE_SIZE;

/// Whether `[vaddr, vaddr + size)` lies in the part of the address space a PD's
/// program and maps may use.
pub fn is_pd_range(vaddr: u64, size: u64) -> bool {
    vaddr >= PAGE_SIZE
        && vaddr
            .checked_add(size)
            .is_some_and(|end| end <= RESERVED_BASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pd_ranges_stay_below_the_reserved_area_and_off_page_zero() {
        assert!(is_pd_range(0x40_0000, 0x1000));
        assert!(is_pd_range(RESERVED_BASE - PAGE_SIZE, PAGE_SIZE));
        assert!(!is_pd_range(RESERVED_BASE - PAGE_SIZE, PAGE_SIZE + 1));
        assert!(!is_pd_range(0, PAGE_SIZE));
        assert!(!is_pd_range(u64::MAX - 10, 100));
    }

    #[test]
    fn the_stack_and_ipc_buffer_do_not_touch() {
        const { assert!(STACK_TOP - MAX_STACK_SIZE > IPC_BUFFER_VADDR + PAGE_SIZE) };
        const { assert!(IPC_BUFFER_VADDR > INFO_VADDR + PAGE_SIZE) };
    }
}
