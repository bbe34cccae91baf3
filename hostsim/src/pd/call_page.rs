//! Protected calls through a page shared by the two ends of one `pp` channel.
//!
//! The supervisor creates the page only for channels system.xml grants `pp` on and
//! hands it to exactly those two PDs, next to their socket pair, so it grants
//! nothing the socket did not: the caller can still only reach the callee it was
//! given. The request and the reply travel in the page (the wire format of
//! wire.rs, at [`MESSAGE`]); the socket carries only one-byte doorbells, sent only
//! to a side that said it is going to sleep, and keeps telling each side when the
//! other's process is gone. A caller and a callee that are both polling (spin.rs)
//! complete a call without a system call.
//!
//! Either side may be hostile and write anything at any time: each reads the
//! message once into its own buffer and decodes that copy with the bounded wire
//! decoder, treats a state it does not expect as "nothing yet", and never blocks
//! on the other (doorbells are sent non-blocking; one pending is enough).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use ipc::{Perms, Region};

use crate::sys;
use crate::wire;

/// The page's size: one host page holds the state words and the largest message.
pub const SIZE: usize = 4096;
/// Offsets of the shared words, each in a cache line of its own so the side that
/// spins on one does not slow down the side that writes another.
const STATE: usize = 0;
const CALLEE_ASLEEP: usize = 64;
const CALLER_ASLEEP: usize = 128;
/// Where the request or the reply packet starts.
const MESSAGE: usize = 192;
const _: () = assert!(MESSAGE + wire::MAX_PACKET <= SIZE);

/// Values of the state word. The caller writes `CALL`; the callee takes it
/// (`SERVING`) and writes `REPLIED` once the reply is in the page.
const IDLE: u32 = 0;
const CALL: u32 = 1;
const SERVING: u32 = 2;
const REPLIED: u32 = 3;

/// One end's mapping of a channel's call page.
pub(crate) struct CallPage {
    page: Region<'static>,
}

impl CallPage {
    /// Maps the page the supervisor created for this channel; the descriptor is
    /// closed afterwards, so the mapping is all the PD keeps.
    pub fn map(fd: OwnedFd) -> io::Result<Self> {
        let base = sys::map_shared(SIZE, fd.as_fd())?;
        // SAFETY: map_shared mapped SIZE bytes read-write at a page-aligned address
        // the kernel chose, and it is never unmapped; the peer touches it only from
        // its own process.
        let page = unsafe { Region::from_raw_parts(base, SIZE, Perms::RW) };
        Ok(Self { page })
    }

    fn word(&self, offset: usize) -> &'static AtomicU32 {
        match self.page.atomic_u32(offset) {
            Ok(w) => w,
            // The offsets are constants inside the page and 4-byte aligned.
            Err(_) => unreachable!("call page word {offset:#x} out of the page"),
        }
    }

    fn write_message(&self, packet: &[u8]) {
        // A packet is at most MAX_PACKET bytes, which fit after MESSAGE.
        let _ = self.page.write_bytes(MESSAGE, packet);
    }

    /// Copies the message once into `buf` and returns the packet it holds, as long
    /// as its header says (checked by the wire decoders that read it).
    fn read_message<'b>(&self, buf: &'b mut [u8; wire::MAX_PACKET]) -> &'b [u8] {
        let _ = self.page.read_bytes(MESSAGE, buf);
        let len = wire::packet_len(buf).unwrap_or(0);
        buf.get(..len).unwrap_or_default()
    }

    // ---- caller side -----------------------------------------------------------

    /// Publishes a request; true when the callee said it sleeps and needs a
    /// doorbell.
    pub fn post_call(&self, packet: &[u8]) -> bool {
        self.write_message(packet);
        // SeqCst with the load below and the callee's store-then-check of its flag:
        // either the callee sees CALL before it sleeps, or we see it asleep.
        self.word(STATE).store(CALL, Ordering::SeqCst);
        self.word(CALLEE_ASLEEP).load(Ordering::SeqCst) != 0
    }

    pub fn replied(&self) -> bool {
        self.word(STATE).load(Ordering::Acquire) == REPLIED
    }

    /// Before the caller blocks on the socket: asks for a doorbell, then checks
    /// again; true when the reply is already there.
    pub fn caller_sleeps(&self) -> bool {
        self.word(CALLER_ASLEEP).store(1, Ordering::SeqCst);
        if self.word(STATE).load(Ordering::SeqCst) == REPLIED {
            self.caller_awake();
            return true;
        }
        false
    }

    pub fn caller_awake(&self) {
        self.word(CALLER_ASLEEP).store(0, Ordering::Relaxed);
    }

    /// The reply's packet, copied out of the page into `buf`.
    pub fn reply<'b>(&self, buf: &'b mut [u8; wire::MAX_PACKET]) -> &'b [u8] {
        let packet = self.read_message(buf);
        self.word(STATE).store(IDLE, Ordering::Relaxed);
        packet
    }

    // ---- callee side -----------------------------------------------------------

    /// Takes a pending request: its packet (possibly malformed), or `None` when
    /// no call is pending.
    pub fn take_call<'b>(&self, buf: &'b mut [u8; wire::MAX_PACKET]) -> Option<&'b [u8]> {
        if self.word(STATE).load(Ordering::Acquire) != CALL {
            return None;
        }
        self.word(STATE).store(SERVING, Ordering::Relaxed);
        Some(self.read_message(buf))
    }

    /// Publishes the reply; true when the caller sleeps and needs a doorbell.
    pub fn put_reply(&self, packet: &[u8]) -> bool {
        self.write_message(packet);
        self.word(STATE).store(REPLIED, Ordering::SeqCst);
        self.word(CALLER_ASLEEP).load(Ordering::SeqCst) != 0
    }

    /// Before the callee sleeps: asks for a doorbell; true when a call is already
    /// pending (serve it instead of sleeping).
    pub fn callee_sleeps(&self) -> bool {
        self.word(CALLEE_ASLEEP).store(1, Ordering::SeqCst);
        self.word(STATE).load(Ordering::SeqCst) == CALL
    }

    pub fn callee_awake(&self) {
        self.word(CALLEE_ASLEEP).store(0, Ordering::Relaxed);
    }
}

/// Rings the other side's doorbell. Never blocks: when the peer's queue is full a
/// doorbell is pending already, which is all it needs.
pub fn ring(socket: BorrowedFd<'_>) -> io::Result<()> {
    match sys::try_send_packet(socket, &[1]) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> CallPage {
        let fd = sys::memfd("call-page-test", SIZE as u64).expect("memfd");
        CallPage::map(fd).expect("map")
    }

    #[test]
    fn a_call_and_its_reply_cross_the_page_with_doorbells_only_for_sleepers() {
        let p = page();
        let mut buf = [0u8; wire::MAX_PACKET];
        assert!(p.take_call(&mut buf).is_none(), "no call yet");
        assert!(!p.callee_sleeps(), "nothing pending");
        assert!(p.post_call(&[7; 24]), "the callee sleeps: ring");
        p.callee_awake();
        assert!(!p.post_call(&[7; 24]), "awake: no doorbell");
        // 7s as a header say count 0x0707_0707: refused, so an empty packet.
        assert_eq!(p.take_call(&mut buf), Some(&[][..]));
        assert!(p.take_call(&mut buf).is_none(), "taken once");
        assert!(!p.caller_sleeps(), "no reply yet");
        let mut reply = Vec::new();
        let mut mrs = ipc::MessageRegisters::new();
        mrs.0[0] = 42;
        wire::encode_reply(
            wire::ReplyStatus::OK,
            ipc::MessageInfo::new(5, 1),
            &mrs,
            &mut reply,
        );
        assert!(p.put_reply(&reply), "the caller sleeps: ring");
        assert!(p.caller_sleeps(), "the reply is there");
        assert!(p.replied());
        assert_eq!(p.reply(&mut buf), &reply[..]);
        assert!(!p.replied(), "a reply is read once");
    }

    #[test]
    fn a_state_the_protocol_never_writes_is_nothing_pending() {
        let p = page();
        let mut buf = [0u8; wire::MAX_PACKET];
        for junk in [SERVING, REPLIED, 4, u32::MAX] {
            p.word(STATE).store(junk, Ordering::Relaxed);
            assert!(p.take_call(&mut buf).is_none(), "state {junk}");
            assert!(!p.callee_sleeps(), "state {junk}");
        }
    }
}
