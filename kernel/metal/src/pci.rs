//! PCI device grants (`<pci_device>`): at boot, find each granted function by its
//! bus:device.function through configuration mechanism #1, check it is what the
//! grant names, map its listed memory BARs uncached into the owner, and hand the
//! owner its INTx line as an irq capability; afterwards `PCI_CONFIG` reads and
//! writes that one function's configuration space for its owner, under
//! `kernel_abi::pci::check_access`. Ports 0xCF8/0xCFC stay the kernel's: ring 3
//! has no I/O ports at all.
#![allow(unsafe_code)]

use core::ptr::addr_of_mut;

use kernel_abi::image::{SystemImage, CHANNELS};
use kernel_abi::pci::{self, reg, Bdf, PciDesc, Refusal, MAX_DEVICES};
use kernel_abi::syscall::Status;
use kernel_core::paging::{self, PageSize};
use kernel_core::{PdConfig, PdId};

use crate::cpu;
use crate::loader::Tcb;
use crate::mem::{Frames, Phys};

const ADDRESS_PORT: u16 = 0xcf8;
const DATA_PORT: u16 = 0xcfc;

/// (owner PD, its channel id, the function) per grant, for `PCI_CONFIG`.
static mut GRANTS: [Option<(PdId, u8, Bdf)>; MAX_DEVICES] = [None; MAX_DEVICES];

fn grants() -> &'static mut [Option<(PdId, u8, Bdf)>; MAX_DEVICES] {
    // SAFETY: single CPU, interrupts off in the kernel; written only at boot.
    unsafe { &mut *addr_of_mut!(GRANTS) }
}

/// Why a grant cannot be honoured; the kernel stops rather than boot a driver
/// without its device (or with someone else's).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("PCI {bdf:x?} is not the granted device (ids {1:#010x})", bdf = ids(.0))]
    Absent(Bdf, u32),
    #[error("PCI {bdf:x?} is a bridge", bdf = ids(.0))]
    NotAnEndpoint(Bdf),
    #[error("PCI {bdf:x?} BAR {1}: {2}", bdf = ids(.0))]
    Bar(Bdf, u8, &'static str),
    #[error("PCI {bdf:x?}: INTx line {1} is not a free legacy PIC line 1..=15", bdf = ids(.0))]
    Irq(Bdf, u8),
    #[error("PCI {bdf:x?}: cannot map a BAR", bdf = ids(.0))]
    Map(Bdf),
}

/// A function's address as the messages print it (hex bus, device, function).
fn ids(b: &Bdf) -> (u8, u8, u8) {
    (b.bus, b.device, b.function)
}

fn select(bdf: Bdf, offset: u16) {
    cpu::outl(ADDRESS_PORT, bdf.config_address(offset));
}

/// One access of `width` bytes at `offset` (aligned to its width, so it stays in
/// one dword): the data port plus the offset's low bits picks the bytes, so a
/// narrow write never rewrites its neighbours (the status register's bits are
/// write-one-to-clear).
fn access(bdf: Bdf, offset: u16, width: u8, write: Option<u32>) -> u32 {
    select(bdf, offset);
    let port = DATA_PORT + (offset & 3);
    match (width, write) {
        (1, Some(v)) => cpu::outb(port, v as u8),
        (2, Some(v)) => cpu::outw(port, v as u16),
        (_, Some(v)) => cpu::outl(port, v),
        (1, None) => return u32::from(cpu::inb(port)),
        (2, None) => return u32::from(cpu::inw(port)),
        (_, None) => return cpu::inl(port),
    }
    0
}

fn read32(bdf: Bdf, offset: u16) -> u32 {
    access(bdf, offset, 4, None)
}

fn write32(bdf: Bdf, offset: u16, v: u32) {
    access(bdf, offset, 4, Some(v));
}

/// Honours every grant in `image`: BAR windows into the owners' page tables,
/// INTx lines into their capability tables. `ram_end` is the end of the RAM the
/// kernel manages: no BAR may lie below it.
pub fn load(
    image: &SystemImage<'_>,
    frames: &mut Frames,
    tcbs: &[Tcb],
    configs: &mut [PdConfig],
) -> Result<usize, GrantError> {
    let ram_end = frames.end();
    for (slot, d) in grants().iter_mut().zip(image.pcis()) {
        let bdf = d.bdf();
        let ids = read32(bdf, reg::VENDOR_ID);
        if ids != u32::from(d.device_id) << 16 | u32::from(d.vendor_id) {
            return Err(GrantError::Absent(bdf, ids));
        }
        if (read32(bdf, reg::HEADER_TYPE & !3) >> 16) & 0x7f != 0 {
            return Err(GrantError::NotAnEndpoint(bdf));
        }
        let root = tcbs[usize::from(d.owner_pd)].cr3;
        map_bars(d, bdf, frames, root, ram_end)?;
        let owner = usize::from(d.owner_pd);
        grant_irq(d, bdf, configs, owner)?;
        *slot = Some((d.owner_pd, d.channel, bdf));
    }
    Ok(image.pcis().len())
}

fn map_bars(
    d: &PciDesc,
    bdf: Bdf,
    frames: &mut Frames,
    root: u64,
    ram_end: u64,
) -> Result<(), GrantError> {
    for b in d.bars() {
        let at = reg::BAR0 + 4 * u16::from(b.index);
        let bar = size_bar(bdf, at, b.index).map_err(|why| GrantError::Bar(bdf, b.index, why))?;
        if bar.size > b.size {
            return Err(GrantError::Bar(bdf, b.index, "larger than its window"));
        }
        if bar.addr < ram_end {
            return Err(GrantError::Bar(bdf, b.index, "placed over RAM"));
        }
        let flags = paging::user_flags(
            kernel_abi::image::perms::R | kernel_abi::image::perms::W,
            false,
        );
        paging::map_range(
            &mut Phys(frames),
            root,
            b.vaddr,
            bar.addr,
            bar.size,
            PageSize::Size4K,
            flags,
        )
        .map_err(|_| GrantError::Map(bdf))?;
    }
    Ok(())
}

/// Reads BAR `index` at config offset `at` and sizes it (all ones written and
/// read back with memory decoding off, as firmware does), then restores it.
fn size_bar(bdf: Bdf, at: u16, index: u8) -> Result<pci::Bar, &'static str> {
    let lo = read32(bdf, at);
    let wide = lo & 0b111 == 0b100;
    if wide && index + 1 >= pci::MAX_BARS as u8 {
        return Err("64-bit BAR in the last slot");
    }
    let hi = if wide { read32(bdf, at + 4) } else { 0 };
    let command = access(bdf, reg::COMMAND, 2, None);
    access(
        bdf,
        reg::COMMAND,
        2,
        Some(command & !u32::from(reg::COMMAND_MEMORY)),
    );
    let size_lo = size_probe(bdf, at, lo);
    let size_hi = if wide { size_probe(bdf, at + 4, hi) } else { 0 };
    access(bdf, reg::COMMAND, 2, Some(command));
    pci::decode_bar(lo, hi, size_lo, size_hi).map_err(|e| match e {
        pci::BarError::NotMemory => "an I/O port BAR",
        pci::BarError::Unusable => "not a placed memory BAR",
        pci::BarError::SubPage => "smaller than a page or unaligned",
    })
}

/// What BAR dword `at` reads back once all ones are written to it; then its
/// value `was` goes back.
fn size_probe(bdf: Bdf, at: u16, was: u32) -> u32 {
    write32(bdf, at, u32::MAX);
    let size = read32(bdf, at);
    write32(bdf, at, was);
    size
}

/// The function's INTx line, as firmware routed it and wrote it into the
/// interrupt line register, becomes the irq of the grant's channel: unless the
/// function has no interrupt pin, or the line is the timer's or another PD's.
fn grant_irq(
    d: &PciDesc,
    bdf: Bdf,
    configs: &mut [PdConfig],
    owner: usize,
) -> Result<(), GrantError> {
    let v = read32(bdf, reg::INTERRUPT_LINE);
    let (line, pin) = ((v & 0xff) as u8, ((v >> 8) & 0xff) as u8);
    if pin == 0 {
        return Ok(());
    }
    use kernel_abi::image::CapDesc;
    let held = configs
        .iter()
        .flat_map(|c| c.caps.iter())
        .any(|cap| cap.irq == Some(line));
    if !(CapDesc::MIN_IRQ..=CapDesc::MAX_IRQ).contains(&line) || held {
        return Err(GrantError::Irq(bdf, line));
    }
    if let Some(cap) = configs
        .get_mut(owner)
        .and_then(|c| c.caps.get_mut(usize::from(d.channel)))
    {
        cap.irq = Some(line);
    }
    Ok(())
}

/// `PCI_CONFIG(ch, offset, flags, value)` for PD `pd`: the value read (0 for a
/// write) or the refusal.
pub fn config(pd: PdId, ch: u64, offset: u64, flags: u64, value: u64) -> Result<u64, Status> {
    if ch >= CHANNELS as u64 {
        return Err(Status::BAD_ARGUMENT);
    }
    let bdf = grants()
        .iter()
        .flatten()
        .find(|(owner, channel, _)| *owner == pd && u64::from(*channel) == ch)
        .map(|&(_, _, bdf)| bdf)
        .ok_or(Status::NOT_GRANTED)?;
    let a = pci::check_access(offset, flags).map_err(|r| match r {
        Refusal::BadArgument => Status::BAD_ARGUMENT,
        Refusal::Protected => Status::CONFIG_PROTECTED,
    })?;
    let write = a.write.then_some(value as u32);
    Ok(u64::from(access(bdf, a.offset, a.width, write)))
}
