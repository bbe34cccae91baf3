//! `ipc::Kernel` over system calls. Message registers go through the IPC buffer.
#![allow(unsafe_code)]

use ipc::{Channel, IpcError, MessageInfo, PpCall, PpReply};
use kernel_abi::syscall::{Status, Sys, MESSAGE_REGISTERS};

use crate::sys::syscall;

/// This PD's handle on the kernel: its IPC buffer.
#[derive(Debug)]
pub struct RtKernel {
    ipc_buffer: *mut u64,
}

impl RtKernel {
    /// # Safety
    /// `ipc_buffer` must be this PD's IPC buffer as the kernel passed it at entry:
    /// [`MESSAGE_REGISTERS`] words, writable, used by nothing else in the PD.
    pub unsafe fn new(ipc_buffer: u64) -> Self {
        Self {
            ipc_buffer: ipc_buffer as *mut u64,
        }
    }

    pub fn read_words(&self, out: &mut [u64]) {
        for (i, w) in out.iter_mut().take(MESSAGE_REGISTERS).enumerate() {
            // SAFETY: i < MESSAGE_REGISTERS, inside the buffer (see `new`). Volatile:
            // the kernel writes it while we are not running.
            *w = unsafe { self.ipc_buffer.add(i).read_volatile() };
        }
    }

    pub fn write_words(&mut self, words: &[u64]) {
        for (i, &w) in words.iter().take(MESSAGE_REGISTERS).enumerate() {
            // SAFETY: as in `read_words`.
            unsafe { self.ipc_buffer.add(i).write_volatile(w) };
        }
    }
}

pub(crate) fn status_to_result(status: u64, ch: Channel) -> Result<(), IpcError> {
    match Status(status) {
        Status::OK => Ok(()),
        Status::NOT_GRANTED | Status::BAD_ARGUMENT => Err(IpcError::NotGranted(ch)),
        Status::NOTIFY_NOT_PERMITTED => Err(IpcError::NotifyNotPermitted(ch)),
        Status::CALL_NOT_PERMITTED => Err(IpcError::CallNotPermitted(ch)),
        Status::NOT_AN_IRQ => Err(IpcError::NotAnIrq(ch)),
        Status::PEER_GONE => Err(IpcError::PeerGone(ch)),
        Status::CALL_FAILED => Err(IpcError::CallFailed(ch)),
        _ => Err(IpcError::Transport),
    }
}

impl ipc::Kernel for RtKernel {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        let (st, ..) = syscall(Sys::NOTIFY, u64::from(ch.index()), 0, 0, 0);
        status_to_result(st, ch)
    }

    fn pp_call(&mut self, PpCall { ch, msg, mrs }: PpCall<'_>) -> PpReply {
        self.write_words(&mrs.0[..msg.count()]);
        let (st, _, label, count) = syscall(
            Sys::PP_CALL,
            u64::from(ch.index()),
            msg.label(),
            msg.count() as u64,
            0,
        );
        status_to_result(st, ch)?;
        let reply = MessageInfo::new(label, count as usize);
        self.read_words(&mut mrs.0[..reply.count()]);
        Ok(reply)
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        let (st, ..) = syscall(Sys::IRQ_ACK, u64::from(ch.index()), 0, 0, 0);
        status_to_result(st, ch)
    }

    fn debug_puts(&mut self, text: &str) {
        crate::sys::debug_puts(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_status_maps_to_the_ipc_error_a_pd_expects() {
        let ch = Channel::new(3);
        let table = [
            (Status::OK, Ok(())),
            (Status::NOT_GRANTED, Err(IpcError::NotGranted(ch))),
            (Status::BAD_ARGUMENT, Err(IpcError::NotGranted(ch))),
            (
                Status::NOTIFY_NOT_PERMITTED,
                Err(IpcError::NotifyNotPermitted(ch)),
            ),
            (
                Status::CALL_NOT_PERMITTED,
                Err(IpcError::CallNotPermitted(ch)),
            ),
            (Status::NOT_AN_IRQ, Err(IpcError::NotAnIrq(ch))),
            (Status::PEER_GONE, Err(IpcError::PeerGone(ch))),
            (Status::CALL_FAILED, Err(IpcError::CallFailed(ch))),
            (Status::UNKNOWN_SYSCALL, Err(IpcError::Transport)),
            (Status(0x1234), Err(IpcError::Transport)),
        ];
        for (status, want) in table {
            assert_eq!(status_to_result(status.0, ch), want, "{status:?}");
        }
    }
}
