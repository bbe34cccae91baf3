//! The local APIC of the guest's one vCPU, in x2APIC mode: the MSR interface
//! (IA32_APIC_BASE, 0x800..0x8FF, IA32_TSC_DEADLINE), interrupt acceptance and
//! priority (IRR/ISR/TMR, TPR/PPR), self-IPIs and the timer.
//!
//! Sans-IO: the VMM feeds MSR exits and interrupt requests, passes the TSC in, asks
//! [`Lapic::pending`] what to inject and confirms with [`Lapic::acknowledge`] once
//! it did; [`Lapic::next_deadline`] tells it when to wake up for the timer.
//!
//! x2APIC is strict about reserved bits (a WRMSR with any is #GP), and this model
//! is too, so a guest bug shows up as the fault real hardware gives. The xAPIC MMIO
//! page is not modelled: the vCPU starts in x2APIC mode (as firmware that enables it
//! leaves it) and a guest that drops back to xAPIC mode sees its x2APIC MSRs fault.

/// The guest's access must fault with #GP(0).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gp;

/// Something the VMM must act on after an MSR write.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LapicEvent {
    /// The guest EOI'd `vector`; `level` when it was accepted level-triggered (the
    /// VMM forwards it to the IOAPIC, which clears Remote IRR).
    Eoi { vector: u8, level: bool },
    /// The guest sent itself an NMI (ICR delivery mode NMI): inject one.
    Nmi,
}

/// Fixed parameters of the vCPU's APIC.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LapicConfig {
    pub apic_id: u32,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// APIC timer input (bus) ticks per second, before the divide configuration.
    pub bus_hz: u64,
}

pub mod msr {
    pub const APIC_BASE: u32 = 0x1b;
    pub const TSC_DEADLINE: u32 = 0x6e0;
    pub const X2APIC_FIRST: u32 = 0x800;
    pub const X2APIC_LAST: u32 = 0x8ff;
    pub const ID: u32 = 0x802;
    pub const VERSION: u32 = 0x803;
    pub const TPR: u32 = 0x808;
    pub const PPR: u32 = 0x80a;
    pub const EOI: u32 = 0x80b;
    pub const LDR: u32 = 0x80d;
    pub const SVR: u32 = 0x80f;
    pub const ISR0: u32 = 0x810;
    pub const TMR0: u32 = 0x818;
    pub const IRR0: u32 = 0x820;
    pub const ESR: u32 = 0x828;
    pub const LVT_CMCI: u32 = 0x82f;
    pub const ICR: u32 = 0x830;
    pub const LVT_TIMER: u32 = 0x832;
    pub const LVT_THERMAL: u32 = 0x833;
    pub const LVT_PERF: u32 = 0x834;
    pub const LVT_LINT0: u32 = 0x835;
    pub const LVT_LINT1: u32 = 0x836;
    pub const LVT_ERROR: u32 = 0x837;
    pub const TIMER_INITIAL: u32 = 0x838;
    pub const TIMER_CURRENT: u32 = 0x839;
    pub const TIMER_DIVIDE: u32 = 0x83e;
    pub const SELF_IPI: u32 = 0x83f;
}

pub const APIC_BASE_BSP: u64 = 1 << 8;
pub const APIC_BASE_EXTD: u64 = 1 << 10;
pub const APIC_BASE_EN: u64 = 1 << 11;
/// Where the APIC's page is after reset (IA32_APIC_BASE's default).
pub const APIC_BASE_DEFAULT: u64 = 0xfee0_0000;

/// Version 0x14 (integrated APIC), 7 LVT entries (max index 6), no EOI-broadcast
/// suppression.
pub const VERSION: u32 = 0x14 | (6 << 16);

const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLE: u32 = 1 << 8;

/// ESR bits this model raises.
pub mod esr {
    pub const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
    pub const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
}

/// Timer modes (LVT timer bits 17..19).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Mode {
    X2Apic,
    /// Enabled in xAPIC mode: only the MMIO page (not modelled) reaches it.
    XApic,
    Disabled,
}

/// The LVT slots, in MSR order.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Lvt {
    Cmci,
    Timer,
    Thermal,
    Perf,
    Lint0,
    Lint1,
    Error,
}

impl Lvt {
    fn from_msr(msr: u32) -> Option<Self> {
        Some(match msr {
            msr::LVT_CMCI => Lvt::Cmci,
            msr::LVT_TIMER => Lvt::Timer,
            msr::LVT_THERMAL => Lvt::Thermal,
            msr::LVT_PERF => Lvt::Perf,
            msr::LVT_LINT0 => Lvt::Lint0,
            msr::LVT_LINT1 => Lvt::Lint1,
            msr::LVT_ERROR => Lvt::Error,
            _ => return None,
        })
    }

    /// Bits software may set: vector, mask, and per entry delivery mode, pin
    /// polarity and trigger (LINTs) or the timer mode.
    const fn writable(self) -> u32 {
        const VECTOR_MASK: u32 = 0xff | LVT_MASKED;
        const DELIVERY: u32 = 0x700;
        match self {
            Lvt::Timer => VECTOR_MASK | (3 << 17),
            Lvt::Cmci | Lvt::Thermal | Lvt::Perf => VECTOR_MASK | DELIVERY,
            Lvt::Lint0 | Lvt::Lint1 => VECTOR_MASK | DELIVERY | (1 << 13) | (1 << 15),
            Lvt::Error => VECTOR_MASK,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A 256-bit vector set (IRR, ISR, TMR).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct VectorSet([u32; 8]);

impl VectorSet {
    pub fn contains(&self, v: u8) -> bool {
        self.0[usize::from(v >> 5)] & (1 << (v & 31)) != 0
    }
    fn set(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] |= 1 << (v & 31);
    }
    fn clear(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] &= !(1 << (v & 31));
    }
    pub fn highest(&self) -> Option<u8> {
        self.0
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| (i as u8) * 32 + (31 - w.leading_zeros() as u8))
    }
    fn word(&self, i: u32) -> u32 {
        self.0.get(i as usize).copied().unwrap_or(0)
    }
}

/// The timer's armed state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Timer {
    initial_count: u32,
    divide_config: u32,
    /// TSC of the next expiry, if armed.
    deadline: Option<u64>,
    /// TSC ticks between periodic expiries.
    period: u64,
    /// IA32_TSC_DEADLINE as last written (TSC-deadline mode).
    tsc_deadline: u64,
}

/// The x2APIC of one vCPU.
#[derive(Clone, Debug)]
pub struct Lapic {
    config: LapicConfig,
    apic_base: u64,
    tpr: u32,
    svr: u32,
    lvt: [u32; 7],
    irr: VectorSet,
    isr: VectorSet,
    tmr: VectorSet,
    /// Requested with Hyper-V's AutoEOI (a SynIC SINT's flag): delivery ends the
    /// interrupt, it never enters ISR, and the guest writes no EOI for it.
    auto_eoi: VectorSet,
    /// ESR as the guest last latched it (by writing ESR) and the errors since.
    esr: u32,
    esr_pending: u32,
    icr: u64,
    timer: Timer,
}

impl Lapic {
    /// The APIC after reset, with firmware having enabled x2APIC mode: software
    /// disabled (SVR 0xFF), every LVT masked.
    pub fn new(config: LapicConfig) -> Self {
        Self {
            config,
            apic_base: APIC_BASE_DEFAULT | APIC_BASE_BSP | APIC_BASE_EN | APIC_BASE_EXTD,
            tpr: 0,
            svr: 0xff,
            lvt: [LVT_MASKED; 7],
            irr: VectorSet::default(),
            isr: VectorSet::default(),
            tmr: VectorSet::default(),
            auto_eoi: VectorSet::default(),
            esr: 0,
            esr_pending: 0,
            icr: 0,
            timer: Timer::default(),
        }
    }

    /// Whether `msr` is one this model answers (the VMM routes these here).
    pub fn handles(msr: u32) -> bool {
        matches!(msr, msr::APIC_BASE | msr::TSC_DEADLINE)
            || (msr::X2APIC_FIRST..=msr::X2APIC_LAST).contains(&msr)
    }

    fn mode(&self) -> Mode {
        match (
            self.apic_base & APIC_BASE_EN != 0,
            self.apic_base & APIC_BASE_EXTD != 0,
        ) {
            (true, true) => Mode::X2Apic,
            (true, false) => Mode::XApic,
            _ => Mode::Disabled,
        }
    }

    fn software_enabled(&self) -> bool {
        self.mode() == Mode::X2Apic && self.svr & SVR_ENABLE != 0
    }

    pub fn irr(&self) -> &VectorSet {
        &self.irr
    }
    pub fn isr(&self) -> &VectorSet {
        &self.isr
    }
    pub fn tmr(&self) -> &VectorSet {
        &self.tmr
    }

    /// Processor priority: the higher of TPR and the class of the highest in-service
    /// vector.
    pub fn ppr(&self) -> u32 {
        let isrv = self.isr.highest().map_or(0, u32::from);
        if self.tpr & 0xf0 >= isrv & 0xf0 {
            self.tpr & 0xff
        } else {
            isrv & 0xf0
        }
    }

    pub fn timer_mode(&self) -> TimerMode {
        match (self.lvt[Lvt::Timer.index()] >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }

    fn x2apic_only(&self) -> Result<(), Gp> {
        if self.mode() == Mode::X2Apic {
            Ok(())
        } else {
            Err(Gp)
        }
    }

    /// RDMSR.
    pub fn read_msr(&self, msr: u32, now_tsc: u64) -> Result<u64, Gp> {
        if msr == msr::APIC_BASE {
            return Ok(self.apic_base);
        }
        self.x2apic_only()?;
        let v = match msr {
            msr::TSC_DEADLINE => {
                return Ok(if self.timer_mode() == TimerMode::TscDeadline {
                    self.timer.tsc_deadline
                } else {
                    0
                })
            }
            msr::ID => self.config.apic_id,
            msr::VERSION => VERSION,
            msr::TPR => self.tpr,
            msr::PPR => self.ppr(),
            msr::LDR => self.ldr(),
            msr::SVR => self.svr,
            m if (msr::ISR0..msr::ISR0 + 8).contains(&m) => self.isr.word(m - msr::ISR0),
            m if (msr::TMR0..msr::TMR0 + 8).contains(&m) => self.tmr.word(m - msr::TMR0),
            m if (msr::IRR0..msr::IRR0 + 8).contains(&m) => self.irr.word(m - msr::IRR0),
            msr::ESR => self.esr,
            msr::ICR => return Ok(self.icr),
            msr::TIMER_INITIAL => self.timer.initial_count,
            msr::TIMER_CURRENT => self.current_count(now_tsc),
            msr::TIMER_DIVIDE => self.timer.divide_config,
            m => match Lvt::from_msr(m) {
                Some(l) => self.lvt[l.index()],
                None => return Err(Gp),
            },
        };
        Ok(u64::from(v))
    }

    /// x2APIC logical destination: cluster in bits 16..32, one bit of 16 below.
    fn ldr(&self) -> u32 {
        let id = self.config.apic_id;
        ((id >> 4) << 16) | (1 << (id & 0xf))
    }

    /// WRMSR.
    pub fn write_msr(
        &mut self,
        msr: u32,
        value: u64,
        now_tsc: u64,
    ) -> Result<Option<LapicEvent>, Gp> {
        if msr == msr::APIC_BASE {
            self.write_apic_base(value)?;
            return Ok(None);
        }
        self.x2apic_only()?;
        match msr {
            msr::TSC_DEADLINE => {
                if self.timer_mode() == TimerMode::TscDeadline {
                    self.timer.tsc_deadline = value;
                    self.timer.deadline = (value != 0).then_some(value);
                }
                return Ok(None);
            }
            msr::ICR => return self.write_icr(value),
            _ => {}
        }
        // Every other x2APIC register is 32 bits wide; the upper half is reserved.
        let v = u32::try_from(value).map_err(|_| Gp)?;
        match msr {
            msr::TPR => {
                if v & !0xff != 0 {
                    return Err(Gp);
                }
                self.tpr = v;
            }
            msr::EOI => {
                if v != 0 {
                    return Err(Gp);
                }
                return Ok(self.eoi());
            }
            msr::SVR => {
                if v & !0x3ff != 0 {
                    return Err(Gp);
                }
                self.svr = v;
                if v & SVR_ENABLE == 0 {
                    for l in &mut self.lvt {
                        *l |= LVT_MASKED;
                    }
                }
            }
            msr::ESR => {
                if v != 0 {
                    return Err(Gp);
                }
                self.esr = core::mem::take(&mut self.esr_pending);
            }
            msr::TIMER_INITIAL => {
                if self.timer_mode() != TimerMode::TscDeadline {
                    self.timer.initial_count = v;
                    self.start_count_timer(now_tsc);
                }
            }
            msr::TIMER_DIVIDE => {
                if v & !0b1011 != 0 {
                    return Err(Gp);
                }
                // Takes effect at the next initial-count write: Linux programs the
                // divider before the count, never while the timer runs.
                self.timer.divide_config = v;
            }
            msr::SELF_IPI => {
                if v & !0xff != 0 {
                    return Err(Gp);
                }
                self.accept(v as u8, false);
            }
            m => {
                let lvt = Lvt::from_msr(m).ok_or(Gp)?;
                self.write_lvt(lvt, v)?;
            }
        }
        Ok(None)
    }

    fn write_apic_base(&mut self, value: u64) -> Result<(), Gp> {
        // Base address bits 12..52, BSP (read-only), EXTD, EN; nothing else.
        let allowed = 0x000f_ffff_ffff_f000 | APIC_BASE_BSP | APIC_BASE_EXTD | APIC_BASE_EN;
        if value & !allowed != 0 {
            return Err(Gp);
        }
        let new = (value & !APIC_BASE_BSP) | (self.apic_base & APIC_BASE_BSP);
        let en = new & APIC_BASE_EN != 0;
        let extd = new & APIC_BASE_EXTD != 0;
        // SDM 10.12.5: EXTD without EN is invalid; x2APIC -> xAPIC and
        // disabled -> x2APIC must go through the other states.
        let invalid = matches!(
            (self.mode(), en, extd),
            (_, false, true) | (Mode::X2Apic, true, false) | (Mode::Disabled, true, true)
        );
        if invalid {
            return Err(Gp);
        }
        self.apic_base = new;
        if !en {
            self.reset_state();
        }
        Ok(())
    }

    /// What disabling the APIC globally clears.
    fn reset_state(&mut self) {
        let fresh = Self::new(self.config);
        *self = Self {
            apic_base: self.apic_base,
            ..fresh
        };
    }

    fn write_lvt(&mut self, lvt: Lvt, v: u32) -> Result<(), Gp> {
        if v & !lvt.writable() != 0 {
            return Err(Gp);
        }
        let mut v = v;
        if lvt == Lvt::Timer {
            if (v >> 17) & 3 == 3 {
                return Err(Gp);
            }
            let old_mode = self.timer_mode();
            let slot = &mut self.lvt[lvt.index()];
            let keep = *slot & !lvt.writable();
            *slot = keep | v;
            if self.timer_mode() != old_mode {
                // A mode switch disarms the timer and forgets its programming.
                self.timer.deadline = None;
                self.timer.initial_count = 0;
                self.timer.tsc_deadline = 0;
            }
        }
        if self.svr & SVR_ENABLE == 0 {
            v |= LVT_MASKED;
        }
        let slot = &mut self.lvt[lvt.index()];
        *slot = (*slot & !lvt.writable()) | v;
        Ok(())
    }

    fn write_icr(&mut self, value: u64) -> Result<Option<LapicEvent>, Gp> {
        // Vector, delivery mode, destination mode, level, trigger, shorthand, and
        // the 32-bit destination; bits 12, 13, 16, 17, 20..32 are reserved.
        const ALLOWED: u64 = 0xffff_ffff_000c_cfff;
        if value & !ALLOWED != 0 {
            return Err(Gp);
        }
        self.icr = value;
        let vector = value as u8;
        let delivery = (value >> 8) & 7;
        let logical = value & (1 << 11) != 0;
        let dest = (value >> 32) as u32;
        let to_self = match (value >> 18) & 3 {
            0 => {
                dest == u32::MAX
                    || if logical {
                        // Same cluster and our bit set.
                        dest >> 16 == self.ldr() >> 16 && dest & self.ldr() & 0xffff != 0
                    } else {
                        dest == self.config.apic_id
                    }
            }
            1 | 2 => true,
            // All excluding self: there is no other CPU.
            _ => false,
        };
        match delivery {
            // Fixed and lowest-priority both land on the only CPU.
            0 | 1 => {
                if vector < 16 {
                    self.raise_error(esr::SEND_ILLEGAL_VECTOR);
                }
                if to_self {
                    self.accept(vector, false);
                }
            }
            4 if to_self => return Ok(Some(LapicEvent::Nmi)),
            // SMI, INIT, SIPI to ourselves and anything to absent CPUs: dropped.
            _ => {}
        }
        Ok(None)
    }

    fn eoi(&mut self) -> Option<LapicEvent> {
        let vector = self.isr.highest()?;
        self.isr.clear(vector);
        let level = self.tmr.contains(vector);
        Some(LapicEvent::Eoi { vector, level })
    }

    /// Records an error and, if the error LVT is unmasked, raises its interrupt.
    fn raise_error(&mut self, bits: u32) {
        let new = bits & !self.esr_pending;
        self.esr_pending |= bits;
        let lvt = self.lvt[Lvt::Error.index()];
        if new != 0 && lvt & LVT_MASKED == 0 && (lvt & 0xff) >= 16 {
            self.set_irr(lvt as u8, false);
        }
    }

    fn set_irr(&mut self, vector: u8, level: bool) {
        self.irr.set(vector);
        if level {
            self.tmr.set(vector);
        } else {
            self.tmr.clear(vector);
        }
    }

    /// Accepts a fixed interrupt; vectors 0..16 are illegal and only log an error.
    fn accept(&mut self, vector: u8, level: bool) {
        if self.mode() == Mode::Disabled {
            return;
        }
        if vector < 16 {
            self.raise_error(esr::RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        self.set_irr(vector, level);
    }

    /// An edge-triggered external interrupt (IOAPIC, MSI).
    pub fn request(&mut self, vector: u8) {
        self.accept(vector, false);
    }

    /// An edge-triggered interrupt whose delivery is its end of interrupt (Hyper-V's
    /// AutoEOI): it never blocks lower vectors through ISR and takes no EOI.
    pub fn request_auto_eoi(&mut self, vector: u8) {
        self.accept(vector, false);
        if self.irr.contains(vector) {
            self.auto_eoi.set(vector);
        }
    }

    /// A level-triggered one: its EOI comes back as `LapicEvent::Eoi { level: true }`.
    pub fn request_level(&mut self, vector: u8) {
        self.accept(vector, true);
    }

    /// The vector to inject now, if any: the highest requested whose priority class
    /// beats the processor priority.
    pub fn pending(&self) -> Option<u8> {
        if !self.software_enabled() {
            return None;
        }
        let v = self.irr.highest()?;
        (u32::from(v) & 0xf0 > self.ppr() & 0xf0).then_some(v)
    }

    /// The VMM injected `vector`: it moves from requested to in service. Returns
    /// false (and changes nothing) if it was not requested.
    pub fn acknowledge(&mut self, vector: u8) -> bool {
        if !self.irr.contains(vector) {
            return false;
        }
        self.irr.clear(vector);
        if self.auto_eoi.contains(vector) {
            self.auto_eoi.clear(vector);
        } else {
            self.isr.set(vector);
        }
        true
    }

    fn divisor(&self) -> u64 {
        let d = self.timer.divide_config;
        let code = ((d & 8) >> 1) | (d & 3);
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    /// TSC ticks for `count` timer ticks at the current divisor (at least 1).
    fn count_to_tsc(&self, count: u64) -> u64 {
        let bus = u128::from(self.config.bus_hz.max(1));
        let t =
            u128::from(count) * u128::from(self.divisor()) * u128::from(self.config.tsc_hz) / bus;
        u64::try_from(t).unwrap_or(u64::MAX).max(1)
    }

    fn start_count_timer(&mut self, now: u64) {
        if self.timer.initial_count == 0 {
            self.timer.deadline = None;
            return;
        }
        let period = self.count_to_tsc(u64::from(self.timer.initial_count));
        self.timer.period = period;
        self.timer.deadline = Some(now.saturating_add(period));
    }

    fn current_count(&self, now: u64) -> u32 {
        if self.timer_mode() == TimerMode::TscDeadline {
            return 0;
        }
        let Some(deadline) = self.timer.deadline else {
            return 0;
        };
        // A periodic timer the VMM has not polled yet has reloaded all the same.
        let left = if now >= deadline && self.timer_mode() == TimerMode::Periodic {
            let period = self.timer.period.max(1);
            u128::from(period - (now - deadline) % period)
        } else {
            u128::from(deadline.saturating_sub(now))
        };
        let per_count = u128::from(self.divisor()) * u128::from(self.config.tsc_hz);
        let count = left * u128::from(self.config.bus_hz) / per_count.max(1);
        u32::try_from(count)
            .unwrap_or(u32::MAX)
            .min(self.timer.initial_count)
    }

    /// Fires the timer if it is due at `now_tsc` (missed periods coalesce into one
    /// interrupt, as a late-running vCPU would see).
    pub fn poll(&mut self, now_tsc: u64) {
        let Some(deadline) = self.timer.deadline else {
            return;
        };
        if now_tsc < deadline {
            return;
        }
        let lvt = self.lvt[Lvt::Timer.index()];
        if lvt & LVT_MASKED == 0 {
            self.accept(lvt as u8, false);
        }
        self.timer.deadline = match self.timer_mode() {
            TimerMode::Periodic => {
                let period = self.timer.period.max(1);
                let missed = (now_tsc - deadline) / period + 1;
                Some(deadline.saturating_add(missed.saturating_mul(period)))
            }
            TimerMode::OneShot => None,
            TimerMode::TscDeadline => {
                self.timer.tsc_deadline = 0;
                None
            }
        };
    }

    /// When the timer next needs [`poll`](Self::poll), in TSC.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timer.deadline
    }
}

#[cfg(test)]
mod tests;
