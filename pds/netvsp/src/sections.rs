//! The receive buffer's sections: which are free, which the guest still holds.
//!
//! One RNDIS message goes into one section; the transfer-page packet carrying it
//! uses the section index as its transaction id, so the guest's completion names
//! the section to free. A completion for a section that is not out is the guest's
//! error and is counted, never trusted.

use alloc::vec;
use alloc::vec::Vec;

#[derive(Debug)]
pub struct Sections {
    free: Vec<u32>,
    out: Vec<bool>,
}

impl Sections {
    pub fn new(count: u32) -> Self {
        Self {
            // Popped from the end: hand out low sections first.
            free: (0..count).rev().collect(),
            out: vec![false; count as usize],
        }
    }

    pub fn take(&mut self) -> Option<u32> {
        let s = self.free.pop()?;
        self.out[s as usize] = true;
        Some(s)
    }

    /// Frees a section the guest completed; false if it was not out.
    pub fn give_back(&mut self, section: u64) -> bool {
        let Ok(i) = usize::try_from(section) else {
            return false;
        };
        match self.out.get_mut(i) {
            Some(o) if *o => {
                *o = false;
                self.free.push(i as u32);
                true
            }
            _ => false,
        }
    }

    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    pub fn count(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_free_only_what_is_out() {
        let mut s = Sections::new(3);
        assert_eq!((s.take(), s.take()), (Some(0), Some(1)));
        assert!(!s.give_back(2), "never handed out");
        assert!(!s.give_back(u64::MAX));
        assert!(s.give_back(0));
        assert!(!s.give_back(0), "completed twice");
        assert_eq!(s.free_count(), 2);
        assert_eq!((s.take(), s.take(), s.take()), (Some(0), Some(2), None));
    }
}
