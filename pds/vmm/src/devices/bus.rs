//! The port-I/O dispatcher: IOIO exits in, device models out.
//!
//! The legacy devices have byte-wide registers, so a 2- or 4-byte access is the
//! byte accesses at consecutive ports it is on an ISA bus (low byte first); the
//! only wide register is PCI's dword address latch at 0xCF8. Unknown ports read as
//! all ones (a floating bus) and ignore writes, and are counted per port so the
//! VMM's exit statistics show what the guest looked for.

use alloc::collections::BTreeMap;

use super::legacy::pic::Pic;
use super::legacy::pit::Pit;
use super::legacy::rtc::Rtc;
use super::legacy::{
    PciConfig, PlatformEvent, PortA, PortB, Sleep, SleepPorts, PCI_ADDRESS, PCI_DATA,
    PCI_RESET_CONTROL,
};
use super::uart::{Uart, COM1};

/// What the platform is built from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PlatformConfig {
    pub tsc_hz: u64,
    /// Unix time at `now_tsc`, for the RTC.
    pub wall_clock: i64,
    pub now_tsc: u64,
    pub sleep: SleepPorts,
}

/// At most this many distinct unknown ports are counted one by one.
pub const MAX_TRACKED_PORTS: usize = 64;

/// Access counts for the VMM's statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub known: u64,
    unknown: BTreeMap<u16, u64>,
    /// Accesses to unknown ports past the first [`MAX_TRACKED_PORTS`].
    pub unknown_untracked: u64,
}

impl PortStats {
    /// (port, accesses) for each unknown port the guest touched.
    pub fn unknown(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.unknown.iter().map(|(&p, &n)| (p, n))
    }

    fn count_unknown(&mut self, port: u16) {
        if let Some(n) = self.unknown.get_mut(&port) {
            *n += 1;
        } else if self.unknown.len() < MAX_TRACKED_PORTS {
            self.unknown.insert(port, 1);
        } else {
            self.unknown_untracked += 1;
        }
    }
}

const DELAY_PORTS: [u16; 2] = [0x80, 0xed];
const PORT_B: u16 = 0x61;
const PORT_A: u16 = 0x92;

/// All port-I/O devices of the platform.
#[derive(Clone, Debug)]
pub struct PortBus {
    pub uart: Uart,
    pub pics: [Pic; 2],
    pub pit: Pit,
    pub rtc: Rtc,
    port_a: PortA,
    port_b: PortB,
    pci: PciConfig,
    sleep: Sleep,
    tsc_hz: u64,
    stats: PortStats,
}

impl PortBus {
    pub fn new(config: PlatformConfig) -> Self {
        Self {
            uart: Uart::new(),
            pics: [Pic::new(), Pic::new()],
            pit: Pit::new(config.tsc_hz),
            rtc: Rtc::new(config.wall_clock, config.now_tsc, config.tsc_hz),
            port_a: PortA::default(),
            port_b: PortB::default(),
            pci: PciConfig::default(),
            sleep: Sleep::new(config.sleep),
            tsc_hz: config.tsc_hz,
            stats: PortStats::default(),
        }
    }

    pub fn stats(&self) -> &PortStats {
        &self.stats
    }

    /// Port 0x61 bit 4: the DRAM refresh request, toggling every 15.085 us (old
    /// delay loops time themselves by it).
    fn refresh_toggle(&self, now: u64) -> bool {
        let ns = u128::from(now) * 1_000_000_000 / u128::from(self.tsc_hz.max(1));
        (ns / 15_085) & 1 == 1
    }

    fn read_byte(&mut self, port: u16, now: u64) -> Option<u8> {
        let s = self.sleep.ports;
        Some(match port {
            _ if port == s.control => 0,
            _ if port == s.status => self.sleep.read_status(),
            0x20 | 0xa0 => self.pics[usize::from(port == 0xa0)].read_command(),
            0x21 | 0xa1 => self.pics[usize::from(port == 0xa1)].read_data(),
            0x40..=0x42 => self.pit.read_counter(usize::from(port - 0x40), now),
            // The 8254's control word is write-only.
            0x43 => 0xff,
            PORT_B => self
                .port_b
                .read(self.pit.output2(now), self.refresh_toggle(now)),
            0x70 => self.rtc.read_index(),
            0x71 => self.rtc.read_data(now),
            PORT_A => self.port_a.value,
            _ if DELAY_PORTS.contains(&port) => 0xff,
            _ if (COM1..COM1 + 8).contains(&port) => self.uart.read(port - COM1),
            PCI_RESET_CONTROL => 0,
            // Byte access to the rest of the address dword, and the data window
            // of a bus with nothing on it.
            _ if (PCI_ADDRESS..PCI_DATA + 4).contains(&port) => 0xff,
            _ => return None,
        })
    }

    fn write_byte(&mut self, port: u16, v: u8, now: u64) -> Result<Option<PlatformEvent>, ()> {
        let s = self.sleep.ports;
        match port {
            _ if port == s.control => return Ok(self.sleep.write_control(v)),
            _ if port == s.status => self.sleep.write_status(v),
            0x20 | 0xa0 => self.pics[usize::from(port == 0xa0)].write_command(v),
            0x21 | 0xa1 => self.pics[usize::from(port == 0xa1)].write_data(v),
            0x40..=0x42 => self.pit.write_counter(usize::from(port - 0x40), v, now),
            0x43 => self.pit.write_command(v, now),
            PORT_B => {
                self.port_b.control = v & 0x0f;
                self.pit.set_gate2(v & 1 != 0, now);
            }
            0x70 => self.rtc.write_index(v),
            0x71 => self.rtc.write_data(v, now),
            PORT_A => return Ok(self.port_a.write(v)),
            _ if DELAY_PORTS.contains(&port) => {}
            _ if (COM1..COM1 + 8).contains(&port) => self.uart.write(port - COM1, v),
            PCI_RESET_CONTROL => return Ok(PciConfig::write_reset_control(v)),
            _ if (PCI_ADDRESS..PCI_DATA + 4).contains(&port) => {}
            _ => return Err(()),
        }
        Ok(None)
    }

    /// IN of `size` (1, 2 or 4) bytes at `port`.
    pub fn io_in(&mut self, port: u16, size: u8, now_tsc: u64) -> u32 {
        if size == 4 && port == PCI_ADDRESS {
            self.stats.known += 1;
            return self.pci.address();
        }
        if !matches!(size, 1 | 2 | 4) {
            self.stats.count_unknown(port);
            return u32::MAX;
        }
        let mut value = 0u32;
        let mut known = true;
        for i in 0..size {
            let b = self
                .read_byte(port.wrapping_add(u16::from(i)), now_tsc)
                .unwrap_or_else(|| {
                    known = false;
                    0xff
                });
            value |= u32::from(b) << (8 * u32::from(i));
        }
        if known {
            self.stats.known += 1;
        } else {
            self.stats.count_unknown(port);
        }
        value
    }

    /// OUT of the low `size` (1, 2 or 4) bytes of `value` at `port`.
    pub fn io_out(
        &mut self,
        port: u16,
        size: u8,
        value: u32,
        now_tsc: u64,
    ) -> Option<PlatformEvent> {
        if size == 4 && port == PCI_ADDRESS {
            self.stats.known += 1;
            self.pci.write_address(value);
            return None;
        }
        if !matches!(size, 1 | 2 | 4) {
            self.stats.count_unknown(port);
            return None;
        }
        let mut event = None;
        let mut known = true;
        for i in 0..size {
            let b = (value >> (8 * u32::from(i))) as u8;
            match self.write_byte(port.wrapping_add(u16::from(i)), b, now_tsc) {
                Ok(e) => event = event.or(e),
                Err(()) => known = false,
            }
        }
        if known {
            self.stats.known += 1;
        } else {
            self.stats.count_unknown(port);
        }
        event
    }
}

#[cfg(test)]
mod tests;
