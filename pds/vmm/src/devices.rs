//! The platform devices the VMM emulates for a stock Linux guest, each a sans-IO
//! model fed by exits: the vCPU's x2APIC ([`lapic`]), the COM1 16550A ([`uart`]),
//! the legacy chipset ports Linux probes ([`legacy`]), and the port-I/O dispatcher
//! that routes IOIO exits to them ([`bus`]); the vTPM's CRB, which the tpm PD
//! emulates, is described and routed from [`tpm_crb`].

pub mod bus;
pub mod lapic;
pub mod legacy;
pub mod tpm_crb;
pub mod uart;
