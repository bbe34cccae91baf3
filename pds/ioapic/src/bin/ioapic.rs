//! host-sim entry point of the ioapic PD.
//!
//! Channel ids and line grants are this PD's build-time configuration, as a
//! Microkit PD's `config.rs` would hold them; a system description must give the
//! ioapic PD these ids (tests/systems/ioapic.xml does).
//!
//! | id | peer          | role                                                   |
//! |----|---------------|--------------------------------------------------------|
//! | 0  | the vCPU PD   | MMIO and EOI calls in; interrupt-queue notifications both ways |
//! | 1  | a device PD   | drives lines 3 and 4 (the two serial ports' ISA IRQs)  |
//! | 2  | a device PD   | drives line 9 (the ACPI SCI)                           |
//!
//! `IOAPIC_LINES` (environment) replaces the line grants: comma-separated
//! `<channel>:<mask>` pairs, e.g. `1:0x18,2:0x200`; `IOAPIC_VERSION` (0x11 or 0x20,
//! default 0x11) picks the register set.

use ioapic::pd::{self, IoapicPd};
use ipc::{Channel, WithVariables};

const VCPU: u64 = 0;
const DEFAULT_LINES: &str = "1:0x18,2:0x200";

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `<channel>:<mask>,...` into (variable, mask) pairs; the PD checks the masks.
fn parse_lines(text: &str) -> Result<Vec<(&'static str, u64)>, String> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (ch, mask) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} is not <channel>:<mask>"))?;
        let ch = parse_u64(ch.trim())
            .and_then(|c| u8::try_from(c).ok())
            .and_then(Channel::try_new)
            .ok_or_else(|| format!("{ch:?} is not a channel id (0..=61)"))?;
        let mask = parse_u64(mask.trim()).ok_or_else(|| format!("{mask:?} is not a number"))?;
        let name = pd::line_grant_variable(ch);
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("channel {} is granted lines twice", ch.index()));
        }
        out.push((name, mask));
    }
    Ok(out)
}

fn main() {
    let lines = std::env::var("IOAPIC_LINES").unwrap_or_else(|_| DEFAULT_LINES.into());
    let mut variables = match parse_lines(&lines) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ioapic: IOAPIC_LINES: {e}");
            std::process::exit(hostsim::EXIT_INIT_FAILED);
        }
    };
    variables.push((pd::VCPU_CHANNEL, VCPU));
    if let Ok(v) = std::env::var("IOAPIC_VERSION") {
        match parse_u64(&v) {
            Some(v) => variables.push((pd::IOAPIC_VERSION, v)),
            None => {
                eprintln!("ioapic: IOAPIC_VERSION {v:?} is not a number");
                std::process::exit(hostsim::EXIT_INIT_FAILED);
            }
        }
    }
    hostsim::run(|init, _kernel| IoapicPd::init(&WithVariables::new(init, &variables)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_grants_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_lines(DEFAULT_LINES).unwrap(),
            [("lines_1", 0x18), ("lines_2", 0x200)]
        );
        assert_eq!(parse_lines(" 7:12 , ").unwrap(), [("lines_7", 12)]);
        assert!(parse_lines("").unwrap().is_empty());
        for bad in ["1", "62:1", "x:1", "1:zz", "1:1,1:2", "-1:1"] {
            assert!(parse_lines(bad).is_err(), "{bad}");
        }
    }
}
