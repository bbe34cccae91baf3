//! Where a ring's bytes live. The ring code only ever asks for in-bounds,
//! non-wrapping accesses to the data area; implementations still return errors rather
//! than trusting that, and never hand out references into shared bytes.

use core::sync::atomic::{AtomicU64, Ordering};

use ipc::{Region, RegionError};

use crate::control::ControlPage;
use crate::protocol::PAGE_SIZE;

/// Memory backing one ring: a control page and a data area.
pub trait RingMem {
    fn control(&self) -> ControlPage<'_>;

    /// Length of the data area in bytes.
    fn data_len(&self) -> usize;

    /// Copies `buf.len()` bytes of the data area starting at `offset`. The ring calls
    /// this only with `offset + buf.len() <= data_len()` (wrap-around is split by
    /// the caller).
    fn read_data(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError>;

    /// Copies `data` into the data area at `offset`, under the same contract.
    fn write_data(&self, offset: usize, data: &[u8]) -> Result<(), RegionError>;

    /// The data word at `offset` as one atomic, where the memory can give one;
    /// `Misaligned` sends [`Self::read_word`] and [`Self::write_word`] byte by
    /// byte (an odd mapping; Miri, see `ipc::region`'s byte-only copies).
    #[inline]
    fn data_word(&self, offset: usize) -> Result<&AtomicU64, RegionError> {
        Err(RegionError::Misaligned { offset, align: 8 })
    }

    /// The 8 bytes at `offset` (8-aligned, inside the data area) as one little-endian
    /// word: descriptors and trailers are whole words, so one load suffices where the
    /// memory allows it.
    #[inline]
    fn read_word(&self, offset: usize) -> Result<u64, RegionError> {
        match self.data_word(offset) {
            Ok(word) => Ok(u64::from_le(word.load(Ordering::Relaxed))),
            Err(RegionError::Misaligned { .. }) => {
                let mut bytes = [0u8; 8];
                self.read_data(offset, &mut bytes)?;
                Ok(u64::from_le_bytes(bytes))
            }
            Err(e) => Err(e),
        }
    }

    /// Hints that the data line holding `offset` is written soon (see
    /// `ipc::Region::prefetch_for_write`); by default nothing.
    #[inline]
    fn prefetch_for_write(&self, offset: usize) {
        let _ = offset;
    }

    /// Stores `value` little-endian at `offset`, under `read_word`'s contract.
    #[inline]
    fn write_word(&self, offset: usize, value: u64) -> Result<(), RegionError> {
        match self.data_word(offset) {
            Ok(word) => {
                word.store(value.to_le(), Ordering::Relaxed);
                Ok(())
            }
            Err(RegionError::Misaligned { .. }) => self.write_data(offset, &value.to_le_bytes()),
            Err(e) => Err(e),
        }
    }
}

/// A ring in one contiguous mapping: the control page, then the data area.
#[derive(Debug, Copy, Clone)]
pub struct RegionRingMem<'a> {
    control: ControlPage<'a>,
    data: Region<'a>,
}

impl<'a> RegionRingMem<'a> {
    /// `region` is the whole ring: one control page then at least one data page.
    /// Its length must be a whole number of pages; the ring checks the data size.
    pub fn new(region: Region<'a>) -> Result<Self, RegionError> {
        if region.len() < 2 * PAGE_SIZE || !region.len().is_multiple_of(PAGE_SIZE) {
            return Err(RegionError::OutOfBounds {
                offset: 0,
                len: region.len().max(2 * PAGE_SIZE).next_multiple_of(PAGE_SIZE),
                region_len: region.len(),
            });
        }
        let control = region.subregion(0, PAGE_SIZE)?;
        let data = region.subregion(PAGE_SIZE, region.len() - PAGE_SIZE)?;
        Self::from_parts(control, data)
    }

    /// A ring whose control page and data area are mapped separately.
    pub fn from_parts(control: Region<'a>, data: Region<'a>) -> Result<Self, RegionError> {
        if !data.perms().write {
            return Err(RegionError::ReadOnly);
        }
        Ok(Self {
            control: ControlPage::from_region(control)?,
            data,
        })
    }
}

impl RingMem for RegionRingMem<'_> {
    fn control(&self) -> ControlPage<'_> {
        self.control
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
    #[inline]
    fn read_data(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.data.read_bytes(offset, buf)
    }
    #[inline]
    fn write_data(&self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        self.data.write_bytes(offset, data)
    }
    /// Miri gets `Misaligned`: its weak-memory model cannot mix word and byte
    /// accesses of the same bytes.
    #[inline]
    fn data_word(&self, offset: usize) -> Result<&AtomicU64, RegionError> {
        if cfg!(miri) {
            return Err(RegionError::Misaligned { offset, align: 8 });
        }
        self.data.atomic_u64(offset)
    }
    #[inline]
    fn prefetch_for_write(&self, offset: usize) {
        self.data.prefetch_for_write(offset);
    }
}

/// A ring described by a GPADL: a list of guest page numbers (the control page's
/// first, then the data pages in ring order) inside guest RAM mapped as one region
/// (region offset = guest physical address).
///
/// `P` is whatever owns the page list (a slice of a GPADL's pages, an array, a
/// `Vec`); the list is trusted only after `new` has checked every page.
#[derive(Debug, Clone)]
pub struct GpadlRingMem<'a, P> {
    ram: Region<'a>,
    control: ControlPage<'a>,
    pages: P,
}

impl<'a, P: AsRef<[u64]>> GpadlRingMem<'a, P> {
    pub fn new(ram: Region<'a>, pages: P) -> Result<Self, RegionError> {
        let list = pages.as_ref();
        if list.len() < 2 {
            return Err(RegionError::OutOfBounds {
                offset: 0,
                len: 2 * PAGE_SIZE,
                region_len: list.len() * PAGE_SIZE,
            });
        }
        if !ram.perms().write {
            return Err(RegionError::ReadOnly);
        }
        for &pfn in list {
            page_offset(&ram, pfn)?;
        }
        let control_at = page_offset(&ram, list[0])?;
        let control = ControlPage::from_region(ram.subregion(control_at, PAGE_SIZE)?)?;
        Ok(Self {
            ram,
            control,
            pages,
        })
    }

    /// Splits `offset..offset+len` of the data area into per-page pieces and calls
    /// `f(ram_offset, piece_start_in_request, piece_len)` for each.
    fn for_each_piece(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(usize, usize, usize) -> Result<(), RegionError>,
    ) -> Result<(), RegionError> {
        let data_pages = &self.pages.as_ref()[1..];
        let mut done = 0;
        while done < len {
            let at = offset + done;
            let in_page = at % PAGE_SIZE;
            let chunk = (PAGE_SIZE - in_page).min(len - done);
            let pfn = *data_pages
                .get(at / PAGE_SIZE)
                .ok_or(RegionError::OutOfBounds {
                    offset,
                    len,
                    region_len: data_pages.len() * PAGE_SIZE,
                })?;
            f(page_offset(&self.ram, pfn)? + in_page, done, chunk)?;
            done += chunk;
        }
        Ok(())
    }
}

fn page_offset(ram: &Region<'_>, pfn: u64) -> Result<usize, RegionError> {
    let outside = RegionError::OutOfBounds {
        offset: usize::MAX,
        len: PAGE_SIZE,
        region_len: ram.len(),
    };
    let at = usize::try_from(pfn)
        .ok()
        .and_then(|p| p.checked_mul(PAGE_SIZE))
        .ok_or(outside)?;
    match at.checked_add(PAGE_SIZE) {
        Some(end) if end <= ram.len() => Ok(at),
        _ => Err(RegionError::OutOfBounds {
            offset: at,
            len: PAGE_SIZE,
            region_len: ram.len(),
        }),
    }
}

impl<P: AsRef<[u64]>> RingMem for GpadlRingMem<'_, P> {
    fn control(&self) -> ControlPage<'_> {
        self.control
    }
    fn data_len(&self) -> usize {
        (self.pages.as_ref().len() - 1) * PAGE_SIZE
    }
    fn read_data(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.for_each_piece(offset, buf.len(), |ram_at, start, len| {
            self.ram.read_bytes(ram_at, &mut buf[start..start + len])
        })
    }
    fn write_data(&self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        self.for_each_piece(offset, data.len(), |ram_at, start, len| {
            self.ram.write_bytes(ram_at, &data[start..start + len])
        })
    }
    /// An 8-aligned word never crosses a page: one page lookup and one load or
    /// store instead of a byte copy split by pages (descriptors and trailers, a
    /// few per packet on both sides). Miri gets `Misaligned`, as above.
    #[inline]
    fn data_word(&self, offset: usize) -> Result<&AtomicU64, RegionError> {
        if cfg!(miri) || !offset.is_multiple_of(8) {
            return Err(RegionError::Misaligned { offset, align: 8 });
        }
        let data_pages = &self.pages.as_ref()[1..];
        let pfn = *data_pages
            .get(offset / PAGE_SIZE)
            .ok_or(RegionError::OutOfBounds {
                offset,
                len: 8,
                region_len: data_pages.len() * PAGE_SIZE,
            })?;
        self.ram
            .atomic_u64(page_offset(&self.ram, pfn)? + offset % PAGE_SIZE)
    }
    #[inline]
    fn prefetch_for_write(&self, offset: usize) {
        let pfn = self.pages.as_ref()[1..].get(offset / PAGE_SIZE);
        if let Some(at) = pfn.and_then(|&pfn| page_offset(&self.ram, pfn).ok()) {
            self.ram.prefetch_for_write(at + offset % PAGE_SIZE);
        }
    }
}
