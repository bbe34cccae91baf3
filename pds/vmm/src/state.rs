//! The guest vCPU's state as the kernel hands it over on every exit
//! (`kernel_abi::vcpu`): 64 words, plus which of them the VMM changed. The VMM
//! edits this copy; the runtime glue writes it back into the IPC buffer with the
//! dirty mask before the next `VM_ENTER`, so the kernel reloads only what moved.

use kernel_abi::vcpu::{StateWords, Word};

/// Words in the exchange (the IPC buffer's message registers).
pub const WORDS: usize = Word::COUNT;

/// SVM EVENTINJ: valid bit, and the event types the VMM injects.
pub mod event {
    pub const VALID: u64 = 1 << 31;
    pub const ERROR_VALID: u64 = 1 << 11;
    pub const TYPE_INTR: u64 = 0 << 8;
    pub const TYPE_NMI: u64 = 2 << 8;
    pub const TYPE_EXCEPTION: u64 = 3 << 8;
}

/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;

#[derive(Clone, PartialEq, Eq)]
pub struct VcpuState {
    words: StateWords,
}

impl core::fmt::Debug for VcpuState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VcpuState")
            .field("exit", &format_args!("{:#x}", self.exit_code()))
            .field("rip", &format_args!("{:#x}", self.rip()))
            .field("dirty", &format_args!("{:#x}", self.dirty()))
            .finish_non_exhaustive()
    }
}

impl Default for VcpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuState {
    pub const fn new() -> Self {
        Self {
            words: StateWords::new(),
        }
    }

    /// The words as the last exit left them (with the VMM's edits).
    pub fn words(&self) -> &StateWords {
        &self.words
    }

    /// The words and dirty mask, for the runtime glue to hand to `VM_ENTER` as they
    /// are (the kernel's results come back the same way).
    pub fn words_mut(&mut self) -> &mut StateWords {
        &mut self.words
    }

    /// Takes the words the kernel wrote on an exit; nothing is dirty afterwards.
    pub fn load_exit(&mut self, words: &[u64; WORDS]) {
        self.words.load_exit(words);
    }

    /// The words to hand to `VM_ENTER`, with [`Word::DIRTY`] filled in; clears the
    /// dirty set and a consumed event injection stays for the kernel to clear.
    pub fn take_entry(&mut self) -> [u64; WORDS] {
        self.words.take_entry()
    }

    pub fn dirty(&self) -> u64 {
        self.words.dirty()
    }

    pub fn get(&self, word: usize) -> u64 {
        self.words.get(word)
    }

    /// Sets a word and marks it for the kernel to load (see [`StateWords::set`]).
    pub fn set(&mut self, word: usize, value: u64) {
        self.words.set(word, value);
    }

    pub fn exit_code(&self) -> u64 {
        self.get(Word::EXIT_CODE)
    }

    pub fn exit_info1(&self) -> u64 {
        self.get(Word::EXIT_INFO1)
    }

    pub fn exit_info2(&self) -> u64 {
        self.get(Word::EXIT_INFO2)
    }

    /// General-purpose register `n` in x86 encoding order (0 = RAX .. 15 = R15).
    pub fn gpr(&self, n: usize) -> u64 {
        if n < 16 {
            self.get(Word::RAX + n)
        } else {
            0
        }
    }

    pub fn set_gpr(&mut self, n: usize, value: u64) {
        if n < 16 {
            self.set(Word::RAX + n, value);
        }
    }

    pub fn gprs(&self) -> [u64; 16] {
        core::array::from_fn(|i| self.gpr(i))
    }

    pub fn set_gprs(&mut self, gprs: &[u64; 16]) {
        for (i, &v) in gprs.iter().enumerate() {
            if self.gpr(i) != v {
                self.set_gpr(i, v);
            }
        }
    }

    pub fn rip(&self) -> u64 {
        self.get(Word::RIP)
    }

    pub fn set_rip(&mut self, rip: u64) {
        self.set(Word::RIP, rip);
    }

    /// Moves RIP past an instruction of `len` bytes, as the CPU would have, and
    /// ends any interrupt shadow it was in.
    pub fn advance(&mut self, len: u64) {
        self.set_rip(self.rip().wrapping_add(len));
        if self.get(Word::INTERRUPT_SHADOW) & 1 != 0 {
            self.set(Word::INTERRUPT_SHADOW, 0);
        }
    }

    pub fn rflags(&self) -> u64 {
        self.get(Word::RFLAGS)
    }

    /// Whether an external interrupt could be delivered right now.
    pub fn interruptible(&self) -> bool {
        self.rflags() & RFLAGS_IF != 0
            && self.get(Word::INTERRUPT_SHADOW) & 1 == 0
            && self.get(Word::EVENT_INJECT) & event::VALID == 0
    }

    /// Whether an event is already waiting for delivery.
    pub fn injection_pending(&self) -> bool {
        self.get(Word::EVENT_INJECT) & event::VALID != 0
    }

    pub fn inject_interrupt(&mut self, vector: u8) {
        self.set(
            Word::EVENT_INJECT,
            event::VALID | event::TYPE_INTR | u64::from(vector),
        );
    }

    /// Injects exception `vector`, with `error` if the vector pushes one.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        let mut e = event::VALID | event::TYPE_EXCEPTION | u64::from(vector);
        if let Some(code) = error {
            e |= event::ERROR_VALID | (u64::from(code) << 32);
        }
        self.set(Word::EVENT_INJECT, e);
    }

    pub fn inject_nmi(&mut self) {
        self.set(Word::EVENT_INJECT, event::VALID | event::TYPE_NMI | 2);
    }

    pub fn inject_gp(&mut self) {
        self.inject_exception(13, Some(0));
    }

    pub fn inject_ud(&mut self) {
        self.inject_exception(6, None);
    }

    /// Asks for a VINTR exit as soon as the guest can take an interrupt.
    pub fn request_interrupt_window(&mut self, on: bool) {
        let old = self.get(Word::INTERRUPT_WINDOW);
        let new = (old & !1) | u64::from(on);
        if new != old {
            self.set(Word::INTERRUPT_WINDOW, new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_words_are_dirty() {
        let mut s = VcpuState::new();
        let mut w = [0u64; WORDS];
        w[Word::RIP] = 0x1000;
        w[Word::RCX] = 7;
        s.load_exit(&w);
        assert_eq!(s.dirty(), 0);
        let mut g = s.gprs();
        g[1] = 7;
        g[0] = 5;
        s.set_gprs(&g);
        s.advance(2);
        let entry = s.take_entry();
        assert_eq!(entry[Word::DIRTY], (1 << Word::RAX) | (1 << Word::RIP));
        assert_eq!(entry[Word::RIP], 0x1002);
        assert_eq!(s.dirty(), 0);
    }

    #[test]
    fn interrupts_wait_for_if_shadow_and_a_free_injection_slot() {
        let mut s = VcpuState::new();
        assert!(!s.interruptible());
        s.set(Word::RFLAGS, RFLAGS_IF | 2);
        assert!(s.interruptible());
        s.set(Word::INTERRUPT_SHADOW, 1);
        assert!(!s.interruptible());
        s.advance(1);
        assert!(s.interruptible());
        s.inject_interrupt(0x30);
        assert!(!s.interruptible());
        assert_eq!(s.get(Word::EVENT_INJECT), (1 << 31) | 0x30);
        s.inject_exception(14, Some(2));
        assert_eq!(
            s.get(Word::EVENT_INJECT),
            (1 << 31) | (3 << 8) | 14 | (1 << 11) | (2 << 32)
        );
    }

    #[test]
    fn out_of_range_words_are_ignored() {
        let mut s = VcpuState::new();
        s.set(WORDS, 1);
        s.set_gpr(16, 1);
        assert_eq!(s.get(WORDS), 0);
        assert_eq!(s.gpr(16), 0);
        assert_eq!(s.dirty(), 0);
    }
}
