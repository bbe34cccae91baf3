//! A model TDX module plus host VMM: per-page private state (absent, pending after
//! the host's TDH.MEM.PAGE.AUG, accepted), the shared mapping, the L2 VM 1 page
//! attributes, TDG.VP.ENTER with scripted exits, and a VMM answering
//! TDG.VP.VMCALL per the GHCI, or lying on request. Only 4 KiB mappings exist.

use crate::cpu::{L2State, Regs, TdxCpu};
use crate::exit::{vm_flags, L2Gprs};
use crate::status::{leaf, Status};
use crate::vmcall::{ghci, Vmcall};

/// Private page state in the Secure EPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PageState {
    #[default]
    Absent,
    Pending,
    Accepted,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub state: PageState,
    pub shared_mapped: bool,
    /// L2 VM 1 attributes (bits 7:0 of its 16-bit field).
    pub l2: u16,
}

/// L2 attribute bits (per VM, 16 bits at 16 * vm in RDX/R8 of ATTR.WR).
pub mod attr {
    pub const R: u16 = 1 << 0;
    pub const W: u16 = 1 << 1;
    pub const XS: u16 = 1 << 2;
    pub const XU: u16 = 1 << 3;
    /// Bits this model knows (R W Xs Xu VGP PWA SSS SVE); others are refused.
    pub const DEFINED: u16 = 0x00ff;
}

/// Ways the host VMM misbehaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lies {
    /// Answer MapGPA with success without converting.
    pub map_skip: bool,
    /// Convert one page per call and answer RETRY (honest but slow).
    pub map_one_at_a_time: bool,
    /// Answer RETRY with a GPA outside the request.
    pub map_bad_retry: bool,
    /// Hypercall answered with an unknown TDVMCALL status.
    pub hv_bad_status: bool,
    /// Remove this accepted page behind the paravisor's back at the next VMCALL.
    pub steal_gfn: Option<u64>,
}

const LOG: usize = 64;

#[derive(Debug)]
pub struct TdxModel<const N: usize> {
    pub pages: [Page; N],
    pub shared_bit: u8,
    pub lies: Lies,
    /// VP.ENTER's output (RAX..R8) and the L2 GPRs for the next exit.
    pub next_exit: (Regs, L2Gprs),
    pub fatal: Option<u64>,
    pub vmcalls: u32,
    pub last_hypercall: Option<(u64, u64, u64)>,
    touched: [u64; LOG],
    touched_len: usize,
}

fn status(s: Status) -> u64 {
    s.0
}

impl<const N: usize> TdxModel<N> {
    /// Every page added by the host (pending), as for memory the TD must accept.
    pub fn new(shared_bit: u8) -> Self {
        Self {
            pages: [Page {
                state: PageState::Pending,
                ..Page::default()
            }; N],
            shared_bit,
            lies: Lies::default(),
            next_exit: (Regs::default(), L2Gprs::default()),
            fatal: None,
            vmcalls: 0,
            last_hypercall: None,
            touched: [0; LOG],
            touched_len: 0,
        }
    }

    fn shared(&self) -> u64 {
        1 << self.shared_bit
    }

    pub fn page(&self, gfn: u64) -> Option<&Page> {
        self.pages.get(usize::try_from(gfn).ok()?)
    }

    fn page_mut(&mut self, gfn: u64) -> Option<&mut Page> {
        self.pages.get_mut(usize::try_from(gfn).ok()?)
    }

    /// GFNs (private numbering) the host read or wrote.
    pub fn host_touched(&self) -> &[u64] {
        &self.touched[..self.touched_len]
    }

    fn host_touch(&mut self, gpa: u64) {
        if self.touched_len < LOG {
            self.touched[self.touched_len] = (gpa & !self.shared()) >> 12;
            self.touched_len += 1;
        }
    }

    /// Whether the host can see the page now: only through an existing shared
    /// mapping; private pages are encrypted with the TD's key.
    pub fn host_can_read(&self, gfn: u64) -> bool {
        self.page(gfn).is_some_and(|p| p.shared_mapped)
    }

    fn accept(&mut self, rcx: u64) -> u64 {
        let level = rcx & 7;
        let gpa = rcx & !0xfff;
        if rcx & 0xff8 != 0 || rcx >> 52 != 0 || level > 2 || gpa & self.shared() != 0 {
            return status(Status::OPERAND_INVALID);
        }
        let Some(p) = self.page_mut(gpa >> 12) else {
            return status(Status::EPT_WALK_FAILED);
        };
        match (p.state, level) {
            (PageState::Absent, _) => status(Status::EPT_WALK_FAILED),
            (_, 1 | 2) => status(Status::PAGE_SIZE_MISMATCH),
            (PageState::Accepted, _) => status(Status::PAGE_ALREADY_ACCEPTED),
            (PageState::Pending, _) => {
                p.state = PageState::Accepted;
                status(Status::SUCCESS)
            }
        }
    }

    fn attr_wr(&mut self, rcx: u64, rdx: u64, mask: u64) -> u64 {
        let gpa = rcx & !0xfff;
        let vm1_mask = ((mask >> 16) & 0xffff) as u16;
        let vm1_new = ((rdx >> 16) & 0xffff) as u16;
        // L1's own attributes (15:0) are not writable; VM 2 and 3 do not exist.
        let bad_mask = mask & 0xffff != 0 || mask >> 32 != 0 || vm1_mask & !attr::DEFINED != 0;
        if rcx & 0xfff != 0 || rcx >> 52 != 0 || gpa & self.shared() != 0 || bad_mask {
            return status(Status::OPERAND_INVALID);
        }
        let Some(p) = self.page_mut(gpa >> 12) else {
            return status(Status::EPT_WALK_FAILED);
        };
        match p.state {
            PageState::Absent => return status(Status::EPT_WALK_FAILED),
            PageState::Pending => return status(Status::EPT_ENTRY_STATE_INCORRECT),
            PageState::Accepted => {}
        }
        let next = (p.l2 & !vm1_mask) | (vm1_new & vm1_mask);
        // EPT cannot express write without read.
        if next & attr::W != 0 && next & attr::R == 0 {
            return status(Status::OPERAND_INVALID);
        }
        p.l2 = next;
        status(Status::SUCCESS)
    }

    fn map_gpa(&mut self, gpa: u64, size: u64, out: &mut Regs) {
        let to_shared = gpa & self.shared() != 0;
        let first = (gpa & !self.shared()) >> 12;
        let n = size >> 12;
        let end = first.checked_add(n);
        let fits = end.is_some_and(|e| e <= N as u64)
            && (gpa + size - 1) & self.shared() == gpa & self.shared();
        if !fits {
            out.r10 = ghci::INVALID_OPERAND;
            return;
        }
        if self.lies.map_bad_retry {
            out.r10 = ghci::RETRY;
            out.r11 = gpa + size + 0x1000;
            return;
        }
        out.r10 = ghci::SUCCESS;
        if self.lies.map_skip {
            return;
        }
        let count = if self.lies.map_one_at_a_time { 1 } else { n };
        for gfn in first..first + count {
            if let Some(p) = self.page_mut(gfn) {
                *p = if to_shared {
                    Page {
                        state: PageState::Absent,
                        shared_mapped: true,
                        l2: 0,
                    }
                } else {
                    // TDH.MEM.PAGE.AUG: pending until the TD accepts it.
                    Page {
                        state: PageState::Pending,
                        shared_mapped: false,
                        l2: 0,
                    }
                };
            }
        }
        if count < n {
            out.r10 = ghci::RETRY;
            out.r11 = gpa + (count << 12);
        }
    }

    fn vmcall(&mut self, regs: &mut Regs) {
        self.vmcalls += 1;
        let mut out = *regs;
        out.rax = status(Status::SUCCESS);
        match Vmcall::parse(regs) {
            Err(s) => out.r10 = s,
            Ok(Vmcall::MapGpa { gpa, size }) => self.map_gpa(gpa, size, &mut out),
            Ok(Vmcall::HvHypercall {
                control,
                input,
                output,
            }) => {
                self.last_hypercall = Some((control, input, output));
                for g in [input, output] {
                    if g != 0 {
                        self.host_touch(g);
                    }
                }
                out.r10 = if self.lies.hv_bad_status {
                    7
                } else {
                    ghci::SUCCESS
                };
                out.r11 = 0;
            }
            Ok(Vmcall::ReportFatalError { code }) => {
                self.fatal = Some(code);
                out.r10 = ghci::SUCCESS;
            }
            Ok(_) => out.r10 = ghci::SUCCESS,
        }
        if let Some(gfn) = self.lies.steal_gfn.take() {
            if let Some(p) = self.page_mut(gfn) {
                p.state = PageState::Absent;
            }
        }
        *regs = out;
    }
}

impl<const N: usize> TdxCpu for TdxModel<N> {
    fn tdcall(&mut self, regs: &mut Regs) {
        match regs.rax {
            leaf::MEM_PAGE_ACCEPT => regs.rax = self.accept(regs.rcx),
            leaf::MEM_PAGE_ATTR_WR => regs.rax = self.attr_wr(regs.rcx, regs.rdx, regs.r8),
            leaf::VP_ENTER => {
                if regs.rcx != vm_flags(1) {
                    regs.rax = status(Status::OPERAND_INVALID);
                } else {
                    *regs = self.next_exit.0;
                }
            }
            leaf::VP_VMCALL => self.vmcall(regs),
            _ => regs.rax = status(Status::OPERAND_INVALID),
        }
    }
}

impl<const N: usize> L2State for TdxModel<N> {
    fn l2_gprs(&mut self) -> L2Gprs {
        self.next_exit.1
    }
}
