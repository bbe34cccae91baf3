//! GPA range lists: the page lists GPADLs describe.
//!
//! A list is a sequence of ranges, each an 8-byte header (`byte_count` u32,
//! `byte_offset` u32) followed by one page number (u64) per 4 KiB page the range
//! touches. The guest writes it; every count and offset is checked here before a page
//! number is believed.

use core::fmt;

use crate::version::PAGE_SIZE;

/// One validated range.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct GpaRange<'a> {
    pub byte_count: u32,
    /// Offset of the first byte inside the first page.
    pub byte_offset: u32,
    pub pfns: &'a [u64],
}

impl fmt::Debug for GpaRange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GpaRange({:#x} bytes at +{:#x}, {} pages)",
            self.byte_count,
            self.byte_offset,
            self.pfns.len()
        )
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpaRangeError {
    /// The header says zero ranges.
    #[error("GPA range list has no ranges")]
    NoRanges,
    /// Range `index` claims more page numbers than the list holds.
    #[error("GPA range {index} runs past the list")]
    Truncated { index: usize },
    /// Range `index` covers no bytes.
    #[error("GPA range {index} is empty")]
    Empty { index: usize },
    /// Range `index` starts past its first page.
    #[error("GPA range {index} has offset {byte_offset:#x} beyond its first page")]
    OffsetTooLarge { index: usize, byte_offset: u32 },
    /// Words left over after the last range.
    #[error("{words} words follow the last GPA range")]
    TrailingData { words: usize },
}

/// Packs a range header the way it sits in memory (`byte_count` first).
pub const fn range_header(byte_count: u32, byte_offset: u32) -> u64 {
    byte_count as u64 | (byte_offset as u64) << 32
}

/// Pages a range with this offset and length touches.
pub const fn pages_spanned(byte_offset: u32, byte_count: u32) -> u64 {
    (byte_offset as u64 + byte_count as u64).div_ceil(PAGE_SIZE)
}

/// Checks that `words` holds exactly `count` well-formed ranges.
pub fn validate(words: &[u64], count: usize) -> Result<GpaRanges<'_>, GpaRangeError> {
    if count == 0 {
        return Err(GpaRangeError::NoRanges);
    }
    let mut rest = words;
    for index in 0..count {
        let (_, tail) = split_range(rest, index)?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(GpaRangeError::TrailingData { words: rest.len() });
    }
    Ok(GpaRanges { words, count })
}

fn split_range(words: &[u64], index: usize) -> Result<(GpaRange<'_>, &[u64]), GpaRangeError> {
    let (&header, rest) = words
        .split_first()
        .ok_or(GpaRangeError::Truncated { index })?;
    let byte_count = header as u32;
    let byte_offset = (header >> 32) as u32;
    if byte_count == 0 {
        return Err(GpaRangeError::Empty { index });
    }
    if u64::from(byte_offset) >= PAGE_SIZE {
        return Err(GpaRangeError::OffsetTooLarge { index, byte_offset });
    }
    // At most 2^20 + 1 pages for a u32 length, so the conversion cannot truncate on
    // any target this runs on; the slice check below bounds it anyway.
    let pages = usize::try_from(pages_spanned(byte_offset, byte_count))
        .map_err(|_| GpaRangeError::Truncated { index })?;
    if rest.len() < pages {
        return Err(GpaRangeError::Truncated { index });
    }
    let (pfns, tail) = rest.split_at(pages);
    Ok((
        GpaRange {
            byte_count,
            byte_offset,
            pfns,
        },
        tail,
    ))
}

/// A range list that passed [`validate`].
#[derive(Copy, Clone, Debug)]
pub struct GpaRanges<'a> {
    words: &'a [u64],
    count: usize,
}

impl<'a> GpaRanges<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = GpaRange<'a>> + 'a {
        let mut rest = self.words;
        let mut index = 0;
        let count = self.count;
        core::iter::from_fn(move || {
            if index == count {
                return None;
            }
            // Validated on construction, so this cannot fail; stop rather than panic.
            let (range, tail) = split_range(rest, index).ok()?;
            rest = tail;
            index += 1;
            Some(range)
        })
    }

    /// Every page number in list order.
    pub fn pfns(&self) -> impl Iterator<Item = u64> + 'a {
        self.iter().flat_map(|r| r.pfns.iter().copied())
    }

    pub fn page_count(&self) -> usize {
        self.iter().map(|r| r.pfns.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn a_linux_style_single_range_validates() {
        let mut words = vec![range_header(3 * 4096, 0)];
        words.extend([10, 11, 12]);
        let r = validate(&words, 1).unwrap();
        assert_eq!(r.page_count(), 3);
        assert_eq!(r.pfns().collect::<Vec<_>>(), [10, 11, 12]);
    }

    #[test]
    fn offsets_add_a_page_and_multiple_ranges_chain() {
        let words = vec![range_header(4096, 8), 1, 2, range_header(1, 4095), 7];
        let r = validate(&words, 2).unwrap();
        let ranges: Vec<_> = r.iter().collect();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].pfns, &[1, 2]);
        assert_eq!(ranges[1].pfns, &[7]);
    }

    #[test]
    fn malformed_lists_are_refused() {
        assert_eq!(validate(&[], 0).unwrap_err(), GpaRangeError::NoRanges);
        assert_eq!(
            validate(&[range_header(8192, 0), 1], 1).unwrap_err(),
            GpaRangeError::Truncated { index: 0 }
        );
        assert_eq!(
            validate(&[range_header(0, 0)], 1).unwrap_err(),
            GpaRangeError::Empty { index: 0 }
        );
        assert_eq!(
            validate(&[range_header(1, 4096), 1], 1).unwrap_err(),
            GpaRangeError::OffsetTooLarge {
                index: 0,
                byte_offset: 4096
            }
        );
        assert_eq!(
            validate(&[range_header(1, 0), 1, 2], 1).unwrap_err(),
            GpaRangeError::TrailingData { words: 1 }
        );
        assert_eq!(
            validate(&[range_header(1, 0), 1], 2).unwrap_err(),
            GpaRangeError::Truncated { index: 1 }
        );
        // A maximal length must not overflow the page arithmetic.
        assert_eq!(
            validate(&[range_header(u32::MAX, 4095)], 1).unwrap_err(),
            GpaRangeError::Truncated { index: 0 }
        );
    }
}
