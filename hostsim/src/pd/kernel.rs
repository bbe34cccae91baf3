//! `ipc::Kernel` for a PD process: each call is checked against the grants the
//! supervisor handed over, and the process holds no descriptor for anything else.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};

use super::spin::Adaptive;
use crate::config::{ChannelGrant, PpRole};
use crate::sys;
use crate::wire;

pub(crate) struct Slot {
    pub notify_out: Option<OwnedFd>,
    pub notify_in: Option<OwnedFd>,
    pub pp: Option<(OwnedFd, PpRole)>,
}

pub(crate) struct HostKernel {
    pub name: String,
    pub slots: Vec<Option<Slot>>,
    buf: Vec<u8>,
    /// How long callers poll for replies (spin.rs).
    call_spin: Adaptive,
}

impl HostKernel {
    /// Takes ownership of the granted descriptors.
    ///
    /// # Safety-relevant contract
    /// The descriptors in `grants` must be open, owned by nobody else in this process,
    /// and of the kind the config says (the supervisor guarantees this).
    pub fn new(name: String, grants: &[ChannelGrant], take: impl Fn(i32) -> OwnedFd) -> Self {
        let mut slots: Vec<Option<Slot>> = (0..=Channel::MAX_ID).map(|_| None).collect();
        for g in grants {
            if let Some(slot) = slots.get_mut(usize::from(g.id)) {
                *slot = Some(Slot {
                    notify_out: g.notify_out.map(&take),
                    notify_in: g.notify_in.map(&take),
                    pp: g.pp.map(|(fd, role)| (take(fd), role)),
                });
            }
        }
        Self {
            name,
            slots,
            buf: Vec::with_capacity(wire::MAX_PACKET),
            call_spin: Adaptive::default(),
        }
    }

    fn slot(&self, ch: Channel) -> Result<&Slot, IpcError> {
        self.slots
            .get(usize::from(ch.index()))
            .and_then(Option::as_ref)
            .ok_or(IpcError::NotGranted(ch))
    }
}

/// Waits for the reply to a call. The callee is usually polling too (spin.rs), so
/// the reply often comes within microseconds, and sleeping for it would add a
/// wake-up; poll first while that pays.
fn receive_reply(fd: BorrowedFd<'_>, buf: &mut [u8], adaptive: &mut Adaptive) -> io::Result<usize> {
    let mut spin = adaptive.start();
    if spin.is_off() {
        return sys::recv_packet(fd, buf);
    }
    loop {
        match sys::try_recv_packet(fd, buf) {
            Ok(None) if spin.again() => {}
            Ok(None) => {
                adaptive.finish(&spin, false);
                return sys::recv_packet(fd, buf);
            }
            Ok(Some(n)) => {
                adaptive.finish(&spin, true);
                return Ok(n);
            }
            Err(e) => return Err(e),
        }
    }
}

fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

impl Kernel for HostKernel {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        let fd = self
            .slot(ch)?
            .notify_out
            .as_ref()
            .ok_or(IpcError::NotifyNotPermitted(ch))?;
        sys::eventfd_signal(fd.as_fd()).map_err(|_| IpcError::Transport)
    }

    fn pp_call(
        &mut self,
        ch: Channel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, IpcError> {
        let mut buf = std::mem::take(&mut self.buf);
        let mut call_spin = std::mem::take(&mut self.call_spin);
        let result = (|| {
            let fd = match &self.slot(ch)?.pp {
                Some((fd, PpRole::Caller)) => fd.as_fd(),
                _ => return Err(IpcError::CallNotPermitted(ch)),
            };
            wire::encode_call(msg, mrs, &mut buf);
            sys::send_packet(fd, &buf).map_err(|e| {
                if peer_gone(&e) {
                    IpcError::PeerGone(ch)
                } else {
                    IpcError::Transport
                }
            })?;
            buf.resize(wire::MAX_PACKET, 0);
            let received = receive_reply(fd, &mut buf, &mut call_spin);
            let n = match received {
                Ok(0) => return Err(IpcError::PeerGone(ch)),
                Ok(n) => n,
                Err(e) if peer_gone(&e) => return Err(IpcError::PeerGone(ch)),
                Err(_) => return Err(IpcError::Transport),
            };
            match wire::decode_reply(buf.get(..n).unwrap_or_default(), mrs) {
                Some(Ok(reply)) => Ok(reply),
                Some(Err(())) => Err(IpcError::CallFailed(ch)),
                None => Err(IpcError::Transport),
            }
        })();
        self.buf = buf;
        self.call_spin = call_spin;
        result
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        // host-sim grants no irqs yet (the supervisor refuses systems that declare
        // them), so every granted id is a channel.
        self.slot(ch)?;
        Err(IpcError::NotAnIrq(ch))
    }

    fn debug_puts(&mut self, text: &str) {
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}
