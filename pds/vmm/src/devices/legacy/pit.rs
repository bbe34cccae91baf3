//! The 8254 PIT (ports 0x40-0x43): programming is accepted and the counters count
//! down in real (TSC) time at 1.193182 MHz, so Linux's PIT probes and its TSC
//! calibration loops see them move and channel 2's output reach terminal count.
//! No interrupt is raised on IRQ 0 (the guest's timers are the x2APIC's and
//! Hyper-V's). BCD counting is stored but counts in binary.

/// The PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Channel {
    mode: u8,
    /// 1 = low byte, 2 = high byte, 3 = low then high.
    access: u8,
    bcd: bool,
    /// 0 stands for 65536.
    reload: u16,
    /// A reload value is loaded and counting.
    counting: bool,
    /// The low byte of a lo/hi write is in; the high byte comes next.
    write_hi_next: bool,
    read_hi_next: bool,
    latch: Option<u16>,
    latch_hi_next: bool,
    status: Option<u8>,
    /// Ticks counted before `start` (while the gate was high before a pause).
    base_ticks: u64,
    start: u64,
    gate: bool,
}

impl Channel {
    fn period(&self) -> u64 {
        if self.reload == 0 {
            0x1_0000
        } else {
            u64::from(self.reload)
        }
    }

    fn ticks(&self, now: u64, tsc_hz: u64) -> u64 {
        if !self.counting {
            return 0;
        }
        let running = if self.gate {
            let dt = u128::from(now.saturating_sub(self.start));
            u64::try_from(dt * u128::from(PIT_HZ) / u128::from(tsc_hz.max(1))).unwrap_or(u64::MAX)
        } else {
            0
        };
        self.base_ticks.saturating_add(running)
    }

    fn count(&self, now: u64, tsc_hz: u64) -> u16 {
        if !self.counting {
            return self.reload;
        }
        let t = self.ticks(now, tsc_hz);
        match self.mode {
            // Periodic modes reload; the others run on through 0 and wrap.
            2 | 3 => (self.period() - t % self.period()) as u16,
            _ => (self.period().wrapping_sub(t) & 0xffff) as u16,
        }
    }

    fn output(&self, now: u64, tsc_hz: u64) -> bool {
        if !self.counting {
            return self.mode != 0;
        }
        let t = self.ticks(now, tsc_hz);
        match self.mode {
            0 | 1 => t >= self.period(),
            3 => t % self.period() < self.period().div_ceil(2),
            _ => true,
        }
    }

    fn status_byte(&self, now: u64, tsc_hz: u64) -> u8 {
        (u8::from(self.output(now, tsc_hz)) << 7)
            | (u8::from(!self.counting) << 6)
            | (self.access << 4)
            | (self.mode << 1)
            | u8::from(self.bcd)
    }

    fn load(&mut self, now: u64) {
        self.counting = true;
        self.base_ticks = 0;
        self.start = now;
    }
}

/// The three channels and the mode/command port.
#[derive(Clone, Debug)]
pub struct Pit {
    channels: [Channel; 3],
    tsc_hz: u64,
}

impl Pit {
    pub fn new(tsc_hz: u64) -> Self {
        let ch = Channel {
            access: 3,
            gate: true,
            ..Channel::default()
        };
        // Channel 2's gate is port 0x61 bit 0, low at reset.
        Self {
            channels: [ch, ch, Channel { gate: false, ..ch }],
            tsc_hz,
        }
    }

    /// Port 0x43.
    pub fn write_command(&mut self, v: u8, now: u64) {
        let sel = usize::from(v >> 6);
        if sel == 3 {
            // Read-back: bit 5 clear latches counts, bit 4 clear latches status.
            for (i, ch) in self.channels.iter_mut().enumerate() {
                if v & (2 << i) == 0 {
                    continue;
                }
                if v & 0x10 == 0 && ch.status.is_none() {
                    ch.status = Some(ch.status_byte(now, self.tsc_hz));
                }
                if v & 0x20 == 0 && ch.latch.is_none() {
                    ch.latch = Some(ch.count(now, self.tsc_hz));
                    ch.latch_hi_next = false;
                }
            }
            return;
        }
        let tsc_hz = self.tsc_hz;
        let Some(ch) = self.channels.get_mut(sel) else {
            return;
        };
        let access = (v >> 4) & 3;
        if access == 0 {
            if ch.latch.is_none() {
                ch.latch = Some(ch.count(now, tsc_hz));
                ch.latch_hi_next = false;
            }
            return;
        }
        let mode = (v >> 1) & 7;
        // Modes 6 and 7 alias 2 and 3.
        ch.mode = if mode >= 6 { mode - 4 } else { mode };
        ch.access = access;
        ch.bcd = v & 1 != 0;
        ch.counting = false;
        ch.write_hi_next = false;
        ch.read_hi_next = false;
        ch.latch = None;
        ch.status = None;
    }

    /// Ports 0x40-0x42.
    pub fn write_counter(&mut self, index: usize, v: u8, now: u64) {
        let Some(ch) = self.channels.get_mut(index) else {
            return;
        };
        match ch.access {
            1 => {
                ch.reload = u16::from(v);
                ch.load(now);
            }
            2 => {
                ch.reload = u16::from(v) << 8;
                ch.load(now);
            }
            _ if !ch.write_hi_next => {
                ch.reload = (ch.reload & 0xff00) | u16::from(v);
                ch.write_hi_next = true;
            }
            _ => {
                ch.reload = (ch.reload & 0x00ff) | (u16::from(v) << 8);
                ch.write_hi_next = false;
                ch.load(now);
            }
        }
    }

    pub fn read_counter(&mut self, index: usize, now: u64) -> u8 {
        let tsc_hz = self.tsc_hz;
        let Some(ch) = self.channels.get_mut(index) else {
            return 0xff;
        };
        if let Some(s) = ch.status.take() {
            return s;
        }
        let (value, hi) = if let Some(l) = ch.latch {
            let hi = match ch.access {
                1 => false,
                2 => true,
                _ => ch.latch_hi_next,
            };
            if ch.access == 3 && !hi {
                ch.latch_hi_next = true;
            } else {
                ch.latch = None;
            }
            (l, hi)
        } else {
            let hi = match ch.access {
                1 => false,
                2 => true,
                _ => {
                    ch.read_hi_next = !ch.read_hi_next;
                    !ch.read_hi_next
                }
            };
            (ch.count(now, tsc_hz), hi)
        };
        if hi {
            (value >> 8) as u8
        } else {
            value as u8
        }
    }

    /// Channel 2's gate (port 0x61 bit 0). A rising edge restarts modes 1-3 and 5
    /// and resumes 0 and 4.
    pub fn set_gate2(&mut self, high: bool, now: u64) {
        let tsc_hz = self.tsc_hz;
        let ch = &mut self.channels[2];
        if ch.gate == high {
            return;
        }
        if high {
            if !matches!(ch.mode, 0 | 4) {
                ch.base_ticks = 0;
            }
            ch.start = now;
        } else {
            ch.base_ticks = ch.ticks(now, tsc_hz);
        }
        ch.gate = high;
    }

    pub fn gate2(&self) -> bool {
        self.channels[2].gate
    }

    /// Channel 2's output (port 0x61 bit 5).
    pub fn output2(&self, now: u64) -> bool {
        self.channels[2].output(now, self.tsc_hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSC_HZ: u64 = PIT_HZ * 10;

    /// A command byte for lo/hi access, then `count` low byte first, all at time 0.
    fn program(p: &mut Pit, command: u8, count: u16) {
        let channel = usize::from(command >> 6);
        p.write_command(command, 0);
        for byte in count.to_le_bytes() {
            p.write_counter(channel, byte, 0);
        }
    }

    /// A lo/hi read of `channel`'s count at `now`.
    fn read(p: &mut Pit, channel: usize, now: u64) -> u16 {
        let lo = p.read_counter(channel, now);
        let hi = p.read_counter(channel, now);
        u16::from_le_bytes([lo, hi])
    }

    #[test]
    fn counts_down_in_tsc_time_and_latches() {
        let mut p = Pit::new(TSC_HZ);
        // Channel 0, lo/hi, mode 2, reload 1000.
        program(&mut p, 0x34, 1000);
        assert_eq!(read(&mut p, 0, 0), 1000);
        assert_eq!(read(&mut p, 0, 100 * 10), 900);
        // Periodic: wraps back to the reload.
        assert_eq!(read(&mut p, 0, 1100 * 10), 900);
        // Latch holds the value while time moves on.
        p.write_command(0x00, 200 * 10);
        assert_eq!(read(&mut p, 0, 500 * 10), 800);
        assert_eq!(read(&mut p, 0, 500 * 10), 500);
    }

    #[test]
    fn channel2_calibration_path() {
        let mut p = Pit::new(TSC_HZ);
        // pit_calibrate_tsc: gate on, mode 0, lo/hi 0xffff... here 100 ticks.
        p.set_gate2(true, 0);
        program(&mut p, 0xb0, 100);
        assert!(!p.output2(10));
        assert!(!p.output2(99 * 10));
        assert!(p.output2(100 * 10));
        // Gate low holds the count.
        program(&mut p, 0xb0, 0xffff);
        p.set_gate2(false, 10 * 10);
        assert_eq!(read(&mut p, 2, 5000 * 10), 0xffff - 10);
        // Read-back status: output low, counting, lo/hi, mode 0.
        p.write_command(0xe8, 5000 * 10);
        assert_eq!(p.read_counter(2, 5000 * 10), 0x30);
    }

    #[test]
    fn square_wave_output_toggles() {
        let mut p = Pit::new(TSC_HZ);
        p.set_gate2(true, 0);
        program(&mut p, 0xb6, 10);
        assert!(p.output2(0));
        assert!(p.output2(4 * 10));
        assert!(!p.output2(5 * 10));
        assert!(p.output2(10 * 10));
        assert_eq!(p.read_counter(3, 0), 0xff);
    }
}
