use crate::{
    Channel, ChannelSet, Child, HandlerError, InitError, IpcError, MessageInfo, PpCall, Region,
};

/// What a protected call returns: the callee's reply label and length, or why the
/// call did not happen.
pub type PpReply = Result<MessageInfo, IpcError>;

/// What a handler answers a protected call with: the reply's label and length (the
/// registers travel back in the call's `mrs`), or why it refused the call.
pub type HandlerReply = Result<MessageInfo, HandlerError>;

/// The capabilities a running PD can invoke. Each backend implements it: the
/// host-sim runtime over eventfds and sockets, the kernel over system calls, and
/// per-PD unit tests with a recording fake. Every call is checked against what
/// system.xml granted this PD; an id it was not given returns [`IpcError::NotGranted`].
pub trait Kernel {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError>;

    /// A synchronous call into a higher-priority PD, run on the callee's budget.
    /// `call.ch` is this PD's id for the channel; the reply comes back in `call.mrs`.
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply;

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError>;

    /// Debug console output; a backend may drop it.
    fn debug_puts(&mut self, text: &str);
}

/// Structs that hold the kernel for a while (a call helper, a simulated vCPU) can
/// derive `Debug`: a backend's state says nothing about the holder's.
impl core::fmt::Debug for dyn Kernel + '_ {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("dyn Kernel")
    }
}

/// What a child fault reports to its parent PD.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// Architecture fault code (x86 vector number for exceptions).
    pub code: u64,
    /// The faulting address where the fault has one (CR2 for page faults).
    pub address: u64,
    /// The instruction pointer at the fault.
    pub ip: u64,
}

/// A protection domain's event handlers. The backend owns the loop and calls these;
/// the PD never blocks except inside `Kernel::pp_call`.
pub trait Handler {
    /// One or more channels were notified (or irqs fired) since the last call. By
    /// default none is expected: a PD that only serves calls refuses them all.
    fn notified(
        &mut self,
        _kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        channels.only_from(|_| false)
    }

    /// A protected procedure call arrived on `call.ch`. The reply travels back in
    /// `call.mrs`.
    fn protected(&mut self, _kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        Err(call.unexpected())
    }

    /// A child PD faulted. Returning `Ok(true)` asks the runtime to resume it.
    fn fault(
        &mut self,
        _kernel: &mut dyn Kernel,
        child: Child,
        _info: FaultInfo,
    ) -> Result<bool, HandlerError> {
        Err(HandlerError::UnhandledFault(child))
    }

    /// The runtime spins for a short while before it sleeps (host-sim, while a
    /// CPU is spare; a runtime that never polls never calls this): look for work
    /// in shared memory nobody notified us of, do it, and say whether there was
    /// any. A PD may mask its peers' notifications while it polls (a VMBus ring's
    /// `interrupt_mask`), so a runtime that calls this must call [`Self::park`]
    /// before it sleeps.
    fn poll(&mut self, _kernel: &mut dyn Kernel) -> Result<bool, HandlerError> {
        Ok(false)
    }

    /// The runtime is about to sleep: unmask what [`Self::poll`] masked and look
    /// once more. `true` if work came meanwhile (a peer saw the mask and did not
    /// notify): the runtime goes on polling instead of sleeping.
    fn park(&mut self, _kernel: &mut dyn Kernel) -> Result<bool, HandlerError> {
        Ok(false)
    }
}

/// The handler type of a PD whose `init` never returns (it runs a guest to the
/// end, then exits or halts): no value exists, so no method can be called.
#[derive(Debug)]
pub enum Never {}

impl Handler for Never {}

/// A PD whose state is too large for the runtime's stack, kept in a `Box`; every
/// event goes straight through to it. (A newtype rather than `impl Handler for
/// Box<H>`, which would take that impl away from every other crate.)
#[cfg(any(test, feature = "alloc"))]
#[derive(Debug)]
pub struct Boxed<H: ?Sized>(pub alloc::boxed::Box<H>);

#[cfg(any(test, feature = "alloc"))]
impl<H: Handler + ?Sized> Handler for Boxed<H> {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        self.0.notified(kernel, channels)
    }

    fn protected(&mut self, kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        self.0.protected(kernel, call)
    }

    fn fault(
        &mut self,
        kernel: &mut dyn Kernel,
        child: Child,
        info: FaultInfo,
    ) -> Result<bool, HandlerError> {
        self.0.fault(kernel, child, info)
    }

    fn poll(&mut self, kernel: &mut dyn Kernel) -> Result<bool, HandlerError> {
        self.0.poll(kernel)
    }

    fn park(&mut self, kernel: &mut dyn Kernel) -> Result<bool, HandlerError> {
        self.0.park(kernel)
    }
}

/// What a PD may ask for while it starts: the regions and variables system.xml
/// set for it, by the `setvar_vaddr` / `setvar` name its map or setvar declared.
pub trait Init {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError>;

    fn variable(&self, name: &'static str) -> Result<u64, InitError>;

    /// The PD's name in system.xml, for log lines.
    fn pd_name(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RecordingKernel;
    use std::format;

    #[derive(Debug)]
    struct Holder<'k> {
        kernel: &'k mut dyn Kernel,
        vp: u32,
    }

    #[test]
    fn a_holder_of_the_kernel_derives_debug_without_the_backend_state() {
        let mut kernel = RecordingKernel::default();
        kernel.console.push_str("not for the holder's log");
        let holder = Holder {
            kernel: &mut kernel,
            vp: 3,
        };
        let shown = format!("{holder:?}");
        holder.kernel.debug_puts(&format!(" vp {}", holder.vp));
        assert_eq!(shown, "Holder { kernel: dyn Kernel, vp: 3 }");
        assert_eq!(kernel.console, "not for the holder's log vp 3");
    }
}
