//! The virtio-blk driver PD: QEMU's `virtio-blk-pci` (modern, `disable-legacy=on`)
//! at the function system.xml's `<pci_device>` grants, served to storvsp over
//! protected calls (`virtio_blk::service`). It holds only its device: BAR 4
//! mapped uncached, config space through `PCI_CONFIG` on its device channel, the
//! function's INTx line on the same channel, the rings region it DMAs from and
//! the data window storvsp fills (mapped read-only here: only its size and its
//! physical address matter to the driver).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use ipc::{Channel, HandlerError, InitExt, Kernel, MessageInfo, MessageRegisters, Region};
use kernel_abi::pci::WRITE;
use kernel_abi::syscall::{Status, Sys};
use metal_pds::Boxed;
use pd_rt::sys::syscall;
use virtio_blk::service::Server;
use virtio_blk::{Bus, DataWindow, Dma, Driver, Error};

pd_rt::global_heap!(64 * 1024);

/// storvsp's calls (linux.xml).
const CLIENT: Channel = Channel::new(0);
/// The PCI function: config access and its INTx irq (linux.xml `<pci_device id>`).
const DEVICE: Channel = Channel::new(1);
/// The BAR system.xml maps: QEMU puts every modern virtio window in BAR 4.
const BAR: u8 = 4;
/// Used-ring polls before a request counts as lost (QEMU answers in microseconds;
/// this is seconds of spinning).
const PATIENCE: u64 = 200_000_000;

/// The function as the kernel lets this PD reach it.
struct PciBus {
    regs: Region<'static>,
}

fn pci_config(offset: u8, flags: u64, value: u32) -> Result<u32, Status> {
    let ch = u64::from(DEVICE.index());
    let (st, v, ..) = syscall(
        Sys::PCI_CONFIG,
        ch,
        u64::from(offset),
        flags,
        u64::from(value),
    );
    match Status(st) {
        Status::OK => Ok(v as u32),
        other => Err(other),
    }
}

impl PciBus {
    /// The register's address, or None past the mapped window: registers take
    /// single accesses of their width, which `Region`'s byte copies are not.
    fn reg(&self, offset: u64, width: u8, write: bool) -> Option<*mut u8> {
        let off = usize::try_from(offset).ok()?;
        let p = self.regs.io_ptr(off, usize::from(width), write).ok()?;
        Some(p.as_ptr())
    }
}

impl Bus for PciBus {
    fn config_read(&mut self, offset: u8, width: u8) -> Result<u32, Error> {
        pci_config(offset, u64::from(width), 0).map_err(|_| Error::Config)
    }

    fn config_write(&mut self, offset: u8, width: u8, value: u32) -> Result<(), Error> {
        pci_config(offset, u64::from(width) | WRITE, value)
            .map(|_| ())
            .map_err(|_| Error::Config)
    }

    fn bar_size(&self, bar: u8) -> u64 {
        if bar == BAR {
            self.regs.len() as u64
        } else {
            0
        }
    }

    fn read(&mut self, bar: u8, offset: u64, width: u8) -> u64 {
        let Some(p) = self.reg(offset, width, false).filter(|_| bar == BAR) else {
            return u64::MAX;
        };
        // SAFETY: `p..p+width` lies in the uncached BAR mapping (io_ptr checked
        // the bounds); a volatile access of the register's width is what MMIO
        // needs, and no Rust reference to that memory exists.
        unsafe {
            match width {
                1 => u64::from(p.read_volatile()),
                2 => u64::from(p.cast::<u16>().read_volatile()),
                8 => p.cast::<u64>().read_volatile(),
                _ => u64::from(p.cast::<u32>().read_volatile()),
            }
        }
    }

    fn write(&mut self, bar: u8, offset: u64, width: u8, value: u64) {
        let Some(p) = self.reg(offset, width, true).filter(|_| bar == BAR) else {
            return;
        };
        // SAFETY: as in `read`.
        unsafe {
            match width {
                1 => p.write_volatile(value as u8),
                2 => p.cast::<u16>().write_volatile(value as u16),
                8 => p.cast::<u64>().write_volatile(value),
                _ => p.cast::<u32>().write_volatile(value as u32),
            }
        }
    }
}

/// The rings region: this PD's memory, which the device also writes.
struct Rings {
    region: Region<'static>,
    bus_addr: u64,
}

impl Dma for Rings {
    fn len(&self) -> usize {
        self.region.len()
    }
    fn bus_addr(&self) -> u64 {
        self.bus_addr
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        if self.region.read_bytes(offset, out).is_err() {
            out.fill(0xff);
        }
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        let _ = self.region.write_bytes(offset, data);
    }
}

struct VirtioBlk {
    server: Server<PciBus, Rings>,
}

impl ipc::Handler for VirtioBlk {
    fn protected(
        &mut self,
        _kernel: &mut dyn Kernel,
        ch: Channel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        if ch != CLIENT {
            return Err(HandlerError::UnexpectedCall(ch));
        }
        let count = msg.count().min(3);
        let words = [mrs.get(0), mrs.get(1), mrs.get(2)];
        let (reply, out, n) = self.server.serve(msg.label(), &words[..count]);
        for (i, w) in out.iter().take(n).enumerate() {
            mrs.set(i, *w);
        }
        Ok(MessageInfo::new(reply as u64, n))
    }

    /// The device's INTx: completions are polled inside each call, so the
    /// interrupt only has to be taken off the line (reading the ISR) and acked.
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ipc::ChannelSet,
    ) -> Result<(), HandlerError> {
        channels.only_from(|c| c == DEVICE)?;
        if let Err(e) = self.server.driver().ack_interrupt() {
            pd_rt::println!("virtio-blk: interrupt: {e:?}");
        }
        DEVICE.irq_ack(kernel).map_err(HandlerError::from)
    }
}

/// The kernel's grant refuses what is not this PD's: config space through any
/// other channel id, writes to the BARs and interrupt routing, accesses past
/// the 256 bytes. Checked at every boot, before the device is used.
fn grant_is_confined() -> bool {
    let other = |ch: u64| syscall(Sys::PCI_CONFIG, ch, 0, 4, 0).0;
    let checks = [
        (other(u64::from(CLIENT.index())), Status::NOT_GRANTED),
        (other(40), Status::NOT_GRANTED),
        (other(62), Status::BAD_ARGUMENT),
        (
            pci_config(0x20, 4 | WRITE, 0).err().unwrap_or(Status::OK).0,
            Status::CONFIG_PROTECTED,
        ),
        (
            pci_config(0x3c, 1 | WRITE, 5).err().unwrap_or(Status::OK).0,
            Status::CONFIG_PROTECTED,
        ),
        (
            pci_config(0xfe, 4, 0).err().unwrap_or(Status::OK).0,
            Status::BAD_ARGUMENT,
        ),
    ];
    checks.iter().all(|&(got, want)| got == want.0)
}

pd_rt::entry!(|init, _kernel| {
    let regs = init.region("virtio_regs")?;
    let rings = Rings {
        region: init.region_with("blk_rings", ipc::Perms::RW)?,
        bus_addr: init.variable("blk_rings_paddr")?,
    };
    let data = DataWindow {
        bus_addr: init.variable("blk_data_paddr")?,
        len: init.region("blk_data")?.len() as u64,
    };
    if !grant_is_confined() {
        pd_rt::println!("virtio-blk: FAIL: the kernel let this PD reach beyond its device");
        return Err(ipc::InitError::MissingRegion("a confined PCI grant"));
    }
    pd_rt::println!("virtio-blk: grant confined (other channels, BAR and irq-line writes, offsets past 256 refused)");
    let driver = match Driver::init(PciBus { regs }, rings, data) {
        Ok(d) => d,
        Err(e) => {
            pd_rt::println!("virtio-blk: device not usable: {e:?}");
            return Err(ipc::InitError::MissingRegion("a usable virtio-blk device"));
        }
    };
    let g = driver.geometry();
    pd_rt::println!(
        "virtio-blk: {} sectors ({} MiB), flush {}, read-only {}",
        g.sectors,
        g.sectors >> 11,
        g.flush,
        g.read_only
    );
    Ok(Boxed(Box::new(VirtioBlk {
        server: Server::new(driver, PATIENCE),
    })))
});
