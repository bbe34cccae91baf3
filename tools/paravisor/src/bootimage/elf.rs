//! A bounded ELF64 reader: just the header and program headers, every offset and
//! size checked. PD images and the kernel come from the user's build, so a broken
//! file is an error with a reason, never a panic.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[repr(C)]
#[derive(Copy, Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Ehdr {
    pub ident: [u8; 16],
    pub e_type: u16,
    pub machine: u16,
    pub version: u32,
    pub entry: u64,
    pub phoff: u64,
    pub shoff: u64,
    pub flags: u32,
    pub ehsize: u16,
    pub phentsize: u16,
    pub phnum: u16,
    pub shentsize: u16,
    pub shnum: u16,
    pub shstrndx: u16,
}

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Phdr {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

const _: () = assert!(core::mem::size_of::<Ehdr>() == 64);
const _: () = assert!(core::mem::size_of::<Phdr>() == 56);

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
/// More program headers than any sane image has; bounds the work on hostile input.
const MAX_PHDRS: usize = 64;

#[derive(Clone, Debug)]
pub struct Elf {
    pub header: Ehdr,
    pub phdrs: Vec<Phdr>,
}

impl Elf {
    pub fn loads(&self) -> impl Iterator<Item = &Phdr> {
        self.phdrs.iter().filter(|p| p.p_type == PT_LOAD)
    }
}

pub fn parse(bytes: &[u8]) -> Result<Elf, String> {
    let (header, _) =
        Ehdr::read_from_prefix(bytes).map_err(|_| "shorter than an ELF header".to_string())?;
    if header.ident[..4] != *b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if header.ident[4] != 2 || header.ident[5] != 1 {
        return Err("not a little-endian 64-bit ELF".into());
    }
    if header.machine != EM_X86_64 {
        return Err(format!("built for machine {}, not x86_64", header.machine));
    }
    if header.e_type != ET_EXEC {
        return Err("not a static executable (ET_EXEC); link with relocation-model=static".into());
    }
    if usize::from(header.phentsize) != core::mem::size_of::<Phdr>() {
        return Err("unexpected program header size".into());
    }
    let count = usize::from(header.phnum);
    if count > MAX_PHDRS {
        return Err(format!("{count} program headers (at most {MAX_PHDRS})"));
    }
    let start = usize::try_from(header.phoff).map_err(|_| "program headers out of range")?;
    let table = bytes
        .get(start..)
        .and_then(|t| <[Phdr]>::ref_from_prefix_with_elems(t, count).ok())
        .map(|(t, _)| t)
        .ok_or("program headers lie outside the file")?;
    for p in table
        .iter()
        .filter(|p| p.p_type == PT_LOAD || p.p_type == PT_NOTE)
    {
        let end = p.offset.checked_add(p.filesz);
        if end.is_none_or(|e| e > bytes.len() as u64) {
            return Err(format!("segment at {:#x} lies outside the file", p.vaddr));
        }
        if p.filesz > p.memsz && p.p_type == PT_LOAD {
            return Err(format!(
                "segment at {:#x} has more file than memory bytes",
                p.vaddr
            ));
        }
        if p.vaddr.checked_add(p.memsz).is_none() || p.paddr.checked_add(p.memsz).is_none() {
            return Err(format!("segment at {:#x} wraps around", p.vaddr));
        }
    }
    Ok(Elf {
        header,
        phdrs: table.to_vec(),
    })
}
