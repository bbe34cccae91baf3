//! The platform devices the VMM emulates for a stock Linux guest, each a sans-IO
//! model fed by exits: the vCPU's x2APIC ([`lapic`]), the COM1 16550A ([`uart`]),
//! the legacy chipset ports Linux probes ([`legacy`]), and the port-I/O dispatcher
//! that routes IOIO exits to them ([`bus`]).

pub mod bus;
pub mod lapic;
pub mod legacy;
pub mod uart;
