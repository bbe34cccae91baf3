//! VP 0 of the guest: the exits a guest's instructions cause, made as the vCPU PD
//! makes them (protected calls to hvcall-pd and synic-pd), guest memory, and the
//! VMBus message transport Linux builds from HvPostMessage and the SynIC.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use hvcall_pd::api as hvapi;
use hvcall_pd::{HypercallRequest, Outcome};
use hvdef::cpuid::privilege;
use hvdef::hypercall::{PostMessageInput, SignalEventInput};
use hvdef::msr::{HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL};
use hvdef::{Control, HvStatus, HypercallCode, Vtl};
use ipc::{Consumer, Init, InitError, InitExt, Kernel, Perms, Region};
use synic_pd::Instance;
use vmbus_client::{Transport, TransportError};
use zerocopy::{FromZeros, IntoBytes};

use crate::config::{
    GUEST_RAM, GUEST_SHARED, HVCALL, HYPERCALL_PAGE, INPUT_PAGE, IRQ_QUEUE, SHARED_GPA, WAIT,
};
use crate::synic::GuestSynic;
use crate::time::Instant;
use crate::{ensure, fail, Failure, Result};

/// Waits the way a vCPU with nothing to do would halt: briefly yield the core, then
/// sleep in short steps, so a PD on the same core gets to answer.
#[derive(Debug)]
pub struct Backoff {
    spins: u32,
    deadline: Instant,
}

impl Backoff {
    pub fn new(limit: Duration) -> Self {
        Self {
            spins: 0,
            deadline: Instant::now() + limit,
        }
    }

    /// `false` once the deadline has passed.
    pub fn wait(&mut self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        self.spins += 1;
        crate::time::pause(self.spins);
        true
    }

    /// As [`Self::wait`], for what arrives as an interrupt request: after a few
    /// yields, asks synic-pd for a notification (the queue's `prepare_to_sleep`)
    /// and halts until it comes, rather than sleeping a fixed step and finding
    /// the request there long after it came.
    pub fn halt(&mut self, synic: &mut GuestSynic) -> Result<bool> {
        if Instant::now() >= self.deadline {
            return Ok(false);
        }
        self.spins += 1;
        if self.spins < YIELDS_BEFORE_HALT {
            crate::time::pause(self.spins);
        } else if synic.prepare_to_sleep()? {
            crate::time::halt(HALT_STEP);
        }
        Ok(true)
    }
}

/// Yields before a wait for an interrupt halts: a reply that is already on its way
/// comes without the cost of a wake-up.
const YIELDS_BEFORE_HALT: u32 = 64;
/// Longest halt: bounds what a notification that never comes can cost.
const HALT_STEP: Duration = Duration::from_millis(1);

/// What the CPUID leaves said, as Linux's `ms_hyperv_init_platform` reads them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HyperV {
    pub max_leaf: u32,
    pub confidential_vmbus: bool,
}

#[derive(Debug)]
pub struct Vcpu<'k> {
    pub kernel: &'k mut dyn Kernel,
    pub ram: Region<'static>,
    pub shared: Region<'static>,
    pub synic: GuestSynic,
    /// The instance channel messages are expected on once connected.
    pub message_instance: Option<Instance>,
    /// Messages that arrived on the other instance (a misrouting).
    pub misrouted: u64,
    /// HvPostMessage calls refused with INSUFFICIENT_BUFFERS and retried.
    pub busy_retries: u64,
}

impl<'k> Vcpu<'k> {
    pub fn new(
        kernel: &'k mut dyn Kernel,
        ram: Region<'static>,
        shared: Region<'static>,
        synic: GuestSynic,
    ) -> Self {
        Self {
            kernel,
            ram,
            shared,
            synic,
            message_instance: None,
            misrouted: 0,
            busy_retries: 0,
        }
    }

    /// A vCPU over the PD's grants: guest RAM, its shared alias and the interrupt
    /// queue. The consumer attaches to the queue's indices as they are, so a fresh
    /// vCPU may follow another over the same queue (one session after another).
    pub fn attach(
        init: &dyn Init,
        kernel: &'k mut dyn Kernel,
    ) -> core::result::Result<Self, InitError> {
        let irqs: Consumer<'static, synic_pd::api::IrqEntry> =
            init.queue(IRQ_QUEUE, synic_pd::pd::IRQ_QUEUE_CAPACITY)?;
        let ram = init.region_with(GUEST_RAM, Perms::RW)?;
        let shared = init.region_with(GUEST_SHARED, Perms::RW)?;
        Ok(Self::new(kernel, ram, shared, GuestSynic::new(ram, irqs)))
    }

    /// The guest physical address space: private RAM at 0, its shared alias at the
    /// vTOM.
    pub fn memory_at(&self, gpa: u64, len: usize) -> Result<(Region<'static>, usize)> {
        let (region, offset) = if gpa >= SHARED_GPA {
            (self.shared, gpa - SHARED_GPA)
        } else {
            (self.ram, gpa)
        };
        let offset = usize::try_from(offset).map_err(|_| Failure(format!("gpa {gpa:#x}")))?;
        region
            .subregion(offset, len)
            .map_err(|e| Failure(format!("gpa {gpa:#x}+{len:#x}: {e}")))?;
        Ok((region, offset))
    }

    pub fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<()> {
        let (region, offset) = self.memory_at(gpa, bytes.len())?;
        region
            .write_bytes(offset, bytes)
            .map_err(|e| Failure(format!("guest write at {gpa:#x}: {e}")))
    }

    /// A VMCALL exit: hvcall-pd decodes and completes it.
    pub fn hypercall(&mut self, control: Control, rdx: u64, r8: u64) -> Result<HvStatus> {
        let req = HypercallRequest {
            vp: 0,
            vtl: Vtl::VTL0,
            control,
            rdx,
            r8,
        };
        match hvapi::hypercall(self.kernel, HVCALL, &req) {
            Ok(Some(Outcome::Complete(r))) => Ok(r.status()),
            other => fail(format!("hypercall {control:?}: {other:?}")),
        }
    }

    pub fn cpuid(&mut self, leaf: u32) -> Result<[u32; 4]> {
        hvapi::cpuid(self.kernel, HVCALL, 0, leaf, 0)
            .map_err(|e| Failure(format!("cpuid {leaf:#x}: {e}")))?
            .ok_or_else(|| Failure(format!("cpuid {leaf:#x} not answered")))
    }

    /// Hyper-V detection, guest OS id and the hypercall page, as a Linux guest's
    /// boot does before touching VMBus.
    pub fn detect_hyperv(&mut self) -> Result<HyperV> {
        let [max, b, c, d] = self.cpuid(0x4000_0000)?;
        let vendor: Vec<u8> = [b, c, d].iter().flat_map(|w| w.to_le_bytes()).collect();
        ensure!(
            vendor == b"Microsoft Hv" && max >= 0x4000_0005,
            "hypervisor vendor {:?}, max leaf {max:#x}",
            String::from_utf8_lossy(&vendor)
        );
        let features = self.cpuid(0x4000_0003)?;
        let needed = privilege::ACCESS_HYPERCALL_MSRS | privilege::ACCESS_SYNIC_MSRS;
        ensure!(
            features[0] & needed == needed,
            "hypercall/SynIC privileges missing: {:#x}",
            features[0]
        );
        let isolation = self.cpuid(0x4000_0082)?;
        let wrmsr = |k: &mut dyn Kernel, msr, v| hvapi::write_msr(k, HVCALL, 0, Vtl::VTL0, msr, v);
        ensure!(
            wrmsr(self.kernel, HV_X64_MSR_GUEST_OS_ID, 0x8100_0000_0006_0100)
                == Ok(Some(hvapi::MsrReply::Ok)),
            "guest OS id refused"
        );
        ensure!(
            wrmsr(self.kernel, HV_X64_MSR_HYPERCALL, HYPERCALL_PAGE | 1)
                == Ok(Some(hvapi::MsrReply::Ok)),
            "hypercall page refused"
        );
        Ok(HyperV {
            max_leaf: max,
            confidential_vmbus: isolation[0] & 8 != 0,
        })
    }

    /// HvPostMessage from the input page. INSUFFICIENT_BUFFERS is retried while
    /// taking what arrives meanwhile, as Linux's `vmbus_post_msg` retries: the
    /// answer the server cannot deliver may be what keeps its queue full.
    pub fn post(
        &mut self,
        connection_id: u32,
        message_type: u32,
        payload: &[u8],
    ) -> Result<HvStatus> {
        let mut input = PostMessageInput::new_zeroed();
        input.connection_id = connection_id;
        input.message_type = message_type;
        input.payload_size = payload.len() as u32;
        let len = payload.len().min(input.payload.len());
        input.payload[..len].copy_from_slice(&payload[..len]);
        let mut backoff = Backoff::new(WAIT);
        loop {
            self.write_gpa(INPUT_PAGE, input.as_bytes())?;
            let status =
                self.hypercall(Control::new(HypercallCode::POST_MESSAGE), INPUT_PAGE, 0)?;
            if status != HvStatus::INSUFFICIENT_BUFFERS {
                return Ok(status);
            }
            self.busy_retries += 1;
            self.synic.service(self.kernel)?;
            if !backoff.wait() {
                return Ok(status);
            }
        }
    }

    /// HvSignalEvent as Linux issues it: a fast call, the input in RDX.
    pub fn signal(&mut self, connection_id: u32, flag: u16) -> Result<HvStatus> {
        let input = SignalEventInput {
            connection_id,
            flag_number: flag,
            reserved: 0,
        };
        self.hypercall(
            Control::new(HypercallCode::SIGNAL_EVENT).with_fast(true),
            input.to_u64(),
            0,
        )
    }

    /// Waits for the event flag `flag` on `instance` (a channel interrupt).
    pub fn wait_event(&mut self, instance: Instance, flag: u32, what: &str) -> Result<()> {
        let mut backoff = Backoff::new(WAIT);
        loop {
            self.synic.service(self.kernel)?;
            if self.synic.take_event(instance, flag) {
                return Ok(());
            }
            if !backoff.halt(&mut self.synic)? {
                return fail(format!("no interrupt for {what} within {WAIT:?}"));
            }
        }
    }

    /// Takes every message that arrived without waiting.
    pub fn drain_messages(&mut self) -> Result<usize> {
        self.synic.service(self.kernel)?;
        let mut n = 0;
        while self.synic.next_message().is_some() {
            n += 1;
        }
        Ok(n)
    }
}

impl Transport for Vcpu<'_> {
    fn post(
        &mut self,
        connection_id: u32,
        message: &[u8],
    ) -> core::result::Result<(), TransportError> {
        match Vcpu::post(self, connection_id, 1, message) {
            Ok(HvStatus::SUCCESS) => Ok(()),
            Ok(HvStatus::INSUFFICIENT_BUFFERS) => Err(TransportError::Busy),
            Ok(HvStatus::INVALID_CONNECTION_ID) => Err(TransportError::InvalidConnection),
            Ok(s) => Err(TransportError::Other(format!("HvPostMessage: {s:?}"))),
            Err(e) => Err(TransportError::Other(e.0)),
        }
    }

    fn receive(&mut self) -> core::result::Result<Option<Vec<u8>>, TransportError> {
        let mut backoff = Backoff::new(WAIT);
        loop {
            if let Some((instance, bytes)) = self.synic.next_message() {
                if self.message_instance.is_some_and(|i| i != instance) {
                    self.misrouted += 1;
                }
                return Ok(Some(bytes));
            }
            self.synic
                .service(self.kernel)
                .map_err(|e| TransportError::Other(e.0))?;
            if self.synic.has_message() {
                continue;
            }
            let waiting = backoff
                .halt(&mut self.synic)
                .map_err(|e| TransportError::Other(e.0))?;
            if !waiting {
                return Ok(None);
            }
        }
    }
}
