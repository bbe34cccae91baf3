//! Running a guest vCPU from a VMM PD (`VM_ENTER`, see `kernel_abi::vcpu`).
//!
//! A VMM PD does not use the Microkit event loop while its guest runs: its `init`
//! (or a loop it enters from there) calls [`Vcpu::enter`] over and over, handles
//! each exit, and gets its notifications as [`VmEvent::Notification`] results
//! instead of `Handler::notified` calls. Protected calls to other PDs work as
//! usual between entries (`ipc::Kernel::pp_call`; they use the same IPC buffer, so
//! the vCPU keeps its own copy of the state words). A VMM must not be a PPC server:
//! while it runs its guest it is not waiting, so callers get `PEER_GONE`.
//!
//! ```ignore
//! let mut vcpu = Vcpu::new(0);
//! vcpu.set(Word::RIP, entry);                   // marks the word dirty
//! loop {
//!     match vcpu.enter(0, 0)? {
//!         VmEvent::Exit(exit::CPUID) => { /* set RAX..RDX */ vcpu.advance_rip(2) }
//!         VmEvent::Exit(code) => { /* ... */ }
//!         VmEvent::Notification(chs) => handler.notified(kernel, chs)?,
//!     }
//! }
//! ```
#![allow(unsafe_code)]

use ipc::{Channel, ChannelSet, IpcError};
use kernel_abi::layout::IPC_BUFFER_VADDR;
use kernel_abi::syscall::{Event, Status, Sys};
use kernel_abi::vcpu::{StateWords, Word};

/// What `VM_ENTER` returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum VmEvent {
    /// The guest exited (an SVM exit code or a `pseudo_exit` code; the same value
    /// as `Vcpu::get(Word::EXIT_CODE)`).
    Exit(u64),
    /// The VMM was notified (the state words are current too).
    Notification(ChannelSet),
}

/// One vCPU's state words as of the last exit, and which of them the VMM changed
/// since (sent with the next entry).
#[derive(Clone, Debug)]
pub struct Vcpu {
    id: u8,
    state: StateWords,
}

impl Vcpu {
    /// The vCPU with system.xml id `id` of this PD's VM. Nothing is checked until
    /// the first [`Vcpu::enter`].
    pub fn new(id: u8) -> Self {
        Self {
            id,
            state: StateWords::new(),
        }
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    /// A state word as of the last exit (or as set since). 0 for indices past
    /// [`Word::COUNT`].
    pub fn get(&self, word: usize) -> u64 {
        self.state.get(word)
    }

    /// Sets a state word and marks it for loading on the next entry. Indices past
    /// [`Word::COUNT`] are ignored.
    pub fn set(&mut self, word: usize, value: u64) {
        self.state.set(word, value);
    }

    /// The words and dirty mask themselves, for a VMM that keeps its own copy
    /// between entries (it swaps them in and out around [`Vcpu::enter`]).
    pub fn state_mut(&mut self) -> &mut StateWords {
        &mut self.state
    }

    pub fn exit_code(&self) -> u64 {
        self.get(Word::EXIT_CODE)
    }

    /// RIP += `len` (the length of the instruction the VMM emulated).
    pub fn advance_rip(&mut self, len: u64) {
        self.set(Word::RIP, self.get(Word::RIP).wrapping_add(len));
    }

    /// Words marked for the next entry.
    pub fn dirty(&self) -> u64 {
        self.state.dirty()
    }

    /// The IPC buffer contents for the entry: every word, with the dirty mask.
    pub fn entry_words(&self) -> [u64; Word::COUNT] {
        self.state.entry_words()
    }

    /// Takes in what `VM_ENTER` returned: `(rax, rsi)` and the IPC buffer's words.
    pub fn finish(
        &mut self,
        rax: u64,
        rsi: u64,
        words: &[u64; Word::COUNT],
    ) -> Result<VmEvent, IpcError> {
        self.finish_with(rax, rsi, |out| *out = *words)
    }

    /// As [`Vcpu::finish`], with `read` filling the words in place when the entry
    /// brought state back (so the runtime copies the IPC buffer once).
    fn finish_with(
        &mut self,
        rax: u64,
        rsi: u64,
        read: impl FnOnce(&mut [u64; Word::COUNT]),
    ) -> Result<VmEvent, IpcError> {
        match Event(rax) {
            Event::VM_EXIT | Event::NOTIFICATION => {
                self.state.load_exit_with(read);
                Ok(if Event(rax) == Event::VM_EXIT {
                    VmEvent::Exit(self.state.get(Word::EXIT_CODE))
                } else {
                    VmEvent::Notification(ChannelSet::from_bits(rsi))
                })
            }
            // The vCPU id is named like a channel id (both 0..=61).
            _ if Status(rax) == Status::NOT_A_VCPU => {
                Err(Channel::try_new(self.id).map_or(IpcError::Transport, IpcError::NotGranted))
            }
            _ => Err(IpcError::Transport),
        }
    }

    /// Runs the guest until it exits, this PD is notified, or the TSC passes
    /// `deadline` (0 = none); `flags` are `kernel_abi::vcpu::flags`.
    pub fn enter(&mut self, flags: u64, deadline: u64) -> Result<VmEvent, IpcError> {
        let ipc = IPC_BUFFER_VADDR as *mut u64;
        // The kernel reads only DIRTY and the words it names.
        let dirty = self.state.dirty();
        let mut send = dirty | (1 << Word::DIRTY);
        while send != 0 {
            let i = send.trailing_zeros() as usize;
            send &= send - 1;
            let w = if i == Word::DIRTY {
                dirty
            } else {
                self.state.get(i)
            };
            // SAFETY: the kernel maps this PD's IPC buffer (64 words, writable) at
            // IPC_BUFFER_VADDR; i < Word::COUNT (`set` marks no others); nothing in
            // the PD holds a reference into it across this call.
            unsafe { ipc.add(i).write_volatile(w) };
        }
        let (rax, _, rsi, _) =
            crate::sys::syscall(Sys::VM_ENTER, u64::from(self.id), flags, deadline, 0);
        self.finish_with(rax, rsi, |words| {
            for (i, w) in words.iter_mut().enumerate() {
                // SAFETY: as above; the kernel wrote the words before returning.
                *w = unsafe { ipc.add(i).read_volatile() };
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel_abi::vcpu::exit;

    #[test]
    fn set_marks_words_dirty_and_entry_carries_the_mask() {
        let mut v = Vcpu::new(3);
        v.set(Word::RIP, 0x1000);
        v.set(Word::RAX, 7);
        v.set(200, 1);
        let w = v.entry_words();
        assert_eq!(w[Word::RIP], 0x1000);
        assert_eq!(w[Word::DIRTY], (1 << Word::RIP) | (1 << Word::RAX));
        v.advance_rip(3);
        assert_eq!(v.get(Word::RIP), 0x1003);
        assert_eq!(v.get(200), 0);
    }

    #[test]
    fn an_exit_replaces_the_words_and_clears_dirty() {
        let mut v = Vcpu::new(0);
        v.set(Word::RBX, 1);
        let mut words = [0u64; Word::COUNT];
        words[Word::EXIT_CODE] = exit::CPUID;
        words[Word::RBX] = 9;
        assert_eq!(
            v.finish(Event::VM_EXIT.0, 0, &words),
            Ok(VmEvent::Exit(exit::CPUID))
        );
        assert_eq!(v.get(Word::RBX), 9);
        assert_eq!(v.dirty(), 0);
        assert_eq!(
            v.finish(Event::NOTIFICATION.0, 0b101, &words),
            Ok(VmEvent::Notification(ChannelSet::from_bits(0b101)))
        );
    }

    #[test]
    fn errors_keep_the_vmms_changes() {
        let mut v = Vcpu::new(5);
        v.set(Word::RCX, 4);
        let words = [0u64; Word::COUNT];
        assert_eq!(
            v.finish(Status::NOT_A_VCPU.0, 0, &words),
            Err(IpcError::NotGranted(Channel::new(5)))
        );
        assert_eq!(
            v.finish(Status::BAD_ARGUMENT.0, 0, &words),
            Err(IpcError::Transport)
        );
        assert_eq!(v.get(Word::RCX), 4);
        assert_eq!(v.dirty(), 1 << Word::RCX);
        let mut far = Vcpu::new(200);
        assert_eq!(
            far.finish(Status::NOT_A_VCPU.0, 0, &words),
            Err(IpcError::Transport)
        );
    }
}
