//! The bzImage setup header (boot.rst "THE REAL-MODE KERNEL HEADER"), read from the
//! file at 0x1F1 and checked field by field.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::error::BootError;
use super::layout::{FOUR_GIB, KERNEL_LEGACY_GPA};

/// File (and zero page) offset of the setup header.
pub(crate) const HDR_START: usize = 0x1F1;
/// The header must reach at least to the end of `init_size` (0x260 + 4)...
const MIN_HDR_END: usize = 0x264;
/// ...and may not run into `edd_mbr_sig_buffer` at 0x290 in the zero page.
const MAX_HDR_END: usize = 0x290;
const BOOT_FLAG: u16 = 0xAA55;
const MAGIC: [u8; 4] = *b"HdrS";
const SHORT_JMP: u8 = 0xEB;
/// 2.12 introduced `xloadflags`, which says whether a 64-bit entry exists.
pub(crate) const MIN_VERSION: u16 = 0x020C;
const LOADED_HIGH: u8 = 1;
const XLF_KERNEL_64: u16 = 1;
const SECTOR: u64 = 512;

/// The setup header as laid out from 0x1F1 through `handover_offset` (boot.rst).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct RawSetupHeader {
    pub setup_sects: u8,
    pub root_flags: U16,
    pub syssize: U32,
    pub ram_size: U16,
    pub vid_mode: U16,
    pub root_dev: U16,
    pub boot_flag: U16,
    pub jump: [u8; 2],
    pub header: [u8; 4],
    pub version: U16,
    pub realmode_swtch: U32,
    pub start_sys_seg: U16,
    pub kernel_version: U16,
    pub type_of_loader: u8,
    pub loadflags: u8,
    pub setup_move_size: U16,
    pub code32_start: U32,
    pub ramdisk_image: U32,
    pub ramdisk_size: U32,
    pub bootsect_kludge: U32,
    pub heap_end_ptr: U16,
    pub ext_loader_ver: u8,
    pub ext_loader_type: u8,
    pub cmd_line_ptr: U32,
    pub initrd_addr_max: U32,
    pub kernel_alignment: U32,
    pub relocatable_kernel: u8,
    pub min_alignment: u8,
    pub xloadflags: U16,
    pub cmdline_size: U32,
    pub hardware_subarch: U32,
    pub hardware_subarch_data: U64,
    pub payload_offset: U32,
    pub payload_length: U32,
    pub setup_data: U64,
    pub pref_address: U64,
    pub init_size: U32,
    pub handover_offset: U32,
}

/// Field offsets in the file and the zero page, pinned to boot.rst's table.
pub(crate) mod off {
    use super::{RawSetupHeader, HDR_START};
    use core::mem::offset_of;

    pub const TYPE_OF_LOADER: usize = HDR_START + offset_of!(RawSetupHeader, type_of_loader);
    pub const RAMDISK_IMAGE: usize = HDR_START + offset_of!(RawSetupHeader, ramdisk_image);
    pub const RAMDISK_SIZE: usize = HDR_START + offset_of!(RawSetupHeader, ramdisk_size);
    pub const CMD_LINE_PTR: usize = HDR_START + offset_of!(RawSetupHeader, cmd_line_ptr);
    pub const SETUP_DATA: usize = HDR_START + offset_of!(RawSetupHeader, setup_data);

    const _: () = {
        assert!(HDR_START + offset_of!(RawSetupHeader, syssize) == 0x1F4);
        assert!(HDR_START + offset_of!(RawSetupHeader, boot_flag) == 0x1FE);
        assert!(HDR_START + offset_of!(RawSetupHeader, header) == 0x202);
        assert!(HDR_START + offset_of!(RawSetupHeader, version) == 0x206);
        assert!(TYPE_OF_LOADER == 0x210);
        assert!(HDR_START + offset_of!(RawSetupHeader, loadflags) == 0x211);
        assert!(RAMDISK_IMAGE == 0x218);
        assert!(RAMDISK_SIZE == 0x21C);
        assert!(CMD_LINE_PTR == 0x228);
        assert!(HDR_START + offset_of!(RawSetupHeader, initrd_addr_max) == 0x22C);
        assert!(HDR_START + offset_of!(RawSetupHeader, kernel_alignment) == 0x230);
        assert!(HDR_START + offset_of!(RawSetupHeader, relocatable_kernel) == 0x234);
        assert!(HDR_START + offset_of!(RawSetupHeader, xloadflags) == 0x236);
        assert!(HDR_START + offset_of!(RawSetupHeader, cmdline_size) == 0x238);
        assert!(SETUP_DATA == 0x250);
        assert!(HDR_START + offset_of!(RawSetupHeader, pref_address) == 0x258);
        assert!(HDR_START + offset_of!(RawSetupHeader, init_size) == 0x260);
        assert!(HDR_START + core::mem::size_of::<RawSetupHeader>() == 0x268);
    };
}

/// The setup header fields the loader uses, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupHeader {
    /// Boot protocol version, major << 8 | minor.
    pub version: u16,
    /// Setup sectors after the boot sector (0 in the file already read as 4).
    pub setup_sects: u8,
    pub loadflags: u8,
    pub xloadflags: u16,
    /// Highest address the initrd's last byte may occupy.
    pub initrd_addr_max: u32,
    pub kernel_alignment: u32,
    pub relocatable: bool,
    /// Longest command line the kernel takes, without the terminating NUL.
    pub cmdline_size: u32,
    /// Where the kernel runs: the load address of a relocatable kernel, and where
    /// a non-relocatable one decompresses itself to (LOAD_PHYSICAL_ADDR).
    pub pref_address: u64,
    /// Bytes from the run address the kernel needs until it sets up its own memory.
    pub init_size: u32,
    /// File offset one past the header (0x202 + the byte at 0x201).
    pub header_end: usize,
}

/// A parsed bzImage borrowing the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct BzImage<'a> {
    header: SetupHeader,
    raw_header: &'a [u8],
    kernel: &'a [u8],
}

fn truncated(needed: usize, len: usize) -> BootError {
    BootError::Truncated {
        needed: needed as u64,
        len: len as u64,
    }
}

impl<'a> BzImage<'a> {
    /// Validates the setup header of `file` and locates the protected-mode kernel.
    pub fn parse(file: &'a [u8]) -> Result<Self, BootError> {
        let raw_end = HDR_START + core::mem::size_of::<RawSetupHeader>();
        let tail = file
            .get(HDR_START..)
            .ok_or_else(|| truncated(raw_end, file.len()))?;
        let (raw, _) =
            RawSetupHeader::read_from_prefix(tail).map_err(|_| truncated(raw_end, file.len()))?;

        if raw.boot_flag.get() != BOOT_FLAG {
            return Err(BootError::BadBootFlag(raw.boot_flag.get()));
        }
        if raw.header != MAGIC {
            return Err(BootError::BadMagic);
        }
        let version = raw.version.get();
        if version < MIN_VERSION {
            return Err(BootError::ProtocolTooOld(version));
        }
        if raw.jump[0] != SHORT_JMP {
            return Err(BootError::BadJump(raw.jump[0]));
        }
        let header_end = 0x202 + usize::from(raw.jump[1]);
        if !(MIN_HDR_END..=MAX_HDR_END).contains(&header_end) {
            return Err(BootError::BadHeaderLength {
                end: header_end as u64,
            });
        }
        let raw_header = file
            .get(HDR_START..header_end)
            .ok_or_else(|| truncated(header_end, file.len()))?;
        if raw.loadflags & LOADED_HIGH == 0 {
            return Err(BootError::NotLoadedHigh);
        }
        if raw.xloadflags.get() & XLF_KERNEL_64 == 0 {
            return Err(BootError::No64BitEntry);
        }

        let setup_sects = if raw.setup_sects == 0 {
            4
        } else {
            raw.setup_sects
        };
        let setup_len = (u64::from(setup_sects) + 1) * SECTOR;
        let available = (file.len() as u64).saturating_sub(setup_len);
        let syssize_bytes = u64::from(raw.syssize.get()) * 16;
        // syssize counts the protected-mode image; anything after it (a PE
        // signature appended by sbsign) is not the kernel's.
        if syssize_bytes == 0 || syssize_bytes > available {
            return Err(BootError::BadKernelSize {
                syssize_bytes,
                available,
            });
        }
        // Both fit in usize: they are bounded by file.len().
        let kernel = file
            .get(setup_len as usize..(setup_len + syssize_bytes) as usize)
            .ok_or(BootError::BadKernelSize {
                syssize_bytes,
                available,
            })?;

        let kernel_alignment = raw.kernel_alignment.get();
        if !kernel_alignment.is_power_of_two() {
            return Err(BootError::BadKernelAlignment(kernel_alignment));
        }
        let relocatable = raw.relocatable_kernel != 0;
        let pref_address = raw.pref_address.get();
        let init_size = raw.init_size.get();
        let aligned = pref_address.is_multiple_of(u64::from(kernel_alignment));
        let fits = pref_address
            .checked_add(u64::from(init_size))
            .is_some_and(|end| end <= FOUR_GIB);
        if pref_address < KERNEL_LEGACY_GPA || !fits || (relocatable && !aligned) {
            return Err(BootError::BadPrefAddress(pref_address));
        }
        if u64::from(init_size) < syssize_bytes {
            return Err(BootError::InitSizeTooSmall {
                init_size,
                kernel_len: syssize_bytes,
            });
        }

        Ok(Self {
            header: SetupHeader {
                version,
                setup_sects,
                loadflags: raw.loadflags,
                xloadflags: raw.xloadflags.get(),
                initrd_addr_max: raw.initrd_addr_max.get(),
                kernel_alignment,
                relocatable,
                cmdline_size: raw.cmdline_size.get(),
                pref_address,
                init_size,
                header_end,
            },
            raw_header,
            kernel,
        })
    }

    /// The validated header fields.
    pub fn header(&self) -> &SetupHeader {
        &self.header
    }

    /// The protected-mode kernel: what is loaded at [`BzImage::load_address`].
    pub fn kernel(&self) -> &'a [u8] {
        self.kernel
    }

    /// The file's setup header bytes, 0x1F1 up to [`SetupHeader::header_end`], which
    /// boot_params starts from.
    pub fn raw_header(&self) -> &'a [u8] {
        self.raw_header
    }

    /// Where the protected-mode kernel is loaded: `pref_address` when relocatable
    /// (so the kernel runs where it was linked and need not move), else the fixed
    /// 1 MiB of a bzImage.
    pub fn load_address(&self) -> u64 {
        if self.header.relocatable {
            self.header.pref_address
        } else {
            KERNEL_LEGACY_GPA
        }
    }

    /// The guest-physical range the kernel occupies until it has its own memory
    /// map: the loaded image plus `init_size` from where it runs. The 64-bit entry
    /// of a non-relocatable kernel copies itself up to `pref_address`
    /// (LOAD_PHYSICAL_ADDR) and decompresses there, so both parts are covered.
    pub fn reserved_range(&self) -> (u64, u64) {
        let load = self.load_address();
        let run = self.header.pref_address;
        let start = load.min(run);
        let end = (load + self.kernel.len() as u64).max(run + u64::from(self.header.init_size));
        (start, end)
    }
}
