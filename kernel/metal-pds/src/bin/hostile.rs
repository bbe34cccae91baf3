//! A hostile PD: seeded random system calls with random and edge-case arguments
//! (every call number but the two waits, channel ids in and far out of range, bad
//! pointers and lengths, capabilities of the wrong kind), each of which the kernel
//! must refuse with exactly the status its capabilities call for, while the other
//! PDs of the boot test run their workload. It may print (`debug_console`) but
//! not halt the machine or raise NMIs. Its verdict goes to selftest as a
//! notification on one of two channels.
//!
//! Its channels (selftest.xml): 0 and 1 notify selftest (verdict pass / fail), 2
//! calls pingserver; every other id is empty.
#![no_std]
#![no_main]

use ipc::{ChannelSet, Handler, HandlerError, Kernel};
use kernel_abi::syscall::{Status, Sys, MESSAGE_REGISTERS};
use pd_rt::println;
use pd_rt::sys::syscall;

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const CALLS: u64 = 1_000_000;
const VERDICT_PASS: u64 = 0;
const VERDICT_FAIL: u64 = 1;
/// Its protected-call channel to pingserver.
const PING: u64 = 2;

/// xorshift64*: small, seeded, good enough to spread arguments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick(&mut self, from: &[u64]) -> u64 {
        from[(self.next() % from.len() as u64) as usize]
    }

    /// A channel id: its own, empty ones, the edges of the range, far outside it.
    fn channel(&mut self) -> u64 {
        let wild = self.next();
        self.pick(&[0, 1, 2, 3, 17, 61, 62, 63, 64, 255, 1 << 32, u64::MAX, wild])
    }

    /// A (pointer, length) no PD may print from: page 0, unmapped holes, the
    /// kernel half, non-canonical addresses, lengths past the limit, ranges that
    /// wrap around.
    fn bad_buffer(&mut self) -> (u64, u64) {
        let len = 1 + self.next() % 64;
        let kernel = 0xffff_8000_0000_0000 | (self.next() & 0x7fff_ffff_ffff);
        match self.next() % 6 {
            0 => (0, len),
            1 => (0x1000_0000 + (self.next() & 0xfff), len),
            2 => (kernel, len),
            3 => (0x0000_8000_0000_0000 + (self.next() & 0xffff), len),
            4 => (self as *const Self as u64, 4097 + self.next() % (1 << 40)),
            _ => (u64::MAX - (self.next() & 0xff), len + 0x100),
        }
    }
}

/// What the kernel must answer for a channel id of this PD: `Ok(kind)` for a
/// granted one (notify-only 0 and 1, call-only 2), else the refusal.
fn cap(ch: u64) -> Result<u64, Status> {
    match ch {
        0..=2 => Ok(ch),
        3..=61 => Err(Status::NOT_GRANTED),
        _ => Err(Status::BAD_ARGUMENT),
    }
}

/// One random call and the status it must get, or `None` for a call that would
/// not be refused (it would signal selftest, run pingserver or block us).
fn draw(rng: &mut Rng) -> Option<((Sys, [u64; 4]), Status)> {
    let n = rng.pick(&[0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 0x100, u64::MAX, rng.0]);
    let a = [rng.next(), rng.next(), rng.next(), rng.next()];
    let ch = rng.channel();
    let (args, want) = match Sys(n) {
        Sys::DEBUG_PUTS => {
            let (ptr, len) = rng.bad_buffer();
            ([ptr, len, a[2], a[3]], Status::BAD_ARGUMENT)
        }
        Sys::NOTIFY => match cap(ch) {
            Ok(PING) => ([ch, a[1], a[2], a[3]], Status::NOTIFY_NOT_PERMITTED),
            Ok(_) => return None,
            Err(st) => ([ch, a[1], a[2], a[3]], st),
        },
        Sys::PP_CALL => {
            // Within the register count only on channels that refuse the call.
            let count = MESSAGE_REGISTERS as u64 + 1 + a[2] % (1 << 20);
            let want = match cap(ch) {
                Ok(PING) => Status::BAD_ARGUMENT,
                Ok(_) => Status::CALL_NOT_PERMITTED,
                Err(st) => st,
            };
            ([ch, a[1], count, a[3]], want)
        }
        Sys::IRQ_ACK | Sys::DEBUG_IRQ_LINE => (
            [ch, a[1], a[2], a[3]],
            cap(ch).map_or_else(|st| st, |_| Status::NOT_AN_IRQ),
        ),
        Sys::DEBUG_HALT | Sys::DEBUG_NMI => (a, Status::NOT_GRANTED),
        Sys::VM_ENTER => (a, Status::NOT_A_VCPU),
        // No PCI device is granted here: no channel id names one.
        Sys::PCI_CONFIG => (
            [ch, a[1], a[2], a[3]],
            cap(ch).map_or_else(|st| st, |_| Status::NOT_GRANTED),
        ),
        _ => (a, Status::UNKNOWN_SYSCALL),
    };
    Some(((Sys(n), args), want))
}

pd_rt::entry!(|_init, _kernel| {
    let mut rng = Rng(SEED);
    let (mut made, mut wrong) = (0u64, 0u64);
    while made < CALLS {
        let Some(((n, [a0, a1, a2, a3]), want)) = draw(&mut rng) else {
            continue;
        };
        made += 1;
        let (got, ..) = syscall(n, a0, a1, a2, a3);
        if got != want.0 {
            wrong += 1;
            if wrong <= 3 {
                println!(
                    "hostile: FAIL system call {:#x}({a0:#x}, {a1:#x}, {a2:#x}, {a3:#x}) returned {got}, expected {}",
                    n.0, want.0
                );
            }
        }
    }
    println!(
        "hostile: {made} random system calls (seed {SEED:#x}), {wrong} not refused as their capabilities call for"
    );
    let verdict = if wrong == 0 {
        VERDICT_PASS
    } else {
        VERDICT_FAIL
    };
    syscall(Sys::NOTIFY, verdict, 0, 0, 0);
    Ok(Done)
});

/// Its work is done; nothing can notify or call it, so it waits for ever.
struct Done;

impl Handler for Done {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}
