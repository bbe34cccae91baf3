//! One 64-bit redirection table entry.

/// Bits of the entry.
const VECTOR: u64 = 0xff;
const DELIVERY_MODE_SHIFT: u32 = 8;
const DEST_MODE_LOGICAL: u64 = 1 << 11;
const DELIVERY_STATUS: u64 = 1 << 12;
const POLARITY_LOW: u64 = 1 << 13;
const REMOTE_IRR: u64 = 1 << 14;
const TRIGGER_LEVEL: u64 = 1 << 15;
const MASK: u64 = 1 << 16;
const DESTINATION_SHIFT: u32 = 56;

/// Bits the guest may write: vector, delivery mode, destination mode, polarity,
/// trigger, mask and destination. Delivery status and remote IRR are read-only;
/// bits 17-55 are reserved and read as zero.
const WRITABLE: u64 = 0xff00_0000_0001_afff;

/// The delivery mode field; the discriminants are its 3-bit x86 encoding, as in the
/// redirection entry and the local APIC's ICR.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DeliveryMode {
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Nmi = 4,
    Init = 5,
    ExtInt = 7,
}

impl DeliveryMode {
    const ALL: [Self; 6] = [
        Self::Fixed,
        Self::LowestPriority,
        Self::Smi,
        Self::Nmi,
        Self::Init,
        Self::ExtInt,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// `None` for the reserved encodings 3 and 6 and anything above 7.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DestinationMode {
    Physical,
    Logical,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TriggerMode {
    Edge,
    Level,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RedirectionEntry(pub u64);

impl RedirectionEntry {
    /// Power-on value: masked, everything else zero.
    pub const RESET: Self = Self(MASK);

    pub fn vector(self) -> u8 {
        (self.0 & VECTOR) as u8
    }

    /// `None` for the reserved encodings 011 and 110.
    pub fn delivery_mode(self) -> Option<DeliveryMode> {
        DeliveryMode::from_code(((self.0 >> DELIVERY_MODE_SHIFT) & 7) as u8)
    }

    pub fn destination_mode(self) -> DestinationMode {
        if self.0 & DEST_MODE_LOGICAL != 0 {
            DestinationMode::Logical
        } else {
            DestinationMode::Physical
        }
    }

    pub fn delivery_status(self) -> bool {
        self.0 & DELIVERY_STATUS != 0
    }

    pub fn active_low(self) -> bool {
        self.0 & POLARITY_LOW != 0
    }

    pub fn remote_irr(self) -> bool {
        self.0 & REMOTE_IRR != 0
    }

    pub fn trigger_bit_level(self) -> bool {
        self.0 & TRIGGER_LEVEL != 0
    }

    /// Level semantics (remote IRR, re-delivery) apply only to fixed and
    /// lowest-priority delivery; SMI, NMI, INIT and ExtINT are edge by nature.
    pub fn is_level(self) -> bool {
        self.trigger_bit_level()
            && matches!(
                self.delivery_mode(),
                Some(DeliveryMode::Fixed | DeliveryMode::LowestPriority)
            )
    }

    pub fn masked(self) -> bool {
        self.0 & MASK != 0
    }

    pub fn destination(self) -> u8 {
        (self.0 >> DESTINATION_SHIFT) as u8
    }

    /// The entry after the guest wrote `raw` over it: read-only bits kept,
    /// reserved bits dropped. Switching to edge clears remote IRR, which has no
    /// meaning for edge interrupts.
    pub fn reprogram(self, raw: u64) -> Self {
        let mut e = Self((raw & WRITABLE) | (self.0 & (DELIVERY_STATUS | REMOTE_IRR)));
        if !e.is_level() {
            e.0 &= !REMOTE_IRR;
        }
        e
    }

    pub fn with_remote_irr(self, on: bool) -> Self {
        Self(if on {
            self.0 | REMOTE_IRR
        } else {
            self.0 & !REMOTE_IRR
        })
    }

    pub fn with_delivery_status(self, on: bool) -> Self {
        Self(if on {
            self.0 | DELIVERY_STATUS
        } else {
            self.0 & !DELIVERY_STATUS
        })
    }
}
