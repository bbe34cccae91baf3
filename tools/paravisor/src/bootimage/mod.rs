//! The bare-metal boot image: system.xml and PD ELFs compiled into the kernel's
//! system image ([`compile`]), appended to the kernel ELF as one more loadable
//! segment ([`bootelf`]), and read back for `verify` ([`bootelf::extract`]).
//! Shared by `build` and `verify`.

pub mod bootelf;
pub mod compile;
pub mod elf;
pub mod layout;
pub mod pci;

#[cfg(test)]
pub(crate) mod tests;
