//! The bare-metal PD runtime: what a PD binary links to run on the microkernel.
//!
//! It implements `ipc::Kernel` over the kernel's system calls and `ipc::Init` over
//! the info page, and owns the event loop, Microkit style: the PD's `init` builds a
//! `Handler`; the loop then waits for events and calls `notified`, `protected` or
//! `fault`, answering calls and faults with the next wait. So the same `no_std` PD
//! crates that run under host-sim run here, unchanged.
//!
//! A PD binary is just:
//! ```ignore
//! #![no_std]
//! #![no_main]
//! pd_rt::entry!(|init, kernel| MyPd::new(init));
//! ```
#![no_std]

#[cfg(test)]
extern crate std;

mod console;
mod event_loop;
pub mod heap;
mod init;
mod kernel;
pub mod sys;
pub mod vcpu;

pub use console::{debug_fmt, Console};
pub use event_loop::{run, start};
pub use init::RtInit;
pub use kernel::RtKernel;

/// Defines the PD's entry point: the kernel starts it with the info page address in
/// rdi and the IPC buffer address in rsi.
#[macro_export]
macro_rules! entry {
    ($init:expr) => {
        #[no_mangle]
        pub extern "C" fn _start(info: u64, ipc_buffer: u64) -> ! {
            // SAFETY: the kernel enters `_start` with exactly these two addresses.
            #[allow(unused_unsafe)]
            unsafe {
                $crate::start(info, ipc_buffer, $init)
            }
        }
    };
}

/// `println!` to the kernel console (debug kernels), one system call per line.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::debug_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A PD's panic is a fault: print the message, then stop on an invalid opcode so
/// the kernel reports it to the parent (or the console) like any other fault.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    debug_fmt(format_args!("panic: {info}\n"));
    sys::die()
}
