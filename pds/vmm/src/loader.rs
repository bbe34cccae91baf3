//! Putting the guest in place: parse the payload the image builder filled in,
//! build the ACPI tables, lay out kernel, initrd, boot_params, page tables and GDT
//! in guest RAM, and produce the vCPU's first state words.

use alloc::string::String;

use kernel_abi::vcpu::{segment, segment_word, Word};

use crate::acpi::{AcpiError, AcpiTables};
use crate::boot::{
    self, layout::ACPI_WINDOW_START, BootError, BzImage, GuestPayload, PayloadError, PlanInput,
    Segment,
};
use crate::cpuid::Presentation;
use crate::devices::tpm_crb::TpmDevice;
use crate::state::VcpuState;

/// Guest RAM as the VMM has it mapped, for writing.
pub trait GuestRamWrite {
    /// Bytes of RAM at GPA 0.
    fn size(&self) -> u64;
    fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), OutsideRam>;
}

/// Guest RAM, read (as the decoder does) and written.
pub trait GuestRam: crate::decode::GuestMemory + GuestRamWrite {}
impl<T: crate::decode::GuestMemory + GuestRamWrite + ?Sized> GuestRam for T {}

/// A write that does not fit in guest RAM.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OutsideRam {
    pub gpa: u64,
    pub len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("guest payload: {0}")]
    Payload(PayloadError),
    #[error("guest kernel: {0}")]
    Kernel(BootError),
    #[error("ACPI tables: {0}")]
    Acpi(AcpiError),
    #[error("{:#x} bytes at GPA {:#x} do not fit in guest RAM", .0.len, .0.gpa)]
    Ram(OutsideRam),
}

/// The guest, ready to run.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub presentation: Presentation,
    /// Every word the first entry needs, marked dirty.
    pub state: VcpuState,
    /// One line for the console: what was loaded where.
    pub summary: String,
}

/// Loads the payload into RAM for a VM of `vcpus` vCPUs.
pub fn load(payload: &[u8], ram: &dyn GuestRamWrite, vcpus: u32) -> Result<Loaded, LoadError> {
    load_with(payload, ram, vcpus, None)
}

/// The same, for a VM that has a vTPM (described in its ACPI tables).
pub fn load_with(
    payload: &[u8],
    ram: &dyn GuestRamWrite,
    vcpus: u32,
    tpm: Option<&TpmDevice>,
) -> Result<Loaded, LoadError> {
    let guest = GuestPayload::parse(payload).map_err(LoadError::Payload)?;
    let bz = BzImage::parse(guest.kernel).map_err(LoadError::Kernel)?;
    let acpi = AcpiTables::build_for(ACPI_WINDOW_START, vcpus, tpm).map_err(LoadError::Acpi)?;
    let input = PlanInput {
        ram_size: ram.size(),
        initrd_len: guest.initrd.len() as u64,
        cmdline: guest.cmdline,
        acpi: Some(acpi.blob()),
    };
    let plan = boot::plan(&bz, &input).map_err(LoadError::Kernel)?;
    for write in &plan.writes {
        let data = write
            .data(bz.kernel(), guest.initrd)
            .ok_or(LoadError::Ram(OutsideRam {
                gpa: write.gpa,
                len: write.len,
            }))?;
        ram.write_gpa(write.gpa, data).map_err(LoadError::Ram)?;
    }
    let presentation = if guest.flags.confidential_vmbus() {
        Presentation::Confidential
    } else {
        Presentation::Plain
    };
    let summary = alloc::format!(
        "kernel {} KiB at {:#x}, initrd {} KiB at {:#x}, {} MiB RAM, VMBus {}, cmdline \"{}\"",
        bz.kernel().len() >> 10,
        plan.kernel_gpa,
        guest.initrd.len() >> 10,
        plan.initrd_gpa,
        ram.size() >> 20,
        match presentation {
            Presentation::Confidential => "confidential",
            Presentation::Plain => "plain",
        },
        String::from_utf8_lossy(guest.cmdline),
    );
    Ok(Loaded {
        presentation,
        state: first_state(&plan.vcpu),
        summary,
    })
}

/// The state words of the boot protocol's 64-bit entry.
pub fn first_state(cpu: &boot::VcpuState) -> VcpuState {
    let mut st = VcpuState::new();
    st.set(Word::RIP, cpu.rip);
    st.set(Word::RSI, cpu.rsi);
    st.set(Word::RSP, cpu.rsp);
    st.set(Word::RFLAGS, cpu.rflags);
    st.set(Word::CR0, cpu.cr0);
    st.set(Word::CR3, cpu.cr3);
    st.set(Word::CR4, cpu.cr4);
    st.set(Word::EFER, cpu.efer);
    st.set(Word::PAT, cpu.pat);
    // The architectural reset value (DR7 = 0x400) and XCR0 = x87 only.
    st.set(Word::DR7, 0x400);
    st.set(Word::XCR0, 1);
    for (index, seg) in [
        (segment::ES, cpu.es),
        (segment::CS, cpu.cs),
        (segment::SS, cpu.ss),
        (segment::DS, cpu.ds),
        (segment::FS, cpu.fs),
        (segment::GS, cpu.gs),
        (segment::LDTR, cpu.ldtr),
        (segment::TR, cpu.tr),
    ] {
        set_segment(&mut st, index, seg);
    }
    st.set(Word::GDTR, u64::from(cpu.gdtr.limit));
    st.set(Word::GDTR + 1, cpu.gdtr.base);
    st.set(Word::IDTR, u64::from(cpu.idtr.limit));
    st.set(Word::IDTR + 1, cpu.idtr.base);
    st
}

fn set_segment(st: &mut VcpuState, index: usize, seg: Segment) {
    let at = Word::SEGMENTS + 2 * index;
    st.set(at, segment_word(seg.selector, seg.attrib, seg.limit));
    st.set(at + 1, seg.base);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    struct Ram(RefCell<Vec<u8>>);

    impl GuestRamWrite for Ram {
        fn size(&self) -> u64 {
            self.0.borrow().len() as u64
        }
        fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
            let mut ram = self.0.borrow_mut();
            let start = gpa as usize;
            let dst = ram.get_mut(start..start + bytes.len()).ok_or(OutsideRam {
                gpa,
                len: bytes.len() as u64,
            })?;
            dst.copy_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn a_payload_lands_in_ram_with_a_long_mode_entry() {
        let kernel = boot::testing::SyntheticBzImage::default().build();
        let initrd = vec![0x5a; 5000];
        let payload = GuestPayload {
            flags: boot::PayloadFlags::CONFIDENTIAL_VMBUS,
            kernel: &kernel,
            initrd: &initrd,
            cmdline: b"console=ttyS0",
        }
        .encode(None)
        .unwrap();
        let ram = Ram(RefCell::new(vec![0; 64 << 20]));
        let loaded = load(&payload, &ram, 1).unwrap();
        assert_eq!(loaded.presentation, Presentation::Confidential);
        let st = &loaded.state;
        assert_eq!(st.get(Word::RIP) & 0xfff, 0x200);
        assert_ne!(st.get(Word::EFER) & (1 << 10), 0, "LMA");
        let (sel, attrib, _) =
            kernel_abi::vcpu::segment_parts(st.get(Word::SEGMENTS + 2 * segment::CS));
        assert_eq!(sel, 0x10);
        assert_ne!(attrib & (1 << 9), 0, "CS.L");
        let ram = ram.0.borrow();
        assert_eq!(&ram[0xe0000..0xe0008], b"RSD PTR ");
        assert!(ram.windows(13).any(|w| w == b"console=ttyS0"));
    }

    #[test]
    fn garbage_payloads_are_refused() {
        let ram = Ram(RefCell::new(vec![0; 64 << 20]));
        assert!(matches!(
            load(&[0u8; 100], &ram, 1),
            Err(LoadError::Payload(_))
        ));
    }
}
