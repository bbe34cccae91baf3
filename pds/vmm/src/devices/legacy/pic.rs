//! The 8259A pair (master 0x20/0x21, slave 0xA0/0xA1), accepting the ICW/OCW
//! sequences Linux's probe and masking code write. Interrupts go through the IOAPIC
//! and x2APIC here, so the PICs never have anything pending: IRR, ISR and poll
//! reads are 0, and only the mask (and init state) is kept, because Linux reads the
//! mask back to decide whether a PIC exists.

/// Where an ICW sequence stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Init {
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Pic {
    imr: u8,
    init: Init,
    needs_icw4: bool,
    single: bool,
    vector_base: u8,
    /// OCW3 RR/RIS: command-port reads return ISR instead of IRR (both 0).
    read_isr: bool,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    pub const fn new() -> Self {
        Self {
            imr: 0xff,
            init: Init::Ready,
            needs_icw4: false,
            single: false,
            vector_base: 0,
            read_isr: false,
        }
    }

    pub fn imr(&self) -> u8 {
        self.imr
    }

    pub fn vector_base(&self) -> u8 {
        self.vector_base
    }

    /// Command port (A0 = 0).
    pub fn write_command(&mut self, v: u8) {
        if v & 0x10 != 0 {
            // ICW1 restarts initialization and clears the mask.
            self.init = Init::Icw2;
            self.needs_icw4 = v & 1 != 0;
            self.single = v & 2 != 0;
            self.imr = 0;
            self.read_isr = false;
        } else if v & 0x08 != 0 {
            // OCW3; RR selects which of IRR/ISR later reads show.
            if v & 0x02 != 0 {
                self.read_isr = v & 1 != 0;
            }
        }
        // OCW2 (EOI, rotation): nothing is ever in service.
    }

    /// Data port (A0 = 1).
    pub fn write_data(&mut self, v: u8) {
        self.init = match self.init {
            Init::Icw2 => {
                self.vector_base = v & 0xf8;
                match (self.single, self.needs_icw4) {
                    (false, _) => Init::Icw3,
                    (true, true) => Init::Icw4,
                    (true, false) => Init::Ready,
                }
            }
            Init::Icw3 if self.needs_icw4 => Init::Icw4,
            Init::Icw3 | Init::Icw4 => Init::Ready,
            Init::Ready => {
                self.imr = v;
                Init::Ready
            }
        };
    }

    /// IRR, ISR or a poll result: never anything pending.
    pub fn read_command(&self) -> u8 {
        0
    }

    pub fn read_data(&self) -> u8 {
        self.imr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_init_sequence_and_mask_readback() {
        let mut p = Pic::new();
        // init_8259A: ICW1 (edge, cascade, ICW4), ICW2 base 0x30, ICW3, ICW4 (8086).
        p.write_command(0x11);
        assert_eq!(p.imr(), 0);
        p.write_data(0x30);
        p.write_data(0x04);
        p.write_data(0x01);
        assert_eq!(p.vector_base(), 0x30);
        // OCW1 masks and reads back (probe_8259A).
        p.write_data(0xfb);
        assert_eq!(p.read_data(), 0xfb);
        // OCW3 read-ISR, OCW2 EOI: accepted, nothing pending.
        p.write_command(0x0b);
        p.write_command(0x20);
        assert_eq!(p.read_command(), 0);
        assert_eq!(p.read_data(), 0xfb);
        // Single mode without ICW4: two words, then OCW1.
        p.write_command(0x12);
        p.write_data(0x08);
        p.write_data(0x5a);
        assert_eq!(p.read_data(), 0x5a);
    }
}
