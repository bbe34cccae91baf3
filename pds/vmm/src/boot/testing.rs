//! A synthetic bzImage for tests: a setup header with the given fields and a
//! protected-mode "kernel" of recognisable bytes.

use alloc::vec::Vec;

/// The header fields a test may vary; [`Default`] resembles a Debian x86-64 kernel
/// (scaled down).
#[derive(Clone, Debug)]
pub struct SyntheticBzImage {
    /// As stored in the file (0 means 4).
    pub setup_sects: u8,
    pub version: u16,
    /// The header's end as 0x202 + this (the jump at 0x200).
    pub jump_offset: u8,
    pub loadflags: u8,
    pub xloadflags: u16,
    /// Protected-mode bytes; a multiple of 16 keeps `syssize` exact.
    pub kernel_len: usize,
    /// Extra bytes after the protected-mode image (a signature, say).
    pub trailer_len: usize,
    pub relocatable: bool,
    pub kernel_alignment: u32,
    pub pref_address: u64,
    pub init_size: u32,
    pub cmdline_size: u32,
    pub initrd_addr_max: u32,
}

impl Default for SyntheticBzImage {
    fn default() -> Self {
        Self {
            setup_sects: 3,
            version: 0x020F,
            jump_offset: 0x6A,
            loadflags: 1,
            xloadflags: 0x7F,
            kernel_len: 0x1_0000,
            trailer_len: 0,
            relocatable: true,
            kernel_alignment: 0x20_0000,
            pref_address: 0x100_0000,
            init_size: 0x40_0000,
            cmdline_size: 0x7FF,
            initrd_addr_max: 0x7FFF_FFFF,
        }
    }
}

fn put(v: &mut [u8], at: usize, bytes: &[u8]) {
    v[at..at + bytes.len()].copy_from_slice(bytes);
}

impl SyntheticBzImage {
    /// The file offset of the protected-mode image.
    pub fn setup_len(&self) -> usize {
        let sects = if self.setup_sects == 0 {
            4
        } else {
            usize::from(self.setup_sects)
        };
        (sects + 1) * 512
    }

    pub fn build(&self) -> Vec<u8> {
        let setup_len = self.setup_len();
        let mut f = alloc::vec![0u8; setup_len + self.kernel_len + self.trailer_len];
        f[0x1F1] = self.setup_sects;
        put(
            &mut f,
            0x1F4,
            &(self.kernel_len.div_ceil(16) as u32).to_le_bytes(),
        );
        put(&mut f, 0x1FE, &0xAA55u16.to_le_bytes());
        put(&mut f, 0x200, &[0xEB, self.jump_offset]);
        put(&mut f, 0x202, b"HdrS");
        put(&mut f, 0x206, &self.version.to_le_bytes());
        f[0x211] = self.loadflags;
        put(&mut f, 0x214, &0x10_0000u32.to_le_bytes());
        put(&mut f, 0x22C, &self.initrd_addr_max.to_le_bytes());
        put(&mut f, 0x230, &self.kernel_alignment.to_le_bytes());
        f[0x234] = u8::from(self.relocatable);
        f[0x235] = 21;
        put(&mut f, 0x236, &self.xloadflags.to_le_bytes());
        put(&mut f, 0x238, &self.cmdline_size.to_le_bytes());
        put(&mut f, 0x258, &self.pref_address.to_le_bytes());
        put(&mut f, 0x260, &self.init_size.to_le_bytes());
        for (i, b) in f[setup_len..setup_len + self.kernel_len]
            .iter_mut()
            .enumerate()
        {
            *b = (i % 251) as u8;
        }
        f
    }
}
