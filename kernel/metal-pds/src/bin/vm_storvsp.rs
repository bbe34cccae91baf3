//! storvsp on the bare-metal runtime, with its image's build-time configuration
//! ([`storvsp::config::build`]). There is no file system here: the disk is either
//! the virtio-blk driver PD's (linux.xml: a disk image file QEMU serves as
//! virtio-blk-pci, reached over protected calls and the shared `blk_data`
//! window), or the `disk` memory region itself (vmbus.xml: a RAM disk).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Channel, Init, InitExt, MessageInfo, MessageRegisters, Perms, WithVariables};
use metal_pds::Boxed;
use storvsp::backend::{Backend, BlockCall, ServiceBackend};
use storvsp::config::build;
use storvsp::device::{self, DISK};

pd_rt::global_heap!(1024 * 1024);

/// storvsp -> virtio_blk: protected calls (linux.xml).
const BLK: Channel = Channel::new(3);

/// Protected calls to the driver PD from inside the SCSI layer, which holds no
/// kernel handle: storvsp serves one request at a time on its one thread, and
/// the event loop does not touch the IPC buffer while a handler runs.
struct DriverCalls;

impl BlockCall for DriverCalls {
    fn call(&self, label: u64, mrs: &[u64]) -> Option<(u64, [u64; 2])> {
        // SAFETY: the IPC buffer's address from the layout the kernel gives every
        // PD; see the type's comment for why sharing it here is sound.
        let mut kernel = unsafe { pd_rt::RtKernel::new(kernel_abi::layout::IPC_BUFFER_VADDR) };
        let mut regs = MessageRegisters::default();
        for (i, w) in mrs.iter().enumerate() {
            regs.set(i, *w);
        }
        let reply = BLK
            .pp_call(&mut kernel, MessageInfo::new(label, mrs.len()), &mut regs)
            .ok()?;
        Some((reply.label(), [regs.get(0), regs.get(1)]))
    }
}

pd_rt::entry!(|init, _kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let backend: Option<Box<dyn Backend + Send>> = match init
        .optional(init.region_with("blk_data", Perms::RW))?
    {
        Some(window) => {
            let Some(disk) = ServiceBackend::connect(DriverCalls, window) else {
                pd_rt::println!("storvsp: the virtio-blk driver PD does not answer");
                return Err(ipc::InitError::MissingChannel(BLK));
            };
            pd_rt::println!(
                "storvsp: virtio-blk disk of {} blocks of 512 bytes ({} MiB), through the driver PD",
                disk.block_count(),
                disk.block_count() >> 11
            );
            Some(Box::new(disk))
        }
        None => {
            let disk = init.region(DISK)?;
            pd_rt::println!(
                "storvsp: RAM disk of {} blocks of 512 bytes, through the mapping",
                disk.len() / 512
            );
            None
        }
    };
    let vsp = Box::new(device::init(&init, backend)?);
    Ok(Boxed(vsp))
});
