//! A guest and its vCPU PD in one, for the ioapic system (tests/systems/ioapic.xml).
//! It programs the IOAPIC through MMIO calls as Linux's io_apic.c would, then has
//! the device PD drive its lines step by step, reading the interrupt requests from
//! the ioapic PD's queue and sending EOIs as the local APIC would for level
//! vectors. It prints what it checked and exits 0, or exits 1 naming the first
//! check that failed.
//!
//! Channels: 0 = the ioapic PD (MMIO/EOI calls; queue notifications both ways),
//! 1 = the device PD (one notification per step, both ways).

use ioapic::api::{self, ClientError, IrqEntry, Status};
use ioapic::pd::IRQ_QUEUE_CAPACITY;
use ioapic::{
    InterruptRequest, TriggerMode, IOREGSEL, IOWIN, MMIO_BASE, REG_ID, REG_REDIR_BASE, REG_VERSION,
};
use ipc::{Channel, ChannelSet, Consumer, Handler, HandlerError, InitError, Kernel};
use system_tests::ioapic::*;

const IOAPIC: Channel = Channel::new(0);
const DEVICE: Channel = Channel::new(1);

const REMOTE_IRR: u32 = 1 << 14;
const DELIVERY_STATUS: u32 = 1 << 12;
const MASKED: u32 = 1 << 16;
const LEVEL: u32 = 1 << 15;

macro_rules! check {
    ($cond:expr, $($what:tt)*) => {
        if !$cond {
            return Err(format!($($what)*));
        }
    };
}

struct Guest {
    irqs: Consumer<'static, IrqEntry>,
    /// Device steps seen so far.
    step: u32,
    /// In the flood step: requests taken so far, waiting for the retried one.
    awaiting_retry: Option<usize>,
}

fn call<T>(what: &str, r: Result<T, ClientError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn write_reg(k: &mut dyn Kernel, index: u8, value: u32) -> Result<(), String> {
    call(
        "IOREGSEL write",
        api::mmio_write(k, IOAPIC, MMIO_BASE + IOREGSEL, 4, u64::from(index)),
    )?;
    call(
        "IOWIN write",
        api::mmio_write(k, IOAPIC, MMIO_BASE + IOWIN, 4, u64::from(value)),
    )
}

fn read_reg(k: &mut dyn Kernel, index: u8) -> Result<u32, String> {
    call(
        "IOREGSEL write",
        api::mmio_write(k, IOAPIC, MMIO_BASE + IOREGSEL, 4, u64::from(index)),
    )?;
    call(
        "IOWIN read",
        api::mmio_read(k, IOAPIC, MMIO_BASE + IOWIN, 4),
    )
    .map(|v| v as u32)
}

fn redir_low(k: &mut dyn Kernel, pin: u8) -> Result<u32, String> {
    read_reg(k, REG_REDIR_BASE + 2 * pin)
}

/// Programs `pin` as Linux does: destination (high half) first, then the low half.
fn program(
    k: &mut dyn Kernel,
    pin: u8,
    vector: u8,
    level: bool,
    masked: bool,
) -> Result<(), String> {
    write_reg(
        k,
        REG_REDIR_BASE + 2 * pin + 1,
        u32::from(DESTINATION) << 24,
    )?;
    let mut low = u32::from(vector);
    if level {
        low |= LEVEL;
    }
    if masked {
        low |= MASKED;
    }
    write_reg(k, REG_REDIR_BASE + 2 * pin, low)
}

fn eoi(k: &mut dyn Kernel, vector: u8) -> Result<(), String> {
    call("EOI", api::eoi(k, IOAPIC, vector))
}

fn expect_refused<T: std::fmt::Debug>(
    what: &str,
    got: Result<T, ClientError>,
    want: Status,
) -> Result<(), String> {
    match got {
        Err(ClientError::Refused(s)) if s == want => Ok(()),
        other => Err(format!("{what}: expected {want:?}, got {other:?}")),
    }
}

impl Guest {
    /// Takes every queued request, checked; notifies the ioapic PD if it was
    /// waiting for room. Returns the requests and whether it notified.
    fn drain(&mut self, k: &mut dyn Kernel) -> Result<(Vec<InterruptRequest>, bool), String> {
        let mut out = Vec::new();
        while let Some(e) = self.irqs.dequeue().map_err(|e| format!("irq queue: {e}"))? {
            let r = e.request().map_err(|_| format!("bad queue entry {e:?}"))?;
            check!(
                r.destination == DESTINATION,
                "request for APIC {} instead of {DESTINATION}: {r:?}",
                r.destination
            );
            out.push(r);
        }
        let woke = self.irqs.take_signal_request();
        if woke {
            IOAPIC
                .notify(k)
                .map_err(|e| format!("notify ioapic: {e}"))?;
        }
        Ok((out, woke))
    }

    fn vectors(&mut self, k: &mut dyn Kernel) -> Result<Vec<(u8, TriggerMode)>, String> {
        Ok(self
            .drain(k)?
            .0
            .iter()
            .map(|r| (r.vector, r.trigger))
            .collect())
    }

    /// Before any line moves: identity registers, bad accesses, programming.
    fn setup(&mut self, k: &mut dyn Kernel) -> Result<(), String> {
        let version = read_reg(k, REG_VERSION)?;
        check!(version == 0x0017_0011, "version register {version:#x}");
        let id = read_reg(k, REG_ID)?;
        check!(id == 0, "id register {id:#x}");
        println!("guest: registers ok (version {version:#x}: 82093AA, 24 entries)");

        expect_refused(
            "read past the page",
            api::mmio_read(k, IOAPIC, MMIO_BASE + 0x1000, 4),
            Status::OUTSIDE_WINDOW,
        )?;
        expect_refused(
            "read straddling the page end",
            api::mmio_read(k, IOAPIC, MMIO_BASE + 0xffe, 4),
            Status::OUTSIDE_WINDOW,
        )?;
        expect_refused(
            "read below the page",
            api::mmio_read(k, IOAPIC, MMIO_BASE - 4, 4),
            Status::OUTSIDE_WINDOW,
        )?;
        expect_refused(
            "3-byte read",
            api::mmio_read(k, IOAPIC, MMIO_BASE, 3),
            Status::BAD_SIZE,
        )?;
        expect_refused(
            "unknown label",
            api::call(k, IOAPIC, 0x7777, &[]),
            Status::BAD_REQUEST,
        )?;
        println!("guest: accesses outside the page, bad sizes and unknown calls refused");

        program(k, LEVEL_LINE, LEVEL_VECTOR, true, false)?;
        program(k, EDGE_LINE, EDGE_VECTOR, false, false)?;
        program(k, FOREIGN_LINE, FOREIGN_VECTOR, true, false)?;
        let low = redir_low(k, LEVEL_LINE)?;
        check!(
            low == u32::from(LEVEL_VECTOR) | LEVEL,
            "pin {LEVEL_LINE} reads back {low:#x}"
        );
        println!("guest: pins {LEVEL_LINE} (level), {EDGE_LINE} (edge), {FOREIGN_LINE} (level) programmed");
        Ok(())
    }

    /// Checks what the device's step `n` should have caused, and sets up the next.
    fn after_step(&mut self, k: &mut dyn Kernel, n: u32) -> Result<bool, String> {
        match n {
            1 => {
                let got = self.vectors(k)?;
                check!(
                    got == [
                        (LEVEL_VECTOR, TriggerMode::Level),
                        (EDGE_VECTOR, TriggerMode::Edge)
                    ],
                    "after assert + pulse: {got:x?}"
                );
                check!(
                    redir_low(k, LEVEL_LINE)? & REMOTE_IRR != 0,
                    "remote IRR not set on the level pin"
                );
                eoi(k, LEVEL_VECTOR)?;
                let got = self.vectors(k)?;
                check!(
                    got == [(LEVEL_VECTOR, TriggerMode::Level)],
                    "EOI with the line still asserted: {got:x?}"
                );
                check!(
                    redir_low(k, LEVEL_LINE)? & REMOTE_IRR != 0,
                    "remote IRR not set after re-delivery"
                );
                println!("guest: level {LEVEL_VECTOR:#x} and edge {EDGE_VECTOR:#x} delivered, remote IRR set; EOI while asserted re-delivered {LEVEL_VECTOR:#x}");
                check!(
                    redir_low(k, FOREIGN_LINE)? & (REMOTE_IRR | DELIVERY_STATUS) == 0,
                    "the refused line reached pin {FOREIGN_LINE}"
                );
            }
            2 => {
                let got = self.vectors(k)?;
                check!(got.is_empty(), "deassert delivered {got:x?}");
                eoi(k, LEVEL_VECTOR)?;
                let got = self.vectors(k)?;
                check!(got.is_empty(), "EOI after deassert delivered {got:x?}");
                check!(
                    redir_low(k, LEVEL_LINE)? & REMOTE_IRR == 0,
                    "remote IRR still set after EOI"
                );
                println!("guest: line dropped; EOI cleared remote IRR without re-delivery");
                program(k, LEVEL_LINE, LEVEL_VECTOR, true, true)?;
            }
            3 => {
                let got = self.vectors(k)?;
                check!(got.is_empty(), "masked pin delivered {got:x?}");
                program(k, LEVEL_LINE, LEVEL_VECTOR, true, false)?;
                let got = self.vectors(k)?;
                check!(
                    got == [(LEVEL_VECTOR, TriggerMode::Level)],
                    "unmasking an asserted level pin: {got:x?}"
                );
                println!("guest: masked level line held back, delivered on unmask");
            }
            4 => {
                let low = redir_low(k, EDGE_LINE)?;
                check!(
                    low & DELIVERY_STATUS != 0,
                    "with the queue full, pin {EDGE_LINE} reads {low:#x} (no delivery status)"
                );
                let (got, woke) = self.drain(k)?;
                check!(
                    got.len() == IRQ_QUEUE_CAPACITY as usize
                        && got.iter().all(|r| r.vector == EDGE_VECTOR),
                    "flood: {} requests",
                    got.len()
                );
                check!(woke, "the ioapic PD did not ask for room");
                self.awaiting_retry = Some(got.len());
                return self.collect_retry(k);
            }
            n => return Err(format!("unexpected step {n}")),
        }
        DEVICE
            .notify(k)
            .map_err(|e| format!("notify device: {e}"))?;
        Ok(false)
    }

    /// The flood's pending request, retried once the queue had room. Returns true
    /// once everything is checked.
    fn collect_retry(&mut self, k: &mut dyn Kernel) -> Result<bool, String> {
        let Some(before) = self.awaiting_retry else {
            return Ok(false);
        };
        let (got, _) = self.drain(k)?;
        if got.is_empty() {
            // Nothing yet: ask to be woken, and re-check (the wake-up may be past).
            if self.irqs.prepare_to_sleep().map_err(|e| e.to_string())? {
                return Ok(false);
            }
            return self.collect_retry(k);
        }
        check!(
            got.len() == 1 && got[0].vector == EDGE_VECTOR,
            "retried after room was made: {got:?}"
        );
        let low = redir_low(k, EDGE_LINE)?;
        check!(
            low & DELIVERY_STATUS == 0,
            "delivery status still set: {low:#x}"
        );
        println!(
            "guest: queue full after {before} requests; the next stayed pending (delivery status 1) and came after room was made; {} more edges coalesced",
            FLOOD_PULSES as usize - before - 1
        );
        Ok(true)
    }
}

fn finish(result: Result<(), String>) -> ! {
    hostsim::finish("guest", result)
}

impl Handler for Guest {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) -> Result<(), HandlerError> {
        let mut done = Ok(false);
        if channels.contains(DEVICE) {
            self.step += 1;
            done = self.after_step(k, self.step);
        }
        if channels.contains(IOAPIC) && matches!(done, Ok(false)) {
            done = self.collect_retry(k);
        }
        match done {
            Ok(false) => Ok(()),
            Ok(true) => finish(Ok(())),
            Err(e) => finish(Err(e)),
        }
    }
}

fn main() {
    hostsim::run(|init, kernel| {
        let region = init.region("irq_queue")?;
        let irqs =
            Consumer::new(region, IRQ_QUEUE_CAPACITY).map_err(|_| InitError::RegionTooSmall {
                name: "irq_queue",
                needed: 0,
                granted: region.len(),
            })?;
        let mut guest = Guest {
            irqs,
            step: 0,
            awaiting_retry: None,
        };
        if let Err(e) = guest.setup(kernel) {
            finish(Err(e));
        }
        if let Err(e) = DEVICE.notify(kernel) {
            finish(Err(format!("notify device: {e}")));
        }
        Ok(guest)
    })
}
