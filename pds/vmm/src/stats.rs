//! Exit counts by reason, and the first few of the oddities worth a line in the
//! report (MSRs answered with #GP, accesses to guest-physical holes).

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt::Write;

use isolation::{ExitKind, VcpuExit};

/// Distinct oddities remembered for the report.
const REMEMBERED: usize = 16;
/// Distinct MSRs counted for the breakdown (a guest touches a few dozen).
const MSRS_TRACKED: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct ExitStats {
    /// By [`ExitKind`] in [`ExitKind::ALL`] order: a fixed array, so counting
    /// costs the hot path no allocation.
    by_kind: [u64; ExitKind::COUNT],
    /// Exceptions by vector.
    exceptions: [u64; 32],
    /// Exits of no class by code (each is fatal, so this stays tiny).
    others: BTreeMap<u64, u64>,
    pub injected: u64,
    pub msr_gp: u64,
    pub ioapic: u64,
    pub holes: u64,
    pub unsupported: u64,
    pub code_changed: u64,
    pub vmgexits: u64,
    /// Interrupt requests taken from synic-pd's and the ioapic PD's queues.
    pub synic_irqs: u64,
    pub ioapic_irqs: u64,
    /// Changes of COM1's line told to the ioapic PD.
    pub uart_line_changes: u64,
    pub uart_line_refused: u64,
    /// Interrupts of a passed-through device forwarded to the guest's IOAPIC.
    pub forwarded_irqs: u64,
    gp_msrs: BTreeMap<(u32, bool), u64>,
    /// MSR exits by (index, write), the first [`MSRS_TRACKED`] distinct ones.
    msrs: BTreeMap<(u32, bool), u64>,
    /// Port I/O exits by (port, write), likewise.
    ports: BTreeMap<(u32, bool), u64>,
    /// (call code, status) of hypercalls that failed.
    failed_calls: BTreeMap<(u16, u16), u64>,
    hole_pages: BTreeMap<u64, u64>,
}

impl ExitStats {
    pub fn count(&mut self, exit: &VcpuExit) {
        let kind = exit.kind();
        if let Some(n) = self.by_kind.get_mut(kind as usize) {
            *n += 1;
        }
        match *exit {
            VcpuExit::Exception { vector, .. } => {
                if let Some(n) = self.exceptions.get_mut(usize::from(vector)) {
                    *n += 1;
                }
            }
            VcpuExit::Other { code } => *self.others.entry(code).or_default() += 1,
            _ => {}
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.iter().sum()
    }

    pub fn of(&self, kind: ExitKind) -> u64 {
        self.by_kind.get(kind as usize).copied().unwrap_or(0)
    }

    /// One MSR exit, for [`Self::msr_breakdown`].
    pub fn note_msr(&mut self, msr: u32, write: bool) {
        tally(&mut self.msrs, msr, write);
    }

    /// One port I/O exit, for [`Self::port_breakdown`].
    pub fn note_port(&mut self, port: u16, write: bool) {
        tally(&mut self.ports, u32::from(port), write);
    }

    /// `msr exits by index: w0x80b 900, r0x40000020 300, ...`: the busiest first,
    /// the `top` of them.
    pub fn msr_breakdown(&self, top: usize) -> String {
        breakdown("msr exits by index:", &self.msrs, top)
    }

    /// `io exits by port: r0x40 500, w0x43 250, ...`, as [`Self::msr_breakdown`].
    pub fn port_breakdown(&self, top: usize) -> String {
        breakdown("io exits by port:", &self.ports, top)
    }

    pub fn note_msr_gp(&mut self, msr: u32, write: bool) {
        let n = self.gp_msrs.len();
        if let Some(c) = self.gp_msrs.get_mut(&(msr, write)) {
            *c += 1;
        } else if n < REMEMBERED {
            self.gp_msrs.insert((msr, write), 1);
        }
    }

    /// A hypercall's control word and the result word it got.
    pub fn note_hypercall(&mut self, control: u64, result: u64) {
        let status = result as u16;
        if status == 0 {
            return;
        }
        let n = self.failed_calls.len();
        let key = (control as u16, status);
        if let Some(c) = self.failed_calls.get_mut(&key) {
            *c += 1;
        } else if n < REMEMBERED {
            self.failed_calls.insert(key, 1);
        }
    }

    pub fn note_hole(&mut self, gpa: u64) {
        self.holes += 1;
        let page = gpa & !0xfff;
        let n = self.hole_pages.len();
        if let Some(c) = self.hole_pages.get_mut(&page) {
            *c += 1;
        } else if n < REMEMBERED {
            self.hole_pages.insert(page, 1);
        }
    }

    /// One line: `exits N: cpuid a, msr b, ...`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "exits {}:", self.total());
        let mut sep = " ";
        let mut item = |s: &mut String, what: core::fmt::Arguments<'_>, n: u64| {
            let _ = write!(s, "{sep}{what} {n}");
            sep = ", ";
        };
        for (kind, &n) in ExitKind::ALL.iter().zip(&self.by_kind) {
            match kind {
                ExitKind::Exception => {
                    for (vector, &n) in self.exceptions.iter().enumerate() {
                        if n != 0 {
                            item(&mut s, format_args!("exception(#{vector})"), n);
                        }
                    }
                }
                ExitKind::Other => {
                    for (code, &n) in &self.others {
                        item(&mut s, format_args!("other({code:#x})"), n);
                    }
                }
                _ if n != 0 => item(&mut s, format_args!("{}", kind.name()), n),
                _ => {}
            }
        }
        let _ = write!(
            s,
            "; injected {} (synic {}, ioapic {}), COM1 line changes {} ({} refused), \
             forwarded irqs {}",
            self.injected,
            self.synic_irqs,
            self.ioapic_irqs,
            self.uart_line_changes,
            self.uart_line_refused,
            self.forwarded_irqs
        );
        s
    }

    /// The MSRs answered with #GP and the holes touched, for diagnosis.
    pub fn oddities(&self) -> String {
        let mut s = String::new();
        if !self.gp_msrs.is_empty() {
            let _ = write!(s, "msr #GP:");
            for (&(msr, write), n) in &self.gp_msrs {
                let _ = write!(s, " {}{msr:#x}x{n}", if write { "w" } else { "r" });
            }
        }
        if !self.failed_calls.is_empty() {
            let _ = write!(
                s,
                "{}hypercalls failed:",
                if s.is_empty() { "" } else { "; " }
            );
            for ((code, status), n) in &self.failed_calls {
                let _ = write!(s, " {code:#x}->{status:#x}x{n}");
            }
        }
        if !self.hole_pages.is_empty() {
            let _ = write!(s, "{}holes:", if s.is_empty() { "" } else { "; " });
            for (page, n) in &self.hole_pages {
                let _ = write!(s, " {page:#x}x{n}");
            }
        }
        s
    }
}

/// Counts one more (key, write), once [`MSRS_TRACKED`] distinct ones are known only
/// those.
fn tally(map: &mut BTreeMap<(u32, bool), u64>, key: u32, write: bool) {
    let n = map.len();
    if let Some(c) = map.get_mut(&(key, write)) {
        *c += 1;
    } else if n < MSRS_TRACKED {
        map.insert((key, write), 1);
    }
}

/// `title r0x.. n, w0x.. m, ...`: the `top` busiest first.
fn breakdown(title: &str, map: &BTreeMap<(u32, bool), u64>, top: usize) -> String {
    let mut by_count: alloc::vec::Vec<_> = map.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut s = String::from(title);
    for (k, (&(key, write), n)) in by_count.into_iter().take(top).enumerate() {
        let sep = if k == 0 { " " } else { ", " };
        let _ = write!(s, "{sep}{}{key:#x} {n}", if write { "w" } else { "r" });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_each_reason() {
        let mut s = ExitStats::default();
        let cpuid = VcpuExit::Cpuid {
            leaf: 0,
            subleaf: 0,
        };
        let pf = VcpuExit::Exception {
            vector: 14,
            error_code: Some(2),
        };
        for e in [
            cpuid,
            VcpuExit::Halt,
            cpuid,
            pf,
            VcpuExit::Other { code: 0x99 },
        ] {
            s.count(&e);
        }
        assert_eq!(s.total(), 5);
        assert_eq!(s.of(ExitKind::Cpuid), 2);
        assert_eq!(
            s.summary(),
            "exits 5: cpuid 2, hlt 1, exception(#14) 1, other(0x99) 1; injected 0 \
             (synic 0, ioapic 0), COM1 line changes 0 (0 refused), forwarded irqs 0"
        );
    }

    #[test]
    fn msr_breakdown_puts_the_busiest_first() {
        let mut s = ExitStats::default();
        for (msr, write, n) in [(0x10, false, 1), (0x80b, true, 5), (0x6e0, true, 3)] {
            for _ in 0..n {
                s.note_msr(msr, write);
            }
        }
        assert_eq!(s.msr_breakdown(2), "msr exits by index: w0x80b 5, w0x6e0 3");
        for i in 0..1000 {
            s.note_msr(i, false);
        }
        assert_eq!(s.msrs.len(), MSRS_TRACKED);
        s.note_port(0x2f8, true);
        s.note_port(0x40, false);
        s.note_port(0x40, false);
        assert_eq!(s.port_breakdown(5), "io exits by port: r0x40 2, w0x2f8 1");
    }

    #[test]
    fn oddities_are_bounded() {
        let mut s = ExitStats::default();
        for i in 0..100 {
            s.note_msr_gp(i, false);
            s.note_hole(u64::from(i) << 12);
        }
        assert_eq!(s.gp_msrs.len(), REMEMBERED);
        assert_eq!(s.hole_pages.len(), REMEMBERED);
        assert_eq!(s.holes, 100);
    }
}
