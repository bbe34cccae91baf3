//! Shared bits of the boot-test PDs: the channel ids and labels of `selftest.xml`,
//! and the handler wrappers the VMBus PDs' entries (`vm_*`, `vmbus.xml`) use.
#![no_std]

use ipc::Channel;

pub mod virtio_pci;

/// selftest -> pingserver: protected calls.
pub const SELFTEST_PING: Channel = Channel::new(0);
/// selftest <-> ponger: notifications both ways.
pub const SELFTEST_PONG: Channel = Channel::new(1);
/// echo_client -> selftest: "all messages echoed".
pub const SELFTEST_ECHO_DONE: Channel = Channel::new(2);
/// selftest -> panicker: "panic now".
pub const SELFTEST_PANICKER: Channel = Channel::new(3);
/// selftest's irq (ISA line 5, raised through pc-testdev).
pub const SELFTEST_IRQ: Channel = Channel::new(4);
/// hostile -> selftest: its verdict, pass or fail.
pub const SELFTEST_HOSTILE_PASS: Channel = Channel::new(5);
pub const SELFTEST_HOSTILE_FAIL: Channel = Channel::new(6);
/// A channel id selftest was not given.
pub const NOT_GRANTED: Channel = Channel::new(40);

pub const PONGER_PEER: Channel = Channel::new(0);
pub const PINGSERVER_CALLER: Channel = Channel::new(0);
pub const ECHO_CLIENT_DONE: Channel = Channel::new(1);

/// pingserver labels.
pub const LABEL_INCREMENT: u64 = 7;
pub const LABEL_READ_SHARED: u64 = 8;
pub const LABEL_FAIL: u64 = 9;

/// The `setvar_vaddr` of the page selftest writes and the others only read.
pub const SHARED: &str = "shared";
/// The child ids selftest gives faulter and panicker.
pub const FAULTER_ID: u8 = 1;
pub const PANICKER_ID: u8 = 2;
/// Messages the echo pair streams during the boot test.
pub const ECHO_COUNT: u64 = 20_000;

/// A self-test's tally: each check is printed as `<test>: ok` or `<test>: FAIL`
/// (what the boot test greps for) and the failures are counted for the verdict.
pub struct Check {
    test: &'static str,
    pub failures: u32,
}

impl Check {
    pub const fn new(test: &'static str) -> Self {
        Self { test, failures: 0 }
    }

    pub fn expect(&mut self, ok: bool, what: &str) {
        let verdict = if ok { "ok  " } else { "FAIL" };
        pd_rt::println!("{}: {verdict} {what}", self.test);
        if !ok {
            self.failures += 1;
        }
    }
}

/// A handler behind a pointer (a `Box`), so a big PD state stays on the heap: the
/// runtime takes the handler by value, on the stack.
pub struct Boxed<P>(pub P);

impl<P> ipc::Handler for Boxed<P>
where
    P: core::ops::DerefMut,
    P::Target: ipc::Handler,
{
    fn notified(
        &mut self,
        kernel: &mut dyn ipc::Kernel,
        channels: ipc::ChannelSet,
    ) -> Result<(), ipc::HandlerError> {
        self.0.notified(kernel, channels)
    }
    fn protected(
        &mut self,
        kernel: &mut dyn ipc::Kernel,
        call: ipc::PpCall<'_>,
    ) -> ipc::HandlerReply {
        self.0.protected(kernel, call)
    }
}

/// The handler of a probe PD whose `init` is the whole test (it faults, divides
/// by zero or spins). It has no channels: should anything arrive, it is refused.
pub struct Idle;

impl ipc::Handler for Idle {}

pub use ipc::Never;
