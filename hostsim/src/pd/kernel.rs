//! `ipc::Kernel` for a PD process: each call is checked against the grants the
//! supervisor handed over, and the process holds no descriptor for anything else.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use ipc::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters, PpCall, PpReply};

use super::call_page::{self, CallPage};
use super::spin::Poller;
use crate::config::{ChannelGrant, PpRole};
use crate::sys;
use crate::wire;

/// A `pp` channel end: the shared call page and the socket its doorbells use.
pub(crate) struct Pp {
    pub socket: OwnedFd,
    pub page: CallPage,
    pub role: PpRole,
}

pub(crate) struct Slot {
    pub notify_out: Option<OwnedFd>,
    pub notify_in: Option<OwnedFd>,
    pub pp: Option<Pp>,
}

pub(crate) struct HostKernel {
    pub name: String,
    pub slots: Vec<Option<Slot>>,
    buf: Vec<u8>,
    /// How long callers poll for replies (spin.rs).
    call_spin: Poller,
}

impl HostKernel {
    /// Takes ownership of the granted descriptors and maps the call pages.
    ///
    /// # Safety-relevant contract
    /// The descriptors in `grants` must be open, owned by nobody else in this process,
    /// and of the kind the config says (the supervisor guarantees this).
    pub fn new(
        name: String,
        grants: &[ChannelGrant],
        take: impl Fn(i32) -> OwnedFd,
    ) -> Result<Self, String> {
        let mut slots: Vec<Option<Slot>> = (0..=Channel::MAX_ID).map(|_| None).collect();
        for g in grants {
            let pp = match g.pp {
                Some(p) => Some(Pp {
                    socket: take(p.socket),
                    page: CallPage::map(take(p.page)).map_err(|e| {
                        format!("cannot map the call page of channel {}: {e}", g.id)
                    })?,
                    role: p.role,
                }),
                None => None,
            };
            if let Some(slot) = slots.get_mut(usize::from(g.id)) {
                *slot = Some(Slot {
                    notify_out: g.notify_out.map(&take),
                    notify_in: g.notify_in.map(&take),
                    pp,
                });
            }
        }
        Ok(Self {
            name,
            slots,
            buf: Vec::with_capacity(wire::MAX_PACKET),
            call_spin: Poller::default(),
        })
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
/// wake-up; poll the page first while that pays, then sleep on the socket until
/// the callee's doorbell (or its end closing: the callee's process is gone).
fn wait_reply(pp: &Pp, poller: &mut Poller) -> io::Result<()> {
    if poller.poll(|| pp.page.replied()) {
        return Ok(());
    }
    let mut doorbell = [0u8; 8];
    while !pp.page.caller_sleeps() {
        let received = sys::recv_packet(pp.socket.as_fd(), &mut doorbell);
        pp.page.caller_awake();
        match received {
            Ok(0) => return Err(io::ErrorKind::BrokenPipe.into()),
            // Anything else the callee sends is a doorbell too; the page says
            // whether the reply is there.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn call_error(ch: Channel, e: &io::Error) -> IpcError {
    if matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    ) {
        IpcError::PeerGone(ch)
    } else {
        IpcError::Transport
    }
}

/// One protected call on `pp`, a channel end this PD may call on.
fn call(
    ch: Channel,
    pp: &Pp,
    msg: MessageInfo,
    mrs: &mut MessageRegisters,
    buf: &mut Vec<u8>,
    poller: &mut Poller,
) -> Result<MessageInfo, IpcError> {
    wire::encode_call(msg, mrs, buf);
    if pp.page.post_call(buf) {
        call_page::ring(pp.socket.as_fd()).map_err(|e| call_error(ch, &e))?;
    }
    wait_reply(pp, poller).map_err(|e| call_error(ch, &e))?;
    let mut packet = [0u8; wire::MAX_PACKET];
    match wire::decode_reply(pp.page.reply(&mut packet), mrs) {
        Some(Ok(reply)) => Ok(reply),
        Some(Err(())) => Err(IpcError::CallFailed(ch)),
        None => Err(IpcError::Transport),
    }
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

    fn pp_call(&mut self, PpCall { ch, msg, mrs }: PpCall<'_>) -> PpReply {
        let mut buf = std::mem::take(&mut self.buf);
        let mut call_spin = std::mem::take(&mut self.call_spin);
        let result = match &self.slot(ch)?.pp {
            Some(pp) if pp.role == PpRole::Caller => {
                call(ch, pp, msg, mrs, &mut buf, &mut call_spin)
            }
            _ => Err(IpcError::CallNotPermitted(ch)),
        };
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
