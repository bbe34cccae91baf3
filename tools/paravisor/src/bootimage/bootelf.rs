//! Appending the system image to the kernel ELF, and finding it again.
//!
//! The output is the kernel file unchanged, then the system image at the next page
//! boundary, then a new program header table: the kernel's headers plus one PT_LOAD
//! placing the image at the first page after the kernel's highest physical byte,
//! which is where the kernel looks for it. The header's `e_phoff`/`e_phnum` point at
//! the new table; every other offset in the file stays valid.

use zerocopy::IntoBytes;

use super::elf::{self, Ehdr, Phdr, PF_R, PT_LOAD};

const PAGE: u64 = 4096;

/// The physical address where the kernel expects its system image.
pub fn image_paddr(kernel: &elf::Elf) -> u64 {
    kernel
        .loads()
        .map(|p| p.paddr + p.memsz)
        .max()
        .unwrap_or(0)
        .next_multiple_of(PAGE)
}

pub fn append(kernel_bytes: &[u8], system_image: &[u8]) -> Result<Vec<u8>, String> {
    let kernel = elf::parse(kernel_bytes).map_err(|e| format!("kernel: {e}"))?;
    if kernel.loads().next().is_none() {
        return Err("kernel: no loadable segments".into());
    }
    let paddr = image_paddr(&kernel);
    let mut out = kernel_bytes.to_vec();
    out.resize((out.len() as u64).next_multiple_of(PAGE) as usize, 0);
    let image_off = out.len() as u64;
    out.extend_from_slice(system_image);
    out.resize(out.len().next_multiple_of(8), 0);
    let phoff = out.len() as u64;
    let mut phdrs = kernel.phdrs.clone();
    phdrs.push(Phdr {
        p_type: PT_LOAD,
        flags: PF_R,
        offset: image_off,
        vaddr: paddr,
        paddr,
        filesz: system_image.len() as u64,
        memsz: system_image.len() as u64,
        align: PAGE,
    });
    out.extend_from_slice(phdrs.as_slice().as_bytes());
    let mut header: Ehdr = kernel.header;
    header.phoff = phoff;
    header.phnum = phdrs.len() as u16;
    out[..core::mem::size_of::<Ehdr>()].copy_from_slice(header.as_bytes());
    Ok(out)
}

/// A boot image taken apart: the kernel's segments and the system image bytes.
#[derive(Debug)]
pub struct Parts<'a> {
    pub system_image: &'a [u8],
    /// The kernel's loadable bytes, in program-header order, for hashing.
    pub kernel_segments: Vec<&'a [u8]>,
    pub image_paddr: u64,
}

/// Finds the system image: the last PT_LOAD, at the first page after the others.
pub fn extract(boot: &[u8]) -> Result<Parts<'_>, String> {
    let e = elf::parse(boot)?;
    let loads: Vec<&Phdr> = e.loads().collect();
    let (last, kernel) = loads.split_last().ok_or("no loadable segments")?;
    let expected = kernel
        .iter()
        .map(|p| p.paddr + p.memsz)
        .max()
        .unwrap_or(0)
        .next_multiple_of(PAGE);
    if last.paddr != expected {
        return Err(format!(
            "the last segment is at {:#x}, not right after the kernel ({expected:#x}): not a paravisor boot image",
            last.paddr
        ));
    }
    let slice = |p: &Phdr| boot.get(p.offset as usize..(p.offset + p.filesz) as usize);
    let system_image = slice(last).ok_or("system image outside the file")?;
    if u64::from_le_bytes(
        system_image
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    ) != u64::from_le_bytes(kernel_abi::image::MAGIC)
    {
        return Err("the last segment holds no system image".into());
    }
    let kernel_segments = kernel
        .iter()
        .map(|p| slice(p).ok_or("kernel segment outside the file"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Parts {
        system_image,
        kernel_segments,
        image_paddr: last.paddr,
    })
}
