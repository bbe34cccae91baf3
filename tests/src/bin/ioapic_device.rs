//! A device PD for the ioapic system (tests/systems/ioapic.xml): it drives the
//! lines the ioapic PD granted its channel (3 and 4) and tries some it was not
//! given. It runs one step each time the guest stand-in notifies it, prints what it
//! did, and notifies back; an unexpected answer makes it exit 1.
//!
//! Channels: 0 = the ioapic PD (SET_LINE calls), 1 = the guest stand-in.

use ioapic::api::{self, ClientError, LineAction, Status};
use ipc::{Channel, ChannelSet, Handler, HandlerError, Kernel};
use system_tests::ioapic::*;

const IOAPIC: Channel = Channel::new(0);
const GUEST: Channel = Channel::new(1);

struct Device {
    step: u32,
}

fn line(k: &mut dyn Kernel, line: u8, action: LineAction) -> Result<(), String> {
    api::set_line(k, IOAPIC, u64::from(line), action)
        .map_err(|e| format!("{} of line {line}: {e}", action.name()))
}

/// A call that must be refused with `want`.
fn refused(what: &str, got: Result<(), ClientError>, want: Status) -> Result<(), String> {
    match got {
        Err(ClientError::Refused(s)) if s == want => Ok(()),
        other => Err(format!("{what}: expected refusal {want:?}, got {other:?}")),
    }
}

impl Device {
    fn run_step(&self, k: &mut dyn Kernel) -> Result<String, String> {
        match self.step {
            1 => {
                line(k, LEVEL_LINE, LineAction::ASSERT)?;
                line(k, EDGE_LINE, LineAction::PULSE)?;
                refused(
                    "line 9",
                    api::set_line(k, IOAPIC, u64::from(FOREIGN_LINE), LineAction::ASSERT),
                    Status::NOT_PERMITTED,
                )?;
                refused(
                    "line 24",
                    api::set_line(k, IOAPIC, 24, LineAction::ASSERT),
                    Status::BAD_LINE,
                )?;
                refused(
                    "register write",
                    api::mmio_write(k, IOAPIC, ioapic::MMIO_BASE, 4, 0),
                    Status::NOT_PERMITTED,
                )?;
                Ok(format!(
                    "asserted line {LEVEL_LINE}, pulsed line {EDGE_LINE}; line {FOREIGN_LINE} refused (not permitted), line 24 refused (no such line), register write refused"
                ))
            }
            2 => {
                line(k, LEVEL_LINE, LineAction::DEASSERT)?;
                Ok(format!("deasserted line {LEVEL_LINE}"))
            }
            3 => {
                line(k, LEVEL_LINE, LineAction::ASSERT)?;
                Ok(format!("asserted line {LEVEL_LINE}"))
            }
            4 => {
                for _ in 0..FLOOD_PULSES {
                    line(k, EDGE_LINE, LineAction::PULSE)?;
                }
                Ok(format!("pulsed line {EDGE_LINE} {FLOOD_PULSES} times"))
            }
            n => Err(format!("no step {n}")),
        }
    }
}

impl Handler for Device {
    fn notified(&mut self, k: &mut dyn Kernel, channels: ChannelSet) -> Result<(), HandlerError> {
        if !channels.contains(GUEST) {
            return Err(HandlerError::UnexpectedNotification(
                channels.iter().next().unwrap_or(IOAPIC),
            ));
        }
        self.step += 1;
        match self.run_step(k) {
            Ok(what) => println!("device: step {}: {what}", self.step),
            Err(e) => {
                println!("device: step {} FAILED: {e}", self.step);
                std::process::exit(1);
            }
        }
        GUEST.notify(k)?;
        Ok(())
    }
}

fn main() {
    hostsim::run(|_, _| Ok(Device { step: 0 }))
}
