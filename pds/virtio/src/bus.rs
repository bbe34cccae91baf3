//! What the driver needs from its surroundings: register access and DMA memory.

use crate::Error;

/// The device as the driver PD reaches it.
pub trait Bus {
    /// Reads `width` (1, 2 or 4) bytes at `offset` of the function's config space.
    fn config_read(&mut self, offset: u8, width: u8) -> Result<u32, Error>;
    fn config_write(&mut self, offset: u8, width: u8, value: u32) -> Result<(), Error>;
    /// The size of BAR `bar` as mapped for the driver; 0 if it is not mapped.
    fn bar_size(&self, bar: u8) -> u64;
    /// Register access inside a mapped BAR: the driver only calls these for
    /// offsets it checked against [`Bus::bar_size`].
    fn read(&mut self, bar: u8, offset: u64, width: u8) -> u64;
    fn write(&mut self, bar: u8, offset: u64, width: u8, value: u64);
}

/// Memory the device reads and writes, at a bus address the driver knows (no
/// IOMMU: bus address = physical address). Offsets are the driver's own,
/// checked against [`Dma::len`] before use.
pub trait Dma {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn bus_addr(&self) -> u64;
    fn read(&self, offset: usize, out: &mut [u8]);
    fn write(&mut self, offset: usize, data: &[u8]);

    fn read_u16(&self, offset: usize) -> u16 {
        let mut b = [0; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }

    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }
}
