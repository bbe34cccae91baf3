//! Turns the system image into running PDs: region frames, one address space per
//! PD with exactly its segments, maps, stack, IPC buffer and info page, a saved
//! ring-3 frame at its entry point, and its capability table for the core.

use kernel_abi::image::{perms, RegionDesc, SystemImage, MAX_PDS, MAX_REGIONS, NO_PARENT};
use kernel_abi::{layout, Name};
use kernel_core::paging::{self, MapError, PageSize, NO_EXECUTE, PRESENT, USER, WRITABLE};
use kernel_core::{Cap, GuestLimits, PdConfig};

use crate::mem::{self, Frames, Phys};
use crate::trap::Frame;

const PAGE: u64 = layout::PAGE_SIZE;
const HUGE: u64 = 0x20_0000;

/// What the kernel keeps per PD besides its state in the core.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(16))]
pub struct Tcb {
    /// Saved registers; the trap paths write here directly.
    pub frame: Frame,
    pub cr3: u64,
    pub ipc_buffer: u64,
    pub name: Name,
    /// The debug system calls system.xml granted (`PdDesc::DEBUG_*`).
    pub debug: u8,
    /// Its console output is at the start of a line (where the kernel puts the
    /// PD's name).
    pub at_line_start: bool,
}

impl Tcb {
    pub const EMPTY: Self = Self {
        frame: Frame {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error: 0,
            rip: 0,
            cs: 0,
            rflags: 0,
            rsp: 0,
            ss: 0,
        },
        cr3: 0,
        ipc_buffer: 0,
        name: [0; 64],
        debug: 0,
        at_line_start: true,
    };

    pub fn name(&self) -> &str {
        kernel_abi::name_str(&self.name).unwrap_or("?")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("out of memory for {0}")]
    OutOfMemory(&'static str),
    /// A fixed-address region overlaps memory the kernel owns.
    #[error("memory region at {0:#x} overlaps the kernel's RAM")]
    Reserved(u64),
    #[error("cannot map {0}: {1:?}")]
    Map(&'static str, MapError),
}

pub struct Loaded {
    pub configs: [PdConfig; MAX_PDS],
    pub count: usize,
    /// Where each region's frames are, for the VMs' nested page tables.
    pub region_pa: [u64; MAX_REGIONS],
}

fn map_pages(
    frames: &mut Frames,
    root: u64,
    vaddr: u64,
    paddr: u64,
    bytes: u64,
    flags: u64,
    what: &'static str,
) -> Result<(), LoadError> {
    paging::map_range(
        &mut Phys(frames),
        root,
        vaddr,
        paddr,
        bytes,
        PageSize::Size4K,
        flags,
    )
    .map_err(|e| LoadError::Map(what, e))
}

fn alloc(frames: &mut Frames, pages: u64, what: &'static str) -> Result<u64, LoadError> {
    frames.alloc(pages).ok_or(LoadError::OutOfMemory(what))
}

/// Builds every PD into `tcbs`. `kernel_root` provides the shared kernel half.
pub fn load(
    image: &SystemImage<'_>,
    frames: &mut Frames,
    kernel_root: u64,
    tcbs: &mut [Tcb; MAX_PDS],
) -> Result<Loaded, LoadError> {
    let mut region_pa = [0u64; MAX_REGIONS];
    for (i, r) in image.regions().iter().enumerate() {
        region_pa[i] = if r.phys_addr == RegionDesc::ALLOCATE {
            // Regions of 2 MiB and more start 2 MiB aligned, so a guest's nested
            // page tables can map them with large pages.
            let pa = if r.size >= HUGE {
                frames.alloc_aligned(r.size / PAGE, HUGE)
            } else {
                frames.alloc(r.size / PAGE)
            }
            .ok_or(LoadError::OutOfMemory("a memory region"))?;
            // Initial contents (a guest kernel, an initramfs) can be tens of MiB: one
            // bulk copy (memcpy is `rep movs`) over the zeroed frames; parse checked
            // that they fit the region.
            mem::write_bytes(pa, image.region_data(i));
            pa
        } else if r.phys_addr < frames.end() && r.phys_addr + r.size > mem::KERNEL_PHYS_START {
            // A fixed region (device memory) must not alias the kernel, the system
            // image or the RAM the kernel hands out.
            return Err(LoadError::Reserved(r.phys_addr));
        } else {
            r.phys_addr
        };
    }
    let empty = PdConfig::EMPTY;
    let mut loaded = Loaded {
        configs: [empty; MAX_PDS],
        count: image.pd_count(),
        region_pa,
    };
    for (i, tcb) in tcbs.iter_mut().enumerate().take(image.pd_count()) {
        let Some(pd) = image.pd(i) else { break };
        let d = pd.desc;
        let root = alloc(frames, 1, "a page table")?;
        for slot in 256..512 {
            mem::write_u64(root + slot * 8, mem::read_u64(kernel_root + slot * 8));
        }
        for s in pd.segments {
            let start = s.vaddr & !(PAGE - 1);
            let end = (s.vaddr + s.mem_size).next_multiple_of(PAGE);
            let pa = alloc(frames, (end - start) / PAGE, "program segments")?;
            let file = pd
                .elf
                .get(s.file_off as usize..(s.file_off + s.file_size) as usize)
                .unwrap_or(&[]);
            mem::write_bytes(pa + (s.vaddr - start), file);
            let flags = paging::user_flags(s.perms, true);
            map_pages(
                frames,
                root,
                start,
                pa,
                end - start,
                flags,
                "a program segment",
            )?;
        }
        for m in pd.maps {
            let size = image.regions()[m.region as usize].size;
            let flags = paging::user_flags(m.perms, m.cached != 0);
            map_pages(
                frames,
                root,
                m.vaddr,
                region_pa[m.region as usize],
                size,
                flags,
                "a memory region",
            )?;
        }
        let rw = PRESENT | USER | WRITABLE | NO_EXECUTE;
        let stack = alloc(frames, d.stack_size / PAGE, "a stack")?;
        map_pages(
            frames,
            root,
            layout::STACK_TOP - d.stack_size,
            stack,
            d.stack_size,
            rw,
            "the stack",
        )?;
        let ipc = alloc(frames, 1, "an IPC buffer")?;
        map_pages(
            frames,
            root,
            layout::IPC_BUFFER_VADDR,
            ipc,
            PAGE,
            rw,
            "the IPC buffer",
        )?;
        let info = alloc(frames, 1, "an info page")?;
        mem::write_bytes(info, pd.info_page);
        for p in pd.patches {
            mem::write_u64(info + u64::from(p.offset), region_pa[p.region as usize]);
        }
        let ro = paging::user_flags(perms::R, true);
        map_pages(
            frames,
            root,
            layout::INFO_VADDR,
            info,
            PAGE,
            ro,
            "the info page",
        )?;

        *tcb = Tcb {
            // rsp as if `_start` had been called: 8 below a 16-byte boundary.
            frame: Frame::user(
                d.entry,
                layout::STACK_TOP - 8,
                layout::INFO_VADDR,
                layout::IPC_BUFFER_VADDR,
            ),
            cr3: root,
            ipc_buffer: ipc,
            name: d.name,
            debug: d.debug,
            at_line_start: true,
        };
        let mut caps = [Cap::default(); kernel_abi::image::CHANNELS];
        for (cap, desc) in caps.iter_mut().zip(d.caps.iter()) {
            *cap = Cap::from_desc(desc);
        }
        loaded.configs[i] = PdConfig {
            priority: d.priority,
            passive: d.passive != 0,
            budget_us: d.budget_us,
            period_us: d.period_us,
            parent: (d.parent != NO_PARENT).then_some(d.parent),
            child_id: d.child_id,
            caps,
            guest: image.vm_of(i).map(|vm| GuestLimits {
                priority: vm.desc.priority,
                budget_us: vm.desc.budget_us,
                period_us: vm.desc.period_us,
            }),
        };
    }
    Ok(loaded)
}
