//! The C runtime libtpms and libcrypto link against in a PD: only the symbols
//! the archive references (the link is the list), each with the semantics C
//! gives it. Exported under their C names only when building for the PDs
//! (`target_os = "none"`); on the host they are plain functions, so the unit
//! tests exercise them without clashing with the host's libc.

pub mod ctype;
pub mod entropy;
pub mod errno;
pub mod files;
pub mod heap;
mod setjmp;
pub mod stdio;
pub mod stdlib;
pub mod string;
pub mod time;

pub use stdio::set_log_sink;
pub use time::set_tsc_hz;
