//! The machine as the L1 paravisor reaches it: one instruction, TDCALL.

/// The GPRs TDCALL reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

pub trait TdxCpu {
    /// TDCALL with `regs` as input; `regs` holds the outputs afterwards.
    fn tdcall(&mut self, regs: &mut Regs);
}

/// The L2 guest-state buffer's GPRs after an exit (L1-private memory).
pub trait L2State {
    fn l2_gprs(&mut self) -> crate::exit::L2Gprs;
}
