//! The virtio driver PDs' reach to their device (pds/virtio's `Bus` and `Dma`):
//! one PCI function's config space through `PCI_CONFIG` on the device channel
//! its `<pci_device>` grant names, its BAR 4 mapped uncached (QEMU puts every
//! modern virtio window there), and the rings region the device DMAs into.

use ipc::{Channel, Init, InitError, InitExt, Perms, Region};
use kernel_abi::pci::WRITE;
use kernel_abi::syscall::{Status, Sys};
use pd_rt::sys::syscall;
use virtio::{Bus, Dma, Error};

/// The BAR system.xml maps.
const BAR: u8 = 4;

/// A driver PD's device channel (linux.xml `<pci_device id>`): config access
/// and the function's INTx irq.
pub const DEVICE: Channel = Channel::new(1);

/// The function as the kernel lets this PD reach it.
pub struct PciBus {
    pub regs: Region<'static>,
    /// The `<pci_device id>` channel: config access and the INTx irq.
    pub device: Channel,
}

fn pci_config(device: Channel, offset: u8, flags: u64, value: u32) -> Result<u32, Status> {
    let ch = u64::from(device.index());
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
        pci_config(self.device, offset, u64::from(width), 0).map_err(|_| Error::Config)
    }

    fn config_write(&mut self, offset: u8, width: u8, value: u32) -> Result<(), Error> {
        pci_config(self.device, offset, u64::from(width) | WRITE, value)
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
pub struct Rings {
    pub region: Region<'static>,
    pub bus_addr: u64,
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

/// The kernel's grant refuses what is not this PD's: config space through any
/// other channel id, writes to the BARs and interrupt routing, accesses past
/// the 256 bytes. Checked at every boot, before the device is used.
/// `client` is a channel this PD holds that is not a device channel.
pub fn grant_is_confined(device: Channel, client: Channel) -> bool {
    let other = |ch: u64| syscall(Sys::PCI_CONFIG, ch, 0, 4, 0).0;
    let pci_config = |offset, flags, value| pci_config(device, offset, flags, value);
    let checks = [
        (other(u64::from(client.index())), Status::NOT_GRANTED),
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

/// A driver PD's start: its function (BAR 4 as the `virtio_regs` region, config
/// space on [`DEVICE`]) and its rings (region `rings`, read-write, at bus address
/// `rings_paddr`), once the kernel's grant is checked to be confined
/// ([`grant_is_confined`]; `client` is the channel to the PD it serves). `who`
/// prefixes the console lines.
pub fn attach(
    init: &dyn Init,
    who: &str,
    client: Channel,
    rings: &'static str,
    rings_paddr: &'static str,
) -> Result<(PciBus, Rings), InitError> {
    let bus = PciBus {
        regs: init.region("virtio_regs")?,
        device: DEVICE,
    };
    let rings = Rings {
        region: init.region_with(rings, Perms::RW)?,
        bus_addr: init.variable(rings_paddr)?,
    };
    if !grant_is_confined(DEVICE, client) {
        pd_rt::println!("{who}: FAIL: the kernel let this PD reach beyond its device");
        return Err(InitError::MissingRegion("a confined PCI grant"));
    }
    pd_rt::println!(
        "{who}: grant confined (other channels, BAR and irq-line writes, offsets past 256 refused)"
    );
    Ok((bus, rings))
}
