//! A Linux TAP device as a backend: frames the NIC sends enter the host's stack
//! on the TAP interface, and what the stack sends out of it reaches the guest.
//!
//! Opening one needs CAP_NET_ADMIN. Tests open it inside a network namespace of
//! their own so nothing they send can reach a real network.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::Backend;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
/// `struct ifreq`: the name, then a union whose first member here is the flags.
const IFREQ_SIZE: usize = 40;

#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    /// Reads land here first: a frame larger than the caller's buffer must be
    /// dropped whole, not cut.
    scratch: Vec<u8>,
}

impl Tap {
    /// Creates (or attaches to) TAP interface `name` (at most 15 bytes), without
    /// packet-information headers, non-blocking.
    pub fn open(name: &str) -> io::Result<Self> {
        if name.len() > 15 || name.bytes().any(|b| b == 0) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut ifr = [0u8; IFREQ_SIZE];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `ifr` is a
        // buffer of exactly that size that lives across the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let end = ifr[..16].iter().position(|&b| b == 0).unwrap_or(16);
        Ok(Self {
            file,
            name: String::from_utf8_lossy(&ifr[..end]).into_owned(),
            scratch: vec![0; 65536],
        })
    }

    /// The interface name the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Backend for Tap {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        matches!(self.file.write(frame), Ok(n) if n == frame.len())
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let n = self.file.read(&mut self.scratch).ok()?;
            if let Some(dst) = buf.get_mut(..n) {
                dst.copy_from_slice(&self.scratch[..n]);
                return Some(n);
            }
        }
    }
}
