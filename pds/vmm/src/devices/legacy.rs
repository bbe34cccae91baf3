//! Benign models of the legacy PC ports Linux probes at boot: enough state that
//! each probe reads back what it wrote and sees time pass, no interrupts.
//!
//! [`pic`], [`pit`] and [`rtc`] are the chips; this file holds the ones too small
//! for a module of their own: system control ports A and B (0x92, 0x61), the PCI
//! configuration mechanism #1 with no devices behind it (0xCF8/0xCFC, and 0xCF9's
//! reset control), and the ACPI (hardware-reduced) sleep control and status
//! registers, whose S5 write is the guest powering off.

pub mod pic;
pub mod pit;
pub mod rtc;

/// Something the platform must do beyond answering the access.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlatformEvent {
    /// The guest entered S5 (ACPI power off).
    PowerOff,
    /// The guest asked for a reset (0xCF9 or port 0x92's fast reset).
    Reset,
}

/// Port 0x61 (system control port B), less its PIT parts which the bus adds: the
/// speaker and parity/IOCHK enables read back; NMI sources (bits 6, 7) are never
/// set, so Linux finds no NMI reason here.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PortB {
    /// Bits 0..4 as last written (bit 0 also gates PIT channel 2).
    pub control: u8,
}

impl PortB {
    pub fn read(&self, pit_out2: bool, refresh: bool) -> u8 {
        (self.control & 0x0f) | (u8::from(refresh) << 4) | (u8::from(pit_out2) << 5)
    }
}

/// Port 0x92 (system control port A): the A20 gate reads back; bit 0 resets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortA {
    pub value: u8,
}

impl Default for PortA {
    fn default() -> Self {
        // A20 enabled, as firmware leaves it.
        Self { value: 0x02 }
    }
}

impl PortA {
    pub fn write(&mut self, v: u8) -> Option<PlatformEvent> {
        self.value = v & 0x02;
        (v & 1 != 0).then_some(PlatformEvent::Reset)
    }
}

/// PCI configuration mechanism #1 with an empty bus: the address latch reads
/// back, every data read is all ones ("no device"), writes go nowhere.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PciConfig {
    address: u32,
}

pub const PCI_ADDRESS: u16 = 0xcf8;
pub const PCI_RESET_CONTROL: u16 = 0xcf9;
pub const PCI_DATA: u16 = 0xcfc;

impl PciConfig {
    /// A dword write to 0xCF8 (bits 0..2 are reserved and read as 0).
    pub fn write_address(&mut self, v: u32) {
        self.address = v & !3;
    }

    pub fn address(&self) -> u32 {
        self.address
    }

    /// A byte write to 0xCF9: bit 2 starts a reset.
    pub fn write_reset_control(v: u8) -> Option<PlatformEvent> {
        (v & 0x04 != 0).then_some(PlatformEvent::Reset)
    }
}

/// The FADT's hardware-reduced sleep registers (one byte each).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SleepPorts {
    pub control: u16,
    pub status: u16,
    /// SLP_TYP of `\_S5`.
    pub s5_type: u8,
}

const SLP_EN: u8 = 1 << 5;
const WAK_STS: u8 = 1 << 7;

/// The sleep control/status registers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sleep {
    pub ports: SleepPorts,
    status: u8,
}

impl Sleep {
    pub fn new(ports: SleepPorts) -> Self {
        Self { ports, status: 0 }
    }

    /// SLP_EN with SLP_TYP = S5 powers off; other sleep states are not
    /// supported and the write is ignored (the guest's `_S3` etc. do not exist).
    pub fn write_control(&mut self, v: u8) -> Option<PlatformEvent> {
        (v & SLP_EN != 0 && (v >> 2) & 7 == self.ports.s5_type & 7)
            .then_some(PlatformEvent::PowerOff)
    }

    /// WAK_STS is write-one-to-clear.
    pub fn write_status(&mut self, v: u8) {
        self.status &= !(v & WAK_STS);
    }

    pub fn read_status(&self) -> u8 {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_s5_powers_off_only_with_slp_en() {
        let mut s = Sleep::new(SleepPorts {
            control: 0x404,
            status: 0x405,
            s5_type: 5,
        });
        assert_eq!(s.write_control(5 << 2), None);
        assert_eq!(s.write_control((3 << 2) | SLP_EN), None);
        assert_eq!(
            s.write_control((5 << 2) | SLP_EN),
            Some(PlatformEvent::PowerOff)
        );
        s.write_status(0xff);
        assert_eq!(s.read_status(), 0);
    }

    #[test]
    fn small_ports() {
        let mut a = PortA::default();
        assert_eq!(a.write(0x02), None);
        assert_eq!(a.value, 0x02);
        assert_eq!(a.write(0x03), Some(PlatformEvent::Reset));
        assert_eq!(PciConfig::write_reset_control(0x02), None);
        assert_eq!(
            PciConfig::write_reset_control(0x06),
            Some(PlatformEvent::Reset)
        );
        let mut p = PciConfig::default();
        p.write_address(0x8000_0003);
        assert_eq!(p.address(), 0x8000_0000);
        let b = PortB { control: 0x03 };
        assert_eq!(b.read(true, true), 0x33);
    }
}
