//! The guest payload: the kernel, initrd and command line in one memory region
//! the image builder fills from a file (made by the `guest-payload` tool), so the
//! VMM needs no file system. The region's bytes are host-supplied and hostile.
//!
//! Layout (little-endian), [`HEADER_LEN`] bytes of header, then the parts at the
//! offsets it names:
//! ```text
//! 0x00 magic "PVGUEST1"   0x08 version u32 (1)   0x0C flags u32
//! 0x10 kernel offset u64, len u64
//! 0x20 initrd offset u64, len u64
//! 0x30 cmdline offset u64, len u64 (no NUL)
//! ```

use alloc::vec::Vec;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const MAGIC: [u8; 8] = *b"PVGUEST1";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 0x40;
/// The encoder puts the kernel and initrd on page boundaries of the region.
const PART_ALIGN: usize = 0x1000;

/// Payload flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PayloadFlags(u32);

impl PayloadFlags {
    /// Present the paravisor and Confidential VMBus (`--vmbus confidential`);
    /// clear: plain Hyper-V VMBus.
    pub const CONFIDENTIAL_VMBUS: Self = Self(1);
    const KNOWN: u32 = 1;

    pub const fn empty() -> Self {
        Self(0)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    /// `None` if a bit this version does not define is set.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        if bits & !Self::KNOWN != 0 {
            None
        } else {
            Some(Self(bits))
        }
    }

    pub const fn confidential_vmbus(self) -> bool {
        self.0 & Self::CONFIDENTIAL_VMBUS.0 != 0
    }
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
struct Header {
    magic: [u8; 8],
    version: U32,
    flags: U32,
    kernel: Part,
    initrd: Part,
    cmdline: Part,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
struct Part {
    offset: U64,
    len: U64,
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER_LEN);

/// Why a payload region cannot be used, or cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The region is shorter than the header.
    #[error("payload shorter than its {HEADER_LEN}-byte header")]
    Truncated,
    #[error("payload magic is not PVGUEST1")]
    BadMagic,
    #[error("payload version {0} (want {VERSION})")]
    UnsupportedVersion(u32),
    #[error("payload flags {0:#x} has unknown bits")]
    UnknownFlags(u32),
    /// A part's range overflows, overlaps the header, or runs past the region.
    #[error("payload {part} at {offset:#x}+{len:#x} is outside the region")]
    BadRange {
        part: &'static str,
        offset: u64,
        len: u64,
    },
    /// There is no kernel.
    #[error("payload has no kernel")]
    EmptyKernel,
    /// Encoding: the parts need `needed` bytes, more than the region's `size`.
    #[error("payload needs {needed:#x} bytes, the region has {size:#x}")]
    TooLarge { needed: u64, size: u64 },
}

/// A parsed payload borrowing the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestPayload<'a> {
    pub flags: PayloadFlags,
    pub kernel: &'a [u8],
    pub initrd: &'a [u8],
    pub cmdline: &'a [u8],
}

fn part<'a>(region: &'a [u8], p: &Part, name: &'static str) -> Result<&'a [u8], PayloadError> {
    let (offset, len) = (p.offset.get(), p.len.get());
    let bad = PayloadError::BadRange {
        part: name,
        offset,
        len,
    };
    if len == 0 {
        return Ok(&[]);
    }
    let start = usize::try_from(offset).map_err(|_| bad)?;
    let end = start
        .checked_add(usize::try_from(len).map_err(|_| bad)?)
        .ok_or(bad)?;
    if start < HEADER_LEN {
        return Err(bad);
    }
    region.get(start..end).ok_or(bad)
}

impl<'a> GuestPayload<'a> {
    /// Reads the header at the start of `region` and checks each part lies inside
    /// it. The parts are not checked further here: the kernel by
    /// [`super::BzImage::parse`], the command line by [`super::plan`].
    pub fn parse(region: &'a [u8]) -> Result<Self, PayloadError> {
        let (h, _) = Header::read_from_prefix(region).map_err(|_| PayloadError::Truncated)?;
        if h.magic != MAGIC {
            return Err(PayloadError::BadMagic);
        }
        if h.version.get() != VERSION {
            return Err(PayloadError::UnsupportedVersion(h.version.get()));
        }
        let flags = PayloadFlags::from_bits(h.flags.get())
            .ok_or(PayloadError::UnknownFlags(h.flags.get()))?;
        let kernel = part(region, &h.kernel, "kernel")?;
        if kernel.is_empty() {
            return Err(PayloadError::EmptyKernel);
        }
        Ok(Self {
            flags,
            kernel,
            initrd: part(region, &h.initrd, "initrd")?,
            cmdline: part(region, &h.cmdline, "cmdline")?,
        })
    }

    /// Lays the parts out (header, command line, then the kernel and initrd on
    /// page boundaries) and, with `size`, pads to exactly that many bytes.
    pub fn encode(&self, size: Option<u64>) -> Result<Vec<u8>, PayloadError> {
        if self.kernel.is_empty() {
            return Err(PayloadError::EmptyKernel);
        }
        let cmdline_at = HEADER_LEN;
        let kernel_at = (cmdline_at + self.cmdline.len()).next_multiple_of(PART_ALIGN);
        let initrd_at = (kernel_at + self.kernel.len()).next_multiple_of(PART_ALIGN);
        let end = initrd_at + self.initrd.len();
        let total = match size {
            Some(s) if s < end as u64 => {
                return Err(PayloadError::TooLarge {
                    needed: end as u64,
                    size: s,
                })
            }
            Some(s) => usize::try_from(s).map_err(|_| PayloadError::TooLarge {
                needed: s,
                size: usize::MAX as u64,
            })?,
            None => end,
        };
        let at = |offset: usize, len: usize| Part {
            offset: U64::new(if len == 0 { 0 } else { offset as u64 }),
            len: U64::new(len as u64),
        };
        let header = Header {
            magic: MAGIC,
            version: U32::new(VERSION),
            flags: U32::new(self.flags.bits()),
            kernel: at(kernel_at, self.kernel.len()),
            initrd: at(initrd_at, self.initrd.len()),
            cmdline: at(cmdline_at, self.cmdline.len()),
        };
        let mut out = alloc::vec![0u8; total];
        out[..HEADER_LEN].copy_from_slice(header.as_bytes());
        out[cmdline_at..cmdline_at + self.cmdline.len()].copy_from_slice(self.cmdline);
        out[kernel_at..kernel_at + self.kernel.len()].copy_from_slice(self.kernel);
        out[initrd_at..end].copy_from_slice(self.initrd);
        Ok(out)
    }
}
