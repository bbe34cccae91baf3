//! The contract between the microkernel (`kernel/metal`), the PD runtime
//! (`kernel/pd-rt`) and the image builder (`paravisor build`):
//! - [`syscall`]: system call numbers, status codes, events, the IPC buffer;
//! - [`image`]: the system image the builder appends to the kernel, which the kernel
//!   turns into address spaces and capability tables;
//! - [`info`]: the read-only page that tells a PD its name, regions and variables;
//! - [`pci`]: PCI device grants and the config-access policy;
//! - [`layout`]: where the kernel puts a PD's stack, IPC buffer and info page;
//! - [`vcpu`]: running a guest vCPU (`VM_ENTER`) and the state it exchanges.
//!
//! Decoding never panics and never trusts a length or offset it has not checked.
#![no_std]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod image;
pub mod info;
pub mod layout;
pub mod pci;
pub mod syscall;
pub mod vcpu;

/// A fixed-size, NUL-padded name as stored in the image and the info page.
pub type Name = [u8; 64];

/// Encodes `s` as a [`Name`]; `None` if it does not fit (63 bytes, so a NUL remains).
pub fn name(s: &str) -> Option<Name> {
    let bytes = s.as_bytes();
    if bytes.len() >= 64 || bytes.contains(&0) {
        return None;
    }
    let mut out = [0u8; 64];
    out[..bytes.len()].copy_from_slice(bytes);
    Some(out)
}

/// The text of a [`Name`] up to its first NUL; `None` if it is not UTF-8.
pub fn name_str(n: &Name) -> Option<&str> {
    let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
    core::str::from_utf8(&n[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_what_does_not_fit() {
        let n = name("storvsp").unwrap();
        assert_eq!(name_str(&n), Some("storvsp"));
        assert!(name(&"x".repeat(63)).is_some());
        assert!(name(&"x".repeat(64)).is_none());
        assert!(name("a\0b").is_none());
        let mut bad = [0u8; 64];
        bad[0] = 0xff;
        assert_eq!(name_str(&bad), None);
    }
}
