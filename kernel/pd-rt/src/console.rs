//! Formatted debug output through the kernel console, buffered per call so a
//! line reaches the console in one piece.

use core::fmt;

const CAPACITY: usize = 256;

/// A `fmt::Write` sink that flushes to the kernel console when full and on drop.
#[derive(Debug)]
pub struct Console {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Console {
    pub const fn new() -> Self {
        Self {
            buf: [0; CAPACITY],
            len: 0,
        }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            crate::sys::debug_puts(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(CAPACITY) {
            if self.len + chunk.len() > CAPACITY {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.flush();
    }
}

pub fn debug_fmt(args: fmt::Arguments<'_>) {
    let mut c = Console::new();
    let _ = fmt::write(&mut c, args);
}
