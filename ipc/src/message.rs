/// Message registers a PPC may carry, as in seL4's IPC buffer.
pub const MAX_MESSAGE_REGISTERS: usize = 64;

/// The tag of a protected procedure call or its reply: an opaque label plus how
/// many message registers are meaningful.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageInfo {
    label: u64,
    count: u8,
}

impl MessageInfo {
    /// `count` is clamped to [`MAX_MESSAGE_REGISTERS`], so a peer can never make us
    /// read past the register file.
    pub const fn new(label: u64, count: usize) -> Self {
        let count = if count > MAX_MESSAGE_REGISTERS {
            MAX_MESSAGE_REGISTERS
        } else {
            count
        };
        Self {
            label,
            count: count as u8,
        }
    }

    pub const fn label(self) -> u64 {
        self.label
    }

    pub const fn count(self) -> usize {
        self.count as usize
    }
}

/// The message registers that travel with a PPC, in and out.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageRegisters(pub [u64; MAX_MESSAGE_REGISTERS]);

impl MessageRegisters {
    pub const fn new() -> Self {
        Self([0; MAX_MESSAGE_REGISTERS])
    }

    /// Reads register `i`; a register beyond the file reads as zero instead of panicking,
    /// because `i` often comes from a peer's message.
    pub fn get(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// Writes register `i`; returns false when `i` is beyond the register file.
    pub fn set(&mut self, i: usize, value: u64) -> bool {
        match self.0.get_mut(i) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }
}

impl Default for MessageRegisters {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for MessageRegisters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let used = self.0.iter().rposition(|&r| r != 0).map_or(0, |i| i + 1);
        f.debug_list().entries(&self.0[..used]).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, HandlerError, PpCall};

    #[test]
    fn count_is_clamped_to_the_register_file() {
        assert_eq!(MessageInfo::new(1, 1000).count(), MAX_MESSAGE_REGISTERS);
    }

    #[test]
    fn out_of_range_registers_read_zero_and_refuse_writes() {
        let mut mrs = MessageRegisters::new();
        assert!(mrs.set(3, 9));
        assert_eq!(mrs.get(3), 9);
        assert_eq!(mrs.get(64), 0);
        assert!(!mrs.set(64, 1));
    }

    #[test]
    fn a_call_retagged_for_the_callee_keeps_its_message_and_registers() {
        let mut mrs = MessageRegisters::new();
        mrs.set(0, 7);
        let call =
            PpCall::new(Channel::new(1), MessageInfo::new(9, 1), &mut mrs).on(Channel::new(4));
        assert_eq!(
            (call.ch, call.label(), call.count()),
            (Channel::new(4), 9, 1)
        );
        assert_eq!(call.mrs.get(0), 7);
        assert_eq!(
            call.bad_request(),
            HandlerError::BadRequest {
                channel: Channel::new(4),
                label: 9
            }
        );
        assert_eq!(
            call.unexpected(),
            HandlerError::UnexpectedCall(Channel::new(4))
        );
    }
}
