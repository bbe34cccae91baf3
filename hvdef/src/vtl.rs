//! Virtual trust levels.

use core::fmt;

/// A VTL number. Hyper-V implements VTL0..=VTL2; the paravisor runs in the highest.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vtl(u8);

impl Vtl {
    pub const VTL0: Self = Self(0);
    pub const VTL1: Self = Self(1);
    pub const VTL2: Self = Self(2);
    /// The highest VTL this ABI lets a guest name.
    pub const MAX: Self = Self::VTL2;

    /// The bit for this VTL in a VTL set.
    pub const fn bit(self) -> u8 {
        1 << self.0
    }
}

crate::small_index! {
    /// How many VTLs exist, for per-VTL arrays; guests pass VTL numbers in input
    /// pages, so [`Vtl::new`] refuses those beyond [`Vtl::MAX`].
    Vtl: Vtl::MAX.0 as usize + 1
}

/// VTL numbers cross protected calls as whole registers.
impl From<Vtl> for u64 {
    fn from(vtl: Vtl) -> Self {
        vtl.0.into()
    }
}

/// A register naming no VTL (beyond [`Vtl::MAX`] or 64 bits wide) is refused.
impl TryFrom<u64> for Vtl {
    type Error = ();
    fn try_from(raw: u64) -> Result<Self, ()> {
        u8::try_from(raw).ok().and_then(Self::new).ok_or(())
    }
}

impl fmt::Debug for Vtl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VTL{}", self.0)
    }
}

/// `HV_INPUT_VTL`: a byte in hypercall inputs that either names a target VTL or
/// means "the caller's own".
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct HvInputVtl(pub u8);

impl HvInputVtl {
    const TARGET_MASK: u8 = 0x0F;
    const USE_TARGET: u8 = 0x10;
    const RESERVED: u8 = 0xE0;

    pub const CURRENT: Self = Self(0);

    pub const fn target(vtl: Vtl) -> Self {
        Self(Self::USE_TARGET | vtl.0)
    }

    /// The VTL the input names, resolved against the caller's own; `None` for reserved
    /// bits or an out-of-range target (the hypercall then fails with INVALID_PARAMETER).
    pub const fn resolve(self, caller: Vtl) -> Option<Vtl> {
        if self.0 & Self::RESERVED != 0 {
            return None;
        }
        if self.0 & Self::USE_TARGET == 0 {
            // Without the flag the target bits mean nothing (OpenVMM and Hyper-V
            // ignore them too).
            return Some(caller);
        }
        Vtl::new(self.0 & Self::TARGET_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_vtl_resolves_current_target_and_rejects_junk() {
        assert_eq!(HvInputVtl::CURRENT.resolve(Vtl::VTL2), Some(Vtl::VTL2));
        assert_eq!(
            HvInputVtl::target(Vtl::VTL0).resolve(Vtl::VTL2),
            Some(Vtl::VTL0)
        );
        assert_eq!(HvInputVtl(0x13).resolve(Vtl::VTL0), None);
        assert_eq!(HvInputVtl(0x20).resolve(Vtl::VTL0), None);
        assert_eq!(HvInputVtl(0x01).resolve(Vtl::VTL0), Some(Vtl::VTL0));
        assert_eq!(Vtl::new(3), None);
    }
}
