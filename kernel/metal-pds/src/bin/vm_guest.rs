//! guest-sim on the bare-metal runtime, as the boot test's VMBus self-test: detects
//! Hyper-V through hvcall-pd, enables both SynICs through synic-pd, negotiates
//! VMBus 6.0 with vmbus-server, opens the echo VSP's channel on a confidential ring
//! and exchanges packets, then closes and unloads. It prints a report and halts the
//! machine with the verdict (0 = pass). Nothing calls it: its `init` never returns.
#![no_std]
#![no_main]

extern crate alloc;

use guest_sim::config::{GUEST_RAM, GUEST_SHARED, IRQ_QUEUE};
use guest_sim::scenario::{self, Options};
use guest_sim::synic::GuestSynic;
use guest_sim::vcpu::Vcpu;
use ipc::{Consumer, Init, InitError, InitExt, Kernel, Perms};
use synic_pd::pd::IRQ_QUEUE_CAPACITY;

pd_rt::global_heap!(1024 * 1024);

/// Packets the echo exchange sends.
const PACKETS: u64 = 1000;

fn start(init: &dyn Init, kernel: &mut dyn Kernel) -> Result<metal_pds::Never, InitError> {
    let queue = init.region_with(IRQ_QUEUE, Perms::RW)?;
    let irqs = Consumer::new(queue, IRQ_QUEUE_CAPACITY).map_err(|_| InitError::RegionTooSmall {
        name: IRQ_QUEUE,
        needed: ipc::Queue::<synic_pd::api::IrqEntry>::layout_size(IRQ_QUEUE_CAPACITY)
            .unwrap_or(usize::MAX),
        granted: queue.len(),
    })?;
    let ram = init.region_with(GUEST_RAM, Perms::RW)?;
    let shared = init.region_with(GUEST_SHARED, Perms::RW)?;
    let vcpu = Vcpu::new(kernel, ram, shared, GuestSynic::new(ram, irqs));
    let options = Options {
        packets: PACKETS,
        ..Options::default()
    };
    let status = match scenario::run(vcpu, options) {
        Ok(summary) => {
            pd_rt::println!("{summary}");
            pd_rt::println!("guest_sim: REPORT PASS");
            0
        }
        Err(e) => {
            pd_rt::println!("guest_sim: FAILED: {e}");
            pd_rt::println!("guest_sim: REPORT FAIL");
            1
        }
    };
    pd_rt::sys::debug_halt(status)
}

pd_rt::entry!(start);
