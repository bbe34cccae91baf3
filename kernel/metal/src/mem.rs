//! Physical memory: the boot memory map, a bump frame allocator, and the kernel's
//! own page tables (kernel image at -2 GiB with per-section rights, all RAM at
//! [`PHYS_OFFSET`], where the image's code and read-only data are read-only). PDs'
//! tables share the kernel half; the user half is theirs.
#![allow(unsafe_code)]

use core::ptr::addr_of;

use kernel_core::paging::{self, PageSize, PhysMem, NO_EXECUTE, WRITABLE};

use crate::kprintln;

/// Where all of RAM appears in the kernel half.
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
/// Where the kernel image starts (the PVH boot stub, see link.ld).
pub const KERNEL_PHYS_START: u64 = 0x10_0000;
/// The boot tables map this much RAM one to one. Only the kernel's own page tables
/// are allocated while they are live (from the bottom of the free RAM); everything
/// after that goes through the physical window, which covers all of the RAM range.
const BOOT_MAPPED: u64 = 1 << 30;
/// What building the kernel's tables may take from the bottom of free RAM (a few
/// tables; a 3 GiB window needs five, plus one per 2 MiB of kernel image).
const BOOT_TABLES_ROOM: u64 = 1 << 20;
const PAGE: u64 = 4096;

extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __kernel_end: u8;
}

/// Whether SMAP is on, so trap entry must clear RFLAGS.AC (a PD can set it).
pub static mut SMAP: bool = false;

/// 0 while the boot identity map is live, [`PHYS_OFFSET`] afterwards.
static mut WINDOW: u64 = 0;

pub fn phys_ptr(pa: u64) -> *mut u8 {
    // SAFETY: a plain read of a word only `init` writes, before any other user.
    (pa + unsafe { WINDOW }) as *mut u8
}

pub fn read_u64(pa: u64) -> u64 {
    // SAFETY: callers pass physical addresses of RAM the kernel owns (page tables,
    // frames it allocated), 8-byte aligned, inside the window.
    unsafe { (phys_ptr(pa) as *const u64).read_volatile() }
}

pub fn write_u64(pa: u64, v: u64) {
    // SAFETY: as for `read_u64`.
    unsafe { (phys_ptr(pa) as *mut u64).write_volatile(v) }
}

/// Copies `bytes` to physical memory at `pa`.
pub fn write_bytes(pa: u64, bytes: &[u8]) {
    // SAFETY: as for `read_u64`; `pa..pa+len` is RAM the kernel allocated.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), phys_ptr(pa), bytes.len()) }
}

/// Physical end of the kernel image: the system image starts at the next page.
pub fn kernel_phys_end() -> u64 {
    addr_of!(__kernel_end) as u64 - KERNEL_VMA
}

/// Hands out zeroed frames from one RAM range, never back.
#[derive(Debug)]
pub struct Frames {
    next: u64,
    end: u64,
}

impl Frames {
    pub fn alloc(&mut self, pages: u64) -> Option<u64> {
        let pa = self.next;
        let end = pa.checked_add(pages.checked_mul(PAGE)?)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        // SAFETY: fresh frames inside RAM the allocator owns and the window maps.
        unsafe { core::ptr::write_bytes(phys_ptr(pa), 0, (end - pa) as usize) };
        Some(pa)
    }

    /// Like [`Frames::alloc`], starting at a multiple of `align` (a power of two);
    /// the frames skipped to get there are not handed out.
    pub fn alloc_aligned(&mut self, pages: u64, align: u64) -> Option<u64> {
        let start = self.next.checked_next_multiple_of(align)?;
        if start > self.end {
            return None;
        }
        let saved = self.next;
        self.next = start;
        let pa = self.alloc(pages);
        if pa.is_none() {
            self.next = saved;
        }
        pa
    }

    /// End of the RAM the kernel manages (everything from the kernel image up).
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn free_bytes(&self) -> u64 {
        self.end - self.next
    }
}

/// [`PhysMem`] for the page-table code, allocating tables from `Frames`.
#[derive(Debug)]
pub struct Phys<'a>(pub &'a mut Frames);

impl PhysMem for Phys<'_> {
    fn read(&self, pa: u64) -> u64 {
        read_u64(pa)
    }
    fn write(&mut self, pa: u64, v: u64) {
        write_u64(pa, v)
    }
    fn alloc_table(&mut self) -> Option<u64> {
        self.0.alloc(1)
    }
}

/// Read-only walks for checking user pointers.
#[derive(Debug)]
pub struct PhysRead;

impl PhysMem for PhysRead {
    fn read(&self, pa: u64) -> u64 {
        read_u64(pa)
    }
    fn write(&mut self, _: u64, _: u64) {}
    fn alloc_table(&mut self) -> Option<u64> {
        None
    }
}

/// The RAM range from the PVH memory map that holds `above`.
fn ram_range(start_info: u64, above: u64) -> Option<(u64, u64)> {
    // hvm_start_info: magic at 0, version at 4, memmap_paddr at 0x28 and
    // memmap_entries at 0x30 (version >= 1). Entries: addr, size, type (1 = RAM).
    let magic = read_u64(start_info) as u32;
    let version = (read_u64(start_info) >> 32) as u32;
    if magic != 0x336e_c578 || version < 1 {
        return None;
    }
    let map = read_u64(start_info + 0x28);
    let entries = read_u64(start_info + 0x30) as u32;
    for i in 0..u64::from(entries.min(128)) {
        let e = map + i * 24;
        let (addr, size) = (read_u64(e), read_u64(e + 8));
        let kind = read_u64(e + 16) as u32;
        let end = addr.saturating_add(size);
        if kind == 1 && addr <= above && above < end {
            return Some((above, end));
        }
    }
    None
}

/// Sets up the frame allocator above `reserved_end` and switches to the kernel's own
/// page tables. Returns the allocator and the kernel's root table.
pub fn init(start_info: u64, reserved_end: u64) -> (Frames, u64) {
    let reserved_end = reserved_end.next_multiple_of(PAGE);
    let Some((start, end)) = ram_range(start_info, reserved_end)
        .filter(|&(start, end)| start + BOOT_TABLES_ROOM <= BOOT_MAPPED.min(end))
    else {
        kprintln!("kernel: no RAM above {reserved_end:#x} in the boot memory map");
        crate::cpu::exit_qemu(0x7c);
    };
    let mut frames = Frames { next: start, end };
    let root = build_kernel_tables(&mut frames, end).unwrap_or_else(|| {
        kprintln!("kernel: out of memory building the kernel page tables");
        crate::cpu::exit_qemu(0x7c)
    });
    // SMEP/SMAP when the CPU has them: the kernel never touches user pages directly.
    let features = crate::cpu::cpuid(7, 0)[1];
    let mut cr4 = crate::cpu::cr4();
    if features & (1 << 7) != 0 {
        cr4 |= 1 << 20;
    }
    if features & (1 << 20) != 0 {
        cr4 |= 1 << 21;
        // SAFETY: single CPU at boot.
        unsafe { SMAP = true };
    }
    // SAFETY: the new tables map the kernel image exactly where it runs and all RAM
    // in the window; nothing refers to the identity map afterwards (WINDOW switches).
    // CR0.EM: the kernel saves no FPU state, so x87 use by a PD must fault rather
    // than leak registers between PDs (SSE/AVX already fault: OSFXSR/OSXSAVE are off).
    unsafe {
        crate::cpu::set_cr3(root);
        WINDOW = PHYS_OFFSET;
        crate::cpu::set_cr4(cr4);
        crate::cpu::set_cr0((crate::cpu::cr0() | (1 << 2)) & !(1 << 1));
    }
    kprintln!(
        "kernel: {} MiB of RAM for PDs at {start:#x}..{end:#x}",
        (end - start) >> 20
    );
    (frames, root)
}

fn build_kernel_tables(frames: &mut Frames, ram_end: u64) -> Option<u64> {
    let root = frames.alloc(1)?;
    let mut mem = Phys(frames);
    let (text, rodata, data, end) = (
        addr_of!(__text_start) as u64,
        addr_of!(__rodata_start) as u64,
        addr_of!(__data_start) as u64,
        addr_of!(__kernel_end) as u64,
    );
    let mut va = text;
    while va < end {
        let flags = if va < rodata {
            0
        } else if va < data {
            NO_EXECUTE
        } else {
            WRITABLE | NO_EXECUTE
        };
        paging::map(&mut mem, root, va, va - KERNEL_VMA, PageSize::Size4K, flags).ok()?;
        va += PAGE;
    }
    // W^X holds across mappings, not just within one: the window must not offer a
    // writable view of the kernel's code or read-only data, or any write primitive
    // through the window (the kernel writes PD frames there) could patch kernel text.
    // So the 2 MiB chunks that hold the image are mapped with 4 KiB pages and the
    // image's pages up to its data are read-only; its data stays writable (it is
    // writable, and not executable, in its own mapping anyway).
    let read_only = KERNEL_PHYS_START..data - KERNEL_VMA;
    let mut pa = 0;
    while pa < ram_end.next_multiple_of(0x20_0000) {
        let chunk = pa..pa + 0x20_0000;
        if chunk.start < read_only.end && read_only.start < chunk.end {
            for page in chunk.step_by(PAGE as usize) {
                let flags = if read_only.contains(&page) {
                    NO_EXECUTE
                } else {
                    WRITABLE | NO_EXECUTE
                };
                let va = PHYS_OFFSET + page;
                paging::map(&mut mem, root, va, page, PageSize::Size4K, flags).ok()?;
            }
        } else {
            let va = PHYS_OFFSET + pa;
            paging::map(
                &mut mem,
                root,
                va,
                pa,
                PageSize::Size2M,
                WRITABLE | NO_EXECUTE,
            )
            .ok()?;
        }
        pa += 0x20_0000;
    }
    check_no_writable_text(root, text, data);
    Some(root)
}

/// Walks the finished tables for every mapping of the image's code and read-only
/// data (its own and the window's) and stops the boot if any is writable, so a
/// later change to the mapping code cannot silently bring writable text back.
fn check_no_writable_text(root: u64, text: u64, data: u64) {
    let mut va = text;
    while va < data {
        for alias in [va, va - KERNEL_VMA + PHYS_OFFSET] {
            let writable = paging::translate(&PhysRead, root, alias)
                .is_some_and(|(_, rights)| rights & WRITABLE != 0);
            if writable {
                kprintln!("kernel: W^X: kernel text or rodata writable at {alias:#x}");
                crate::cpu::exit_qemu(0x7c);
            }
        }
        va += PAGE;
    }
}
