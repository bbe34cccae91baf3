//! Running a guest vCPU: the `VM_ENTER` system call and the vCPU state it exchanges
//! with the VMM PD through the IPC buffer.
//!
//! seL4-style: the VMM PD's thread *is* the vCPU's thread. `VM_ENTER(vcpu, flags,
//! deadline)` applies the state words the VMM marked dirty, runs the guest, and
//! returns when the guest exits (the exit in the IPC buffer), when the VMM is
//! notified (`Event::NOTIFICATION`, with the current guest state in the buffer too),
//! or when `deadline` (a TSC value) has passed. A Microkit-style fault delivery to a
//! separate parent would cost a second PD switch per exit and a second address space
//! holding the same guest state; with VM_ENTER the exit path is one kernel entry.
//!
//! The kernel owns the intercepts: every MSR but the ones VMLOAD/VMSAVE swap (FS/GS
//! base, KERNEL_GS_BASE, STAR/LSTAR/CSTAR/SFMASK, SYSENTER_*), every I/O port,
//! CPUID, HLT, VMMCALL, INTR, NMI, SMI, INIT, SHUTDOWN, XSETBV and the VMM's
//! [`Word::EXCEPTION_INTERCEPTS`] (plus #MC, always). Every guest-physical address
//! the system description does not map into the VM is a nested page fault the VMM
//! receives. The kernel answers some exits itself and never reports them: host
//! interrupts (INTR, NMI: taken by the kernel, the guest resumes unless another PD
//! is to run), SVM's own instructions and MONITOR/MWAIT (#UD in the guest), and
//! XSETBV when the bytes at CS:RIP are exactly `0F 01 D1` (it raises #UD/#GP in
//! the guest as the CPU would, else sets the guest's XCR0 and moves RIP on). Any
//! other XSETBV form reaches the VMM as [`exit::XSETBV`]; it completes it by
//! writing [`Word::XCR0`] and RIP.
//!
//! The deadline is checked whenever the guest exits; the kernel arms the local
//! APIC's one-shot timer for it (x2APIC; without one the 1 ms tick, which also
//! exits the guest, bounds the delay), so `VM_ENTER` returns within microseconds
//! of the deadline, halted or not.
//!
//! While the guest runs, the VMM's thread runs at the `<virtual_machine>`'s
//! priority (when lower than its own) and on its budget as well; a notification
//! ends `VM_ENTER` and lifts it back. Calls into a VMM fail with `PEER_GONE` while
//! its guest runs (it is not waiting), and faults of its children wait for its next
//! RECV: a VMM is best neither a PPC server nor a parent.
//!
//! Layout of the IPC buffer (64 words), the same in both directions; [`Word`] names
//! each index.

/// `VM_ENTER` flags (rsi).
pub mod flags {
    /// Do not run the guest: wait (like HLT) until a notification arrives or the
    /// deadline passes, then return as if the guest had exited.
    pub const HALTED: u64 = 1;
}

/// Pseudo exit codes beside the SVM exit codes in [`Word::EXIT_CODE`].
pub mod pseudo_exit {
    /// The deadline passed (the guest ran or waited until then).
    pub const DEADLINE: u64 = 0x1_0000;
    /// A notification arrived; `VM_ENTER` returned `Event::NOTIFICATION` and the
    /// guest state is current.
    pub const NOTIFIED: u64 = 0x1_0001;
    /// The state the VMM asked for cannot be run (VMRUN refused it: SVM's
    /// VMEXIT_INVALID), or [`Word::XCR0`] names features the host does not offer.
    /// Nothing ran; the words returned are the state as asked (the kernel keeps
    /// VMRUN from overwriting it); fix it and enter again.
    pub const INVALID_STATE: u64 = 0x1_0002;
}

/// SVM exit codes the VMM sees (AMD APM vol. 2, appendix C).
pub mod exit {
    pub const EXCEPTION_BASE: u64 = 0x40;
    pub const INTR: u64 = 0x60;
    pub const NMI: u64 = 0x61;
    pub const SMI: u64 = 0x62;
    pub const INIT: u64 = 0x63;
    pub const VINTR: u64 = 0x64;
    pub const CPUID: u64 = 0x72;
    pub const HLT: u64 = 0x78;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const SHUTDOWN: u64 = 0x7f;
    pub const VMMCALL: u64 = 0x81;
    /// Only forms the kernel does not emulate (see the module docs).
    pub const XSETBV: u64 = 0x8d;
    pub const NPF: u64 = 0x400;
}

/// Word indices in the IPC buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Word;

impl Word {
    /// Out: the SVM exit code or a [`pseudo_exit`] code.
    pub const EXIT_CODE: usize = 0;
    /// Out: EXITINFO1 (IOIO: port/size/direction; MSR: 1 = write; NPF: error code).
    pub const EXIT_INFO1: usize = 1;
    /// Out: EXITINFO2 (IOIO: the next RIP; NPF: the faulting GPA).
    pub const EXIT_INFO2: usize = 2;
    /// Out: EXITINTINFO (an event whose delivery the exit interrupted).
    pub const EXIT_INT_INFO: usize = 3;
    /// Out: bit 0 = the guest is in an interrupt shadow (STI/MOV SS). In: the same,
    /// to set or clear it.
    pub const INTERRUPT_SHADOW: usize = 4;
    /// In: bit set = a [`Word`] index (0..64) whose value the kernel must load.
    /// Out: 0.
    pub const DIRTY: usize = 5;
    /// In: an event to inject on this entry, in SVM EVENTINJ format (bit 31 valid;
    /// other bits than vector, type, EV, V and the error code are dropped). Out:
    /// bit 31 clear once the event was delivered (else see EXIT_INT_INFO).
    pub const EVENT_INJECT: usize = 6;
    /// In: bit 0 = exit with [`exit::VINTR`] as soon as the guest can take an
    /// interrupt (sets V_IRQ with V_IGN_TPR); bits 8..16 = the virtual TPR.
    /// One-shot: the kernel clears bit 0 when that exit happens. Out: the same
    /// (bits 8..16 as the guest left its TPR, CR8).
    pub const INTERRUPT_WINDOW: usize = 7;
    /// Guest general-purpose registers in this order (x86 encoding order).
    pub const RAX: usize = 8;
    pub const RCX: usize = 9;
    pub const RDX: usize = 10;
    pub const RBX: usize = 11;
    pub const RSP: usize = 12;
    pub const RBP: usize = 13;
    pub const RSI: usize = 14;
    pub const RDI: usize = 15;
    /// R8..=R15 follow at 16..=23.
    pub const R8: usize = 16;
    pub const RIP: usize = 24;
    pub const RFLAGS: usize = 25;
    pub const CR0: usize = 26;
    pub const CR2: usize = 27;
    pub const CR3: usize = 28;
    pub const CR4: usize = 29;
    pub const EFER: usize = 30;
    /// In/out: bit per exception vector the VMM wants as an exit (#MC is always
    /// intercepted by the kernel and reported the same way).
    pub const EXCEPTION_INTERCEPTS: usize = 31;
    /// Segments ES, CS, SS, DS, FS, GS, LDTR, TR (x86 encoding order, then the
    /// system segments), two words each: [`segment_word`] then the base.
    pub const SEGMENTS: usize = 32;
    /// GDTR and IDTR, two words each: limit, base.
    pub const GDTR: usize = 48;
    pub const IDTR: usize = 50;
    pub const PAT: usize = 52;
    pub const DR7: usize = 53;
    /// The guest's XCR0 (the kernel loads it around VMRUN). In: checked against
    /// what XSETBV would accept on this host, else [`pseudo_exit::INVALID_STATE`].
    pub const XCR0: usize = 54;
    /// Guest instruction bytes the CPU fetched for the exit, when it provides them
    /// (never under QEMU TCG: no decode assists); count in bits 0..8 of the first word.
    pub const INSN_BYTES: usize = 55;
    /// Out: the TSC frequency in Hz, as the kernel measured it against the PIT at
    /// boot (the VMM tells the guest through the Hyper-V frequency MSR and runs its
    /// timers on it). In: ignored.
    pub const TSC_HZ: usize = 57;
    /// Words 58..64 are reserved (0 out, ignored in).
    pub const COUNT: usize = 58;
}

/// EFER.SVME. VMRUN needs it in the host's EFER and in an SEV-ES/SNP guest's
/// VMSA; the kernel keeps it set in every guest's [`Word::EFER`] and the VMM hides
/// it from the guest's reads and writes.
pub const EFER_SVME: u64 = 1 << 12;

/// Segment index within [`Word::SEGMENTS`].
pub mod segment {
    pub const ES: usize = 0;
    pub const CS: usize = 1;
    pub const SS: usize = 2;
    pub const DS: usize = 3;
    pub const FS: usize = 4;
    pub const GS: usize = 5;
    pub const LDTR: usize = 6;
    pub const TR: usize = 7;
}

/// The first word of a segment pair: selector (bits 0..16), SVM attribute
/// (bits 16..28: type, S, DPL, P, AVL, L, D/B, G), limit (bits 32..64).
pub const fn segment_word(selector: u16, attrib: u16, limit: u32) -> u64 {
    selector as u64 | ((attrib as u64 & 0xfff) << 16) | ((limit as u64) << 32)
}

/// The parts of a [`segment_word`].
pub const fn segment_parts(word: u64) -> (u16, u16, u32) {
    (
        word as u16,
        ((word >> 16) & 0xfff) as u16,
        (word >> 32) as u32,
    )
}

/// A vCPU's state words as of the last exit (or as set since), and which of them
/// the VMM changed: the bookkeeping both the PD runtime's `Vcpu` and the VMM's
/// state need, so the kernel reloads only what moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateWords {
    words: [u64; Word::COUNT],
    dirty: u64,
}

impl Default for StateWords {
    fn default() -> Self {
        Self::new()
    }
}

impl StateWords {
    pub const fn new() -> Self {
        Self {
            words: [0; Word::COUNT],
            dirty: 0,
        }
    }

    /// A word; 0 for indices past [`Word::COUNT`].
    pub fn get(&self, word: usize) -> u64 {
        self.words.get(word).copied().unwrap_or(0)
    }

    /// Sets a word and marks it for loading on the next entry. Indices past
    /// [`Word::COUNT`] are ignored: they are constants, never guest input.
    pub fn set(&mut self, word: usize, value: u64) {
        if let Some(w) = self.words.get_mut(word) {
            *w = value;
            self.dirty |= 1 << word;
        }
    }

    /// The words marked for the next entry, one bit each.
    pub fn dirty(&self) -> u64 {
        self.dirty
    }

    /// The words for `VM_ENTER`: every word, with [`Word::DIRTY`] filled in.
    pub fn entry_words(&self) -> [u64; Word::COUNT] {
        let mut out = self.words;
        out[Word::DIRTY] = self.dirty;
        out
    }

    /// As [`StateWords::entry_words`], and nothing is dirty afterwards (the words
    /// are on their way to the kernel).
    pub fn take_entry(&mut self) -> [u64; Word::COUNT] {
        let out = self.entry_words();
        self.dirty = 0;
        out
    }

    /// Takes the words the kernel wrote on an exit; nothing is dirty afterwards.
    pub fn load_exit(&mut self, words: &[u64; Word::COUNT]) {
        self.load_exit_with(|out| *out = *words);
    }

    /// As [`StateWords::load_exit`], with `read` filling the words in place (so a
    /// runtime copies the IPC buffer once).
    pub fn load_exit_with(&mut self, read: impl FnOnce(&mut [u64; Word::COUNT])) {
        read(&mut self.words);
        self.dirty = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_words_round_trip() {
        let w = segment_word(0x10, 0xa9b, 0xffff_ffff);
        assert_eq!(segment_parts(w), (0x10, 0xa9b, 0xffff_ffff));
    }

    #[test]
    fn set_marks_dirty_and_the_entry_carries_the_mask() {
        let mut s = StateWords::new();
        s.set(Word::RIP, 0x1000);
        s.set(Word::RAX, 7);
        s.set(Word::COUNT, 1);
        assert_eq!(s.get(Word::COUNT), 0);
        assert_eq!(s.dirty(), (1 << Word::RIP) | (1 << Word::RAX));
        let entry = s.entry_words();
        assert_eq!(entry[Word::RIP], 0x1000);
        assert_eq!(entry[Word::DIRTY], s.dirty());
        assert_eq!(s.take_entry(), entry);
        assert_eq!(s.dirty(), 0);
        assert_eq!(s.get(Word::RIP), 0x1000, "taking the entry keeps the words");
    }

    #[test]
    fn an_exit_replaces_every_word_and_clears_dirty() {
        let mut s = StateWords::new();
        s.set(Word::RBX, 1);
        let mut words = [0u64; Word::COUNT];
        words[Word::EXIT_CODE] = exit::CPUID;
        words[Word::RBX] = 9;
        s.load_exit(&words);
        assert_eq!(s.get(Word::RBX), 9);
        assert_eq!(s.get(Word::EXIT_CODE), exit::CPUID);
        assert_eq!(s.dirty(), 0);
        s.set(Word::RCX, 2);
        s.load_exit_with(|w| w[Word::RCX] = 3);
        assert_eq!((s.get(Word::RCX), s.get(Word::RBX)), (3, 9));
        assert_eq!(s.dirty(), 0);
    }

    #[test]
    fn layout_fits_the_ipc_buffer() {
        const { assert!(Word::COUNT <= crate::syscall::MESSAGE_REGISTERS) };
        const { assert!(Word::SEGMENTS + 16 == Word::GDTR) };
        const { assert!(Word::R8 + 8 == Word::RIP) };
        // The DIRTY mask has a bit for every word.
        const { assert!(Word::COUNT <= 64) };
    }
}
