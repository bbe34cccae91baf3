//! The MC146818 RTC/CMOS (index 0x70 with the NMI-mask bit, data 0x71): the time
//! of day from a wall clock the VMM gives plus elapsed TSC, in BCD or binary and
//! 24- or 12-hour form as status register B selects; status registers A-D read as
//! a healthy, idle chip; the rest is 128 bytes of CMOS RAM.
//!
//! Writes to the time registers move the clock (Linux writes it back after NTP
//! sync); alarms and periodic/update interrupts are stored but never fire.

pub mod reg {
    pub const SECONDS: u8 = 0x00;
    pub const MINUTES: u8 = 0x02;
    pub const HOURS: u8 = 0x04;
    pub const WEEKDAY: u8 = 0x06;
    pub const DAY: u8 = 0x07;
    pub const MONTH: u8 = 0x08;
    pub const YEAR: u8 = 0x09;
    pub const STATUS_A: u8 = 0x0a;
    pub const STATUS_B: u8 = 0x0b;
    pub const STATUS_C: u8 = 0x0c;
    pub const STATUS_D: u8 = 0x0d;
    /// The century byte the FADT points at (the usual place).
    pub const CENTURY: u8 = 0x32;
}

const B_24H: u8 = 1 << 1;
const B_BINARY: u8 = 1 << 2;
/// Status D: valid RAM and time (the battery is good).
const D_VRT: u8 = 0x80;

/// A civil date and time (UTC).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 1 = Sunday, as the RTC counts.
    pub weekday: u8,
}

/// Days since 1970-01-01 to (year, month, day): Hinnant's civil_from_days.
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse: days_from_civil.
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl DateTime {
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            weekday: ((days + 4).rem_euclid(7) + 1) as u8,
        }
    }

    pub fn to_unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4).saturating_mul(10).saturating_add(v & 0xf)
}

/// The RTC and its CMOS RAM.
#[derive(Clone, Debug)]
pub struct Rtc {
    index: u8,
    nmi_masked: bool,
    ram: [u8; 128],
    /// Unix seconds at TSC 0 (moves when the guest sets the clock).
    epoch_at_tsc0: i64,
    tsc_hz: u64,
}

impl Rtc {
    /// `wall_clock` is the Unix time at TSC `now_tsc`.
    pub fn new(wall_clock: i64, now_tsc: u64, tsc_hz: u64) -> Self {
        let mut ram = [0u8; 128];
        ram[usize::from(reg::STATUS_A)] = 0x26;
        ram[usize::from(reg::STATUS_B)] = B_24H;
        ram[usize::from(reg::STATUS_D)] = D_VRT;
        let elapsed = i64::try_from(now_tsc / tsc_hz.max(1)).unwrap_or(i64::MAX);
        Self {
            index: 0,
            nmi_masked: false,
            ram,
            epoch_at_tsc0: wall_clock.saturating_sub(elapsed),
            tsc_hz,
        }
    }

    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    pub fn now(&self, now_tsc: u64) -> DateTime {
        let elapsed = i64::try_from(now_tsc / self.tsc_hz.max(1)).unwrap_or(i64::MAX);
        DateTime::from_unix(self.epoch_at_tsc0.saturating_add(elapsed).clamp(0, 1 << 40))
    }

    /// Port 0x70.
    pub fn write_index(&mut self, v: u8) {
        self.nmi_masked = v & 0x80 != 0;
        self.index = v & 0x7f;
    }

    /// Port 0x70 reads back the index (as many chipsets do).
    pub fn read_index(&self) -> u8 {
        self.index | if self.nmi_masked { 0x80 } else { 0 }
    }

    fn encode(&self, v: u8) -> u8 {
        if self.ram[usize::from(reg::STATUS_B)] & B_BINARY != 0 {
            v
        } else {
            to_bcd(v)
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.ram[usize::from(reg::STATUS_B)] & B_BINARY != 0 {
            v
        } else {
            from_bcd(v)
        }
    }

    fn hour_out(&self, h: u8) -> u8 {
        if self.ram[usize::from(reg::STATUS_B)] & B_24H != 0 {
            return self.encode(h);
        }
        let pm = if h >= 12 { 0x80 } else { 0 };
        let h12 = match h % 12 {
            0 => 12,
            x => x,
        };
        self.encode(h12) | pm
    }

    fn hour_in(&self, v: u8) -> u8 {
        if self.ram[usize::from(reg::STATUS_B)] & B_24H != 0 {
            return self.decode(v) % 24;
        }
        let h12 = self.decode(v & 0x7f) % 12;
        if v & 0x80 != 0 {
            h12 + 12
        } else {
            h12
        }
    }

    /// Port 0x71.
    pub fn read_data(&mut self, now_tsc: u64) -> u8 {
        let t = self.now(now_tsc);
        match self.index {
            reg::SECONDS => self.encode(t.second),
            reg::MINUTES => self.encode(t.minute),
            reg::HOURS => self.hour_out(t.hour),
            reg::WEEKDAY => self.encode(t.weekday),
            reg::DAY => self.encode(t.day),
            reg::MONTH => self.encode(t.month),
            reg::YEAR => self.encode(t.year.rem_euclid(100) as u8),
            reg::CENTURY => self.encode(t.year.div_euclid(100).clamp(0, 99) as u8),
            // Update never in progress.
            reg::STATUS_A => self.ram[usize::from(reg::STATUS_A)] & 0x7f,
            // Interrupt flags: none, and reading clears them anyway.
            reg::STATUS_C => 0,
            reg::STATUS_D => D_VRT,
            i => self.ram[usize::from(i & 0x7f)],
        }
    }

    /// Port 0x71.
    pub fn write_data(&mut self, v: u8, now_tsc: u64) {
        let mut t = self.now(now_tsc);
        match self.index {
            reg::SECONDS => t.second = self.decode(v).min(59),
            reg::MINUTES => t.minute = self.decode(v).min(59),
            reg::HOURS => t.hour = self.hour_in(v),
            reg::DAY => t.day = self.decode(v).clamp(1, 31),
            reg::MONTH => t.month = self.decode(v).clamp(1, 12),
            reg::YEAR => t.year = t.year.div_euclid(100) * 100 + i64::from(self.decode(v) % 100),
            reg::CENTURY => t.year = i64::from(self.decode(v)) * 100 + t.year.rem_euclid(100),
            reg::STATUS_C | reg::STATUS_D => return,
            // Status A's UIP bit is read-only.
            reg::STATUS_A => {
                self.ram[usize::from(reg::STATUS_A)] = v & 0x7f;
                return;
            }
            i => {
                self.ram[usize::from(i & 0x7f)] = v;
                return;
            }
        }
        let elapsed = i64::try_from(now_tsc / self.tsc_hz.max(1)).unwrap_or(i64::MAX);
        self.epoch_at_tsc0 = t.to_unix().saturating_sub(elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000;
    /// 2026-12-05 01:30:45 UTC, a Saturday.
    const T: i64 = 1_796_434_245;

    fn read(r: &mut Rtc, i: u8, now: u64) -> u8 {
        r.write_index(i);
        r.read_data(now)
    }

    #[test]
    fn civil_conversions_round_trip() {
        let t = DateTime::from_unix(T);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2026, 12, 5, 1, 30, 45)
        );
        assert_eq!(t.weekday, 7);
        assert_eq!(t.to_unix(), T);
        let leap = DateTime::from_unix(951_782_400); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        assert_eq!(DateTime::from_unix(0).weekday, 5); // Thursday
        for s in [0i64, 59, 86_399, 86_400, 1 << 31, 4_102_444_800] {
            assert_eq!(DateTime::from_unix(s).to_unix(), s);
        }
    }

    #[test]
    fn bcd_time_advances_with_the_tsc() {
        let mut r = Rtc::new(T, 5 * HZ, HZ);
        assert_eq!(read(&mut r, reg::SECONDS, 5 * HZ), 0x45);
        assert_eq!(read(&mut r, reg::SECONDS, 20 * HZ), 0x00);
        assert_eq!(read(&mut r, reg::MINUTES, 20 * HZ), 0x31);
        assert_eq!(read(&mut r, reg::HOURS, 0), 0x01);
        assert_eq!(read(&mut r, reg::DAY, 0), 0x05);
        assert_eq!(read(&mut r, reg::MONTH, 0), 0x12);
        assert_eq!(read(&mut r, reg::YEAR, 0), 0x26);
        assert_eq!(read(&mut r, reg::CENTURY, 0), 0x20);
        assert_eq!(read(&mut r, reg::STATUS_A, 0), 0x26);
        assert_eq!(read(&mut r, reg::STATUS_B, 0), 0x02);
        assert_eq!(read(&mut r, reg::STATUS_D, 0), 0x80);
    }

    #[test]
    fn binary_and_12_hour_modes_and_setting_the_clock() {
        let mut r = Rtc::new(T + 13 * 3600, 0, HZ);
        r.write_index(reg::STATUS_B);
        r.write_data(B_BINARY, 0);
        assert_eq!(read(&mut r, reg::HOURS, 0), 0x80 | 2);
        assert_eq!(read(&mut r, reg::MINUTES, 0), 30);
        // Set 23:59:58 in BCD 24-hour mode; it rolls over to the next day.
        r.write_index(reg::STATUS_B);
        r.write_data(B_24H, 0);
        r.write_index(reg::HOURS);
        r.write_data(0x23, 0);
        r.write_index(reg::MINUTES);
        r.write_data(0x59, 0);
        r.write_index(reg::SECONDS);
        r.write_data(0x58, 0);
        assert_eq!(read(&mut r, reg::DAY, 3 * HZ), 0x06);
        assert_eq!(read(&mut r, reg::HOURS, 3 * HZ), 0x00);
        // NMI mask bit and CMOS RAM.
        r.write_index(0x80 | 0x40);
        assert!(r.nmi_masked());
        r.write_data(0xa5, 0);
        assert_eq!(r.read_data(0), 0xa5);
        assert_eq!(r.read_index(), 0xc0);
        // Garbage BCD never panics.
        r.write_index(reg::YEAR);
        r.write_data(0xff, 0);
        r.write_index(reg::HOURS);
        r.write_data(0xff, 0);
    }
}
