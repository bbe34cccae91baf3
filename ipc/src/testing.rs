//! Fakes for driving a PD's [`Handler`](crate::Handler) directly in host tests, with
//! no runtime at all: heap-backed regions, a configurable [`Init`], and a kernel
//! that records what the PD asked for.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;

use crate::handler::PpReply;
use crate::{Channel, Handler, Init, InitError, IpcError, Kernel, Perms, PpCall, Region};

/// A zeroed read-write region of at least `bytes` bytes that lives for the rest of
/// the test process (tests hand `'static` regions to PDs exactly as runtimes do).
pub fn leaked_region(bytes: usize) -> Region<'static> {
    let words: &'static [AtomicU64] = Box::leak(
        (0..bytes.div_ceil(8))
            .map(|_| AtomicU64::new(0))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    Region::from_atomics(words, Perms::RW)
}

/// An [`Init`] whose regions and variables the test chooses.
#[derive(Debug, Default, Clone)]
pub struct FakeInit {
    name: String,
    regions: BTreeMap<&'static str, Region<'static>>,
    variables: BTreeMap<&'static str, u64>,
}

impl FakeInit {
    pub fn new(pd_name: &str) -> Self {
        Self {
            name: pd_name.into(),
            ..Self::default()
        }
    }

    pub fn region(mut self, setvar: &'static str, region: Region<'static>) -> Self {
        self.regions.insert(setvar, region);
        self
    }

    pub fn variable(mut self, name: &'static str, value: u64) -> Self {
        self.variables.insert(name, value);
        self
    }

    /// Drops a variable again, for tests of what a PD does when system.xml lacks it.
    pub fn without_variable(mut self, name: &str) -> Self {
        self.variables.remove(name);
        self
    }

    /// Drops a region again, for tests of what a PD does when system.xml lacks it.
    pub fn without_region(mut self, setvar: &str) -> Self {
        self.regions.remove(setvar);
        self
    }
}

impl Init for FakeInit {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        self.regions
            .get(setvar)
            .copied()
            .ok_or(InitError::MissingRegion(setvar))
    }

    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        self.variables
            .get(name)
            .copied()
            .ok_or(InitError::MissingVariable(name))
    }

    fn pd_name(&self) -> &str {
        &self.name
    }
}

/// A kernel that grants every notify and irq ack and records them; protected calls
/// are refused as not granted unless the test wires PDs together itself.
#[derive(Debug, Default)]
pub struct RecordingKernel {
    pub notified: Vec<Channel>,
    pub acked: Vec<Channel>,
    pub console: String,
}

impl RecordingKernel {
    /// The notifications recorded so far, leaving the record empty.
    pub fn take_notified(&mut self) -> Vec<Channel> {
        core::mem::take(&mut self.notified)
    }
}

impl Kernel for RecordingKernel {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.notified.push(ch);
        Ok(())
    }

    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        Err(IpcError::NotGranted(call.ch))
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.acked.push(ch);
        Ok(())
    }

    fn debug_puts(&mut self, text: &str) {
        self.console.push_str(text);
    }
}

/// Where a [`RoutingKernel`] sends protected calls: a test's fake peers, or the real
/// handler of the PD on the other end of the channel.
pub trait Route {
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply;
}

impl<F> Route for F
where
    F: FnMut(PpCall<'_>) -> PpReply,
{
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        self(call)
    }
}

/// Serves `call` in-process with the real handler of the PD on the other end of the
/// channel, which knows it as `their`, on that PD's `kernel`; a refusal reaches the
/// caller as [`IpcError::CallFailed`], as it does through a runtime.
pub fn call_handler(
    handler: &mut dyn Handler,
    kernel: &mut dyn Kernel,
    call: PpCall<'_>,
    their: Channel,
) -> PpReply {
    let ch = call.ch;
    handler
        .protected(kernel, call.on(their))
        .map_err(|_| IpcError::CallFailed(ch))
}

/// A [`RecordingKernel`] whose protected calls go to `route` instead of being
/// refused, so a test writes only the peers it fakes.
#[derive(Debug, Default)]
pub struct RoutingKernel<R> {
    pub route: R,
    pub record: RecordingKernel,
}

impl<R> RoutingKernel<R> {
    pub fn new(route: R) -> Self {
        Self {
            route,
            record: RecordingKernel::default(),
        }
    }
}

impl<R: Route> Kernel for RoutingKernel<R> {
    fn notify(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.record.notify(ch)
    }

    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        self.route.pp_call(call)
    }

    fn irq_ack(&mut self, ch: Channel) -> Result<(), IpcError> {
        self.record.irq_ack(ch)
    }

    fn debug_puts(&mut self, text: &str) {
        self.record.debug_puts(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageInfo, MessageRegisters};

    #[test]
    fn removed_entries_read_as_missing() {
        let init = FakeInit::new("pd")
            .variable("v", 1)
            .region("r", leaked_region(8))
            .without_variable("v")
            .without_region("r");
        assert_eq!(
            Init::variable(&init, "v"),
            Err(InitError::MissingVariable("v"))
        );
        assert_eq!(
            Init::region(&init, "r").unwrap_err(),
            InitError::MissingRegion("r")
        );
    }

    #[test]
    fn routed_calls_reach_the_route_and_the_rest_is_recorded() {
        let mut kernel = RoutingKernel::new(|call: PpCall<'_>| {
            if call.ch == Channel::new(1) {
                call.mrs.set(0, call.label() + 1);
                Ok(MessageInfo::new(0, 1))
            } else {
                Err(IpcError::NotGranted(call.ch))
            }
        });
        let mut mrs = MessageRegisters::new();
        let reply = Channel::new(1).pp_call(&mut kernel, MessageInfo::new(41, 0), &mut mrs);
        assert_eq!(reply, Ok(MessageInfo::new(0, 1)));
        assert_eq!(mrs.get(0), 42);
        assert_eq!(
            Channel::new(2).pp_call(&mut kernel, MessageInfo::new(0, 0), &mut mrs),
            Err(IpcError::NotGranted(Channel::new(2)))
        );
        kernel.notify(Channel::new(3)).unwrap();
        kernel.irq_ack(Channel::new(4)).unwrap();
        kernel.debug_puts("hi");
        assert_eq!(kernel.record.take_notified(), [Channel::new(3)]);
        assert_eq!(kernel.record.acked, [Channel::new(4)]);
        assert_eq!(kernel.record.console, "hi");
    }

    #[test]
    fn a_handler_without_notified_refuses_every_notification() {
        struct CallsOnly;
        impl crate::Handler for CallsOnly {}
        let set = crate::ChannelSet::from_iter([Channel::new(4), Channel::new(1)]);
        assert_eq!(
            crate::Handler::notified(&mut CallsOnly, &mut RecordingKernel::default(), set),
            Err(crate::HandlerError::UnexpectedNotification(Channel::new(1)))
        );
    }

    #[test]
    fn a_boxed_handler_sees_every_event() {
        struct Counter(u32);
        impl crate::Handler for Counter {
            fn notified(
                &mut self,
                _: &mut dyn Kernel,
                _: crate::ChannelSet,
            ) -> Result<(), crate::HandlerError> {
                self.0 += 1;
                Ok(())
            }
            fn protected(&mut self, _: &mut dyn Kernel, call: PpCall<'_>) -> crate::HandlerReply {
                Ok(MessageInfo::new(
                    call.label() + u64::from(call.ch.index()),
                    0,
                ))
            }
        }
        let mut boxed = crate::Boxed(Box::new(Counter(0)));
        let mut k = RecordingKernel::default();
        let set = crate::ChannelSet::from_iter([Channel::new(2)]);
        crate::Handler::notified(&mut boxed, &mut k, set).unwrap();
        assert_eq!(boxed.0 .0, 1);
        let mut mrs = MessageRegisters::new();
        let call = PpCall::new(Channel::new(3), MessageInfo::new(4, 0), &mut mrs);
        let reply = crate::Handler::protected(&mut boxed, &mut k, call);
        assert_eq!(reply, Ok(MessageInfo::new(7, 0)));
        let info = crate::FaultInfo {
            code: 14,
            address: 0,
            ip: 0,
        };
        assert_eq!(
            crate::Handler::fault(&mut boxed, &mut k, crate::Child(1), info),
            Err(crate::HandlerError::UnhandledFault(crate::Child(1)))
        );
    }
}
