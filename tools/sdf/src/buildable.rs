//! What `paravisor build` cannot turn into an image although Microkit accepts it:
//! `check` passes such a file, `build` stops here with the reason and the position.
//! Keeping the list in one place makes "accepted but not built" an explicit decision
//! per construct rather than something `compile` silently ignores.

use crate::diag::{Diagnostic, Diagnostics, ErrorKind};
use crate::model::*;

const SETVAR_REASON: &str =
    "build patches setvar_vaddr, <vcpu setvar_id> and <setvar region_paddr> only";

/// Every construct in `system` that build refuses, in source order.
pub fn build_refusals(system: &System) -> Result<(), Diagnostics> {
    let mut out = Refusals {
        file: system,
        diags: Diagnostics::default(),
    };
    for mr in &system.memory_regions {
        match &mr.prefill {
            Some(Prefill::Path(_)) => out.refuse(
                mr.span,
                "prefill_path",
                "regions are filled from --region-data, not from prefill files",
            ),
            Some(Prefill::BootInfo(kind)) => out.refuse(
                mr.span,
                &format!("prefill_bootinfo=\"{kind}\""),
                "the kernel hands PDs no boot-info blobs",
            ),
            None => {}
        }
    }
    for space in &system.io_address_spaces {
        out.refuse(
            space.span,
            "<io_address_space>",
            "the kernel has no IOMMU support",
        );
    }
    if let Some(domains) = &system.domains {
        out.refuse(
            domains.span,
            "<domains>",
            "the kernel has no domain scheduler",
        );
    }
    for ch in &system.channels {
        for end in ch.ends.iter().filter(|e| e.setvar_id.is_some()) {
            out.refuse(end.span, "setvar_id on <end>", SETVAR_REASON);
        }
    }
    for pd in system.all_pds() {
        out.pd(pd);
    }
    out.diags.sort();
    if out.diags.is_empty() {
        Ok(())
    } else {
        Err(out.diags)
    }
}

struct Refusals<'a> {
    file: &'a System,
    diags: Diagnostics,
}

impl Refusals<'_> {
    fn refuse(&mut self, span: Span, construct: &str, reason: &str) {
        let kind = ErrorKind::NotBuildable {
            construct: construct.into(),
            reason: reason.into(),
        };
        self.diags
            .push(Diagnostic::new(&self.file.file, span, kind));
    }

    fn pd(&mut self, pd: &ProtectionDomain) {
        if pd.smc {
            self.refuse(pd.span, "smc=\"true\"", "SMC forwarding is ARM-only");
        }
        if pd.domain.is_some() {
            self.refuse(pd.span, "domain=", "the kernel has no domain scheduler");
        }
        if pd.setvar_id.is_some() {
            self.refuse(
                pd.span,
                "setvar_id on a child <protection_domain>",
                SETVAR_REASON,
            );
        }
        if let Some(span) = pd.cspace {
            self.refuse(
                span,
                "<cspace>",
                "the kernel gives PDs no TCB, SC or VSpace capabilities of other PDs",
            );
        }
        for port in &pd.ioports {
            self.refuse(
                port.span,
                "<ioport>",
                "the kernel grants no I/O port capabilities",
            );
        }
        for map in &pd.maps {
            if map.setvar_size.is_some() {
                self.refuse(map.span, "setvar_size", SETVAR_REASON);
            }
            if map.setvar_prefill_size.is_some() {
                self.refuse(map.span, "setvar_prefill_size", SETVAR_REASON);
            }
        }
        for irq in &pd.irqs {
            if irq.setvar_id.is_some() {
                self.refuse(irq.span, "setvar_id on <irq>", SETVAR_REASON);
            }
            match irq.source {
                IrqSource::Line => {}
                IrqSource::Ioapic { .. } => self.refuse(
                    irq.span,
                    "<irq pin=> (IOAPIC)",
                    "the kernel delivers interrupts by line number (irq=) only",
                ),
                IrqSource::Msi { .. } => self.refuse(
                    irq.span,
                    "<irq pcidev=> (MSI)",
                    "the kernel delivers interrupts by line number (irq=) only",
                ),
            }
        }
    }
}
