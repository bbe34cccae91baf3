//! One broken description per fixture in tests/sdf/, each with the exact error it must
//! produce: kind, position and message. Fixtures hold exactly one mistake, so each must
//! yield exactly one error (no cascades).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;

use sdf::{
    parse_and_check, parse_and_check_with, Diagnostic, ErrorKind, MapSpace, Mode, NameKind,
    NumberError, Policy, Span,
};

struct Case {
    fixture: &'static str,
    line: u32,
    col: u32,
    kind: ErrorKind,
    message: &'static str,
}

fn case(
    fixture: &'static str,
    line: u32,
    col: u32,
    kind: ErrorKind,
    message: &'static str,
) -> Case {
    Case {
        fixture,
        line,
        col,
        kind,
        message,
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn at(line: u32, col: u32) -> Span {
    Span { line, col }
}

#[rustfmt::skip]
fn table() -> Vec<Case> {
    vec![
    case("budget_over_default_period", 2, 29, ErrorKind::BudgetExceedsPeriod { budget: 1000, period: 500 },
         "budget (1000 us) is larger than period (500 us)"),
    case("budget_over_period", 2, 29, ErrorKind::BudgetExceedsPeriod { budget: 2000, period: 1000 },
         "budget (2000 us) is larger than period (1000 us)"),
    case("channel_id_62", 4, 22, ErrorKind::OutOfRange { attribute: s("id"), value: 62, min: 0, max: 61 },
         "id=62 is out of range 0..=61"),
    case("channel_one_end", 3, 1, ErrorKind::WrongEndCount { count: 1 },
         "a channel needs exactly two <end> elements, found 1"),
    case("channel_three_ends", 4, 1, ErrorKind::WrongEndCount { count: 3 },
         "a channel needs exactly two <end> elements, found 3"),
    case("channel_to_self", 3, 35, ErrorKind::SelfChannel { pd: s("a") },
         "channel connects protection domain 'a' to itself"),
    case("child_element_in_leaf", 2, 39, ErrorKind::MisplacedElement { element: s("map"), parent: s("memory_region") },
         "<map> is not allowed in <memory_region>"),
    case("child_id_62", 3, 31, ErrorKind::OutOfRange { attribute: s("id"), value: 62, min: 0, max: 61 },
         "id=62 is out of range 0..=61"),
    case("child_without_id", 3, 3, ErrorKind::MissingAttribute { attribute: s("id"), element: s("protection_domain") },
         "<protection_domain> is missing the required attribute 'id'"),
    case("cpu_256", 2, 29, ErrorKind::OutOfRange { attribute: s("cpu"), value: 256, min: 0, max: 255 },
         "cpu=256 is out of range 0..=255"),
    case("dtd_is_refused", 1, 1, ErrorKind::MalformedXml { message: s("XML with DTD detected") },
         "malformed XML: XML with DTD detected"),
    case("duplicate_child_id", 4, 31, ErrorKind::DuplicateChildId { parent: s("a"), id: 1, first: at(3, 31) },
         "child id 1 is used twice in protection domain 'a' (first at 3:31)"),
    case("duplicate_id_channel_and_irq", 4, 22, ErrorKind::DuplicateId { pd: s("a"), id: 3, first: at(2, 67) },
         "id 3 is used twice in protection domain 'a' (first at 2:67)"),
    case("duplicate_id_two_channels", 7, 42, ErrorKind::DuplicateId { pd: s("c"), id: 0, first: at(6, 42) },
         "id 0 is used twice in protection domain 'c' (first at 6:42)"),
    case("duplicate_irq_number", 3, 59, ErrorKind::DuplicateIrq { irq: 5, first: at(2, 59) },
         "irq 5 is claimed twice (first at 2:59)"),
    case("duplicate_pd_name", 3, 20, ErrorKind::DuplicateName { kind: NameKind::ProtectionDomain, name: s("a"), first: at(2, 20) },
         "duplicate protection domain name 'a' (first defined at 2:20)"),
    case("duplicate_pd_name_in_child", 3, 22, ErrorKind::DuplicateName { kind: NameKind::ProtectionDomain, name: s("a"), first: at(2, 20) },
         "duplicate protection domain name 'a' (first defined at 2:20)"),
    case("duplicate_program_image", 4, 3, ErrorKind::DuplicateProgramImage { pd: s("a"), first: at(3, 3) },
         "protection domain 'a' has a second <program_image> (first at 3:3)"),
    case("duplicate_region_name", 3, 16, ErrorKind::DuplicateName { kind: NameKind::MemoryRegion, name: s("m"), first: at(2, 16) },
         "duplicate memory region name 'm' (first defined at 2:16)"),
    case("duplicate_vcpu_id", 6, 11, ErrorKind::DuplicateVcpuId { vm: s("guest"), id: 0, first: at(5, 11) },
         "vCPU id 0 of virtual machine 'guest' is already used in its VMM (first at 5:11)"),
    case("duplicate_virtual_machine", 5, 3, ErrorKind::DuplicateVirtualMachine { pd: s("vmm"), first: at(4, 3) },
         "protection domain 'vmm' has a second <virtual_machine> (first at 4:3)"),
    case("duplicate_setvar", 7, 32, ErrorKind::DuplicateSetVar { pd: s("a"), symbol: s("buf"), first: at(6, 32) },
         "symbol 'buf' is set twice in protection domain 'a' (first at 6:32)"),
    case("empty_system", 1, 1, ErrorKind::NoProtectionDomains,
         "the system has no protection domains"),
    case("end_unknown_pd", 3, 35, ErrorKind::UnknownName { kind: NameKind::ProtectionDomain, name: s("ghost") },
         "no protection domain named 'ghost'"),
    case("guest_region_executable_by_pd", 5, 36, ErrorKind::GuestRegionExecutableByPd { pd: s("vmm"), mr: s("ram"), vm: s("guest") },
         "protection domain 'vmm' maps 'ram' executable, but virtual machine 'guest' maps it too"),
    case("hex_id_rejected", 4, 22, ErrorKind::InvalidNumber { attribute: s("id"), value: s("0x1"), reason: NumberError::HexNotAllowed },
         "id=\"0x1\" is not a valid number: this attribute takes a decimal number"),
    case("id_attribute_only_on_child_pd", 2, 29, ErrorKind::UnknownAttribute { attribute: s("id"), element: s("protection_domain") },
         "unknown attribute 'id' on <protection_domain>"),
    case("invalid_bool", 3, 81, ErrorKind::InvalidBool { attribute: s("cached"), value: s("yes") },
         "cached=\"yes\" must be \"true\" or \"false\""),
    case("invalid_pd_name", 2, 20, ErrorKind::InvalidName { attribute: s("name"), value: s("my pd") },
         "name=\"my pd\" is not a valid name"),
    case("invalid_trigger", 2, 74, ErrorKind::InvalidTrigger { value: s("rising") },
         "trigger=\"rising\" must be \"level\" or \"edge\""),
    case("irq_id_62", 2, 67, ErrorKind::OutOfRange { attribute: s("id"), value: 62, min: 0, max: 61 },
         "id=62 is out of range 0..=61"),
    case("malformed_xml_unclosed_tag", 3, 1, ErrorKind::MalformedXml { message: s("expected 'protection_domain' tag, not 'system'") },
         "malformed XML: expected 'protection_domain' tag, not 'system'"),
    case("malformed_xml_unescaped_lt_in_attribute", 2, 27, ErrorKind::MalformedXml { message: s("expected '\"' not '<'") },
         "malformed XML: expected '\"' not '<'"),
    case("map_unknown_region", 3, 59, ErrorKind::UnknownName { kind: NameKind::MemoryRegion, name: s("n") },
         "no memory region named 'n'"),
    case("misplaced_end_in_pd", 4, 3, ErrorKind::MisplacedElement { element: s("end"), parent: s("protection_domain") },
         "<end> is not allowed in <protection_domain>"),
    case("missing_program_image", 2, 1, ErrorKind::MissingProgramImage { pd: s("a") },
         "protection domain 'a' has no <program_image>"),
    case("missing_program_image_path", 2, 29, ErrorKind::MissingAttribute { attribute: s("path"), element: s("program_image") },
         "<program_image> is missing the required attribute 'path'"),
    case("missing_required_attribute", 2, 1, ErrorKind::MissingAttribute { attribute: s("name"), element: s("memory_region") },
         "<memory_region> is missing the required attribute 'name'"),
    case("negative_id_rejected", 2, 67, ErrorKind::InvalidNumber { attribute: s("id"), value: s("-1"), reason: NumberError::InvalidDigit },
         "id=\"-1\" is not a valid number: it contains a character that is not a digit"),
    case("overlapping_maps", 7, 3, ErrorKind::MapOverlap { space: MapSpace::Pd(s("a")), mr: s("m2"), other: s("m1"), start: 0x11000, end: 0x12000, other_start: 0x10000, other_end: 0x12000, first: at(6, 3) },
         "in protection domain 'a', map of 'm2' [0x11000..0x12000) overlaps map of 'm1' [0x10000..0x12000)"),
    case("perms_invalid_char", 3, 81, ErrorKind::InvalidPerms { value: s("rq") },
         "perms=\"rq\" may only contain 'r', 'w' and 'x'"),
    case("perms_write_only", 3, 81, ErrorKind::PermsWithoutRead { value: s("w") },
         "perms=\"w\" lacks 'r'; mappings must be readable"),
    case("phys_addr_unaligned", 2, 39, ErrorKind::PhysAddrNotAligned { phys_addr: 0xfee00010, page_size: 0x1000 },
         "phys_addr 0xfee00010 is not aligned to page_size 0x1000"),
    case("phys_overlap", 3, 40, ErrorKind::PhysOverlap { region: s("m2"), other: s("m1"), first: at(2, 40) },
         "memory region 'm2' overlaps the physical range of 'm1'"),
    case("phys_range_overflow", 2, 39, ErrorKind::PhysRangeOverflow { phys_addr: 0xfffffffffffff000, size: 0x2000 },
         "phys_addr 0xfffffffffffff000 + size 0x2000 overflows the physical address space"),
    case("pp_both_ends", 4, 59, ErrorKind::PpBothEnds,
         "pp=\"true\" is set on both ends; protected calls go one way only"),
    case("pp_to_equal_priority", 4, 49, ErrorKind::PpNotToHigherPriority { from: s("b"), from_priority: 7, to: s("a"), to_priority: 7 },
         "protected call from 'b' (priority 7) to 'a' (priority 7) does not go to a strictly higher priority"),
    case("pp_to_lower_priority", 4, 29, ErrorKind::PpNotToHigherPriority { from: s("a"), from_priority: 10, to: s("b"), to_priority: 2 },
         "protected call from 'a' (priority 10) to 'b' (priority 2) does not go to a strictly higher priority"),
    case("priority_255", 2, 29, ErrorKind::OutOfRange { attribute: s("priority"), value: 255, min: 0, max: 254 },
         "priority=255 is out of range 0..=254"),
    case("priority_over_u64", 2, 29, ErrorKind::InvalidNumber { attribute: s("priority"), value: s("99999999999999999999999"), reason: NumberError::TooLarge },
         "priority=\"99999999999999999999999\" is not a valid number: it does not fit in 64 bits"),
    case("reserved_monitor_name", 2, 20, ErrorKind::ReservedName { name: s("monitor") },
         "the protection domain name 'monitor' is reserved"),
    case("root_must_be_system", 1, 1, ErrorKind::RootNotSystem { found: s("systm") },
         "the root element is <systm>, expected <system>"),
    case("setvar_clashes_with_setvar_vaddr", 6, 11, ErrorKind::DuplicateSetVar { pd: s("a"), symbol: s("buf"), first: at(5, 31) },
         "symbol 'buf' is set twice in protection domain 'a' (first at 5:31)"),
    case("setvar_id_clashes_with_setvar", 6, 46, ErrorKind::DuplicateSetVar { pd: s("vmm"), symbol: s("vcpu"), first: at(5, 11) },
         "symbol 'vcpu' is set twice in protection domain 'vmm' (first at 5:11)"),
    case("setvar_symbol_not_identifier", 3, 82, ErrorKind::InvalidName { attribute: s("setvar_vaddr"), value: s("1buf") },
         "setvar_vaddr=\"1buf\" is not a valid name"),
    case("setvar_unknown_region", 2, 73, ErrorKind::UnknownName { kind: NameKind::MemoryRegion, name: s("nope") },
         "no memory region named 'nope'"),
    case("size_not_a_number", 2, 25, ErrorKind::InvalidNumber { attribute: s("size"), value: s("4k"), reason: NumberError::InvalidDigit },
         "size=\"4k\" is not a valid number: it contains a character that is not a digit"),
    case("size_not_large_page_multiple", 2, 25, ErrorKind::SizeNotPageMultiple { size: 0x1000, page_size: 0x200000 },
         "size 0x1000 is not a multiple of page_size 0x200000"),
    case("size_not_page_multiple", 2, 25, ErrorKind::SizeNotPageMultiple { size: 0x1800, page_size: 0x1000 },
         "size 0x1800 is not a multiple of page_size 0x1000"),
    case("size_over_u64", 2, 25, ErrorKind::InvalidNumber { attribute: s("size"), value: s("0x1_0000_0000_0000_0000"), reason: NumberError::TooLarge },
         "size=\"0x1_0000_0000_0000_0000\" is not a valid number: it does not fit in 64 bits"),
    case("stack_size_unaligned", 2, 29, ErrorKind::StackSizeNotAligned { stack_size: 0x1800 },
         "stack_size 0x1800 is not a multiple of the page size 0x1000"),
    case("stray_text_in_pd", 2, 54, ErrorKind::UnexpectedText { element: s("protection_domain") },
         "unexpected text in <protection_domain>"),
    case("stray_text_in_system", 3, 4, ErrorKind::UnexpectedText { element: s("system") },
         "unexpected text in <system>"),
    case("unknown_attribute_on_channel", 4, 10, ErrorKind::UnknownAttribute { attribute: s("kind"), element: s("channel") },
         "unknown attribute 'kind' on <channel>"),
    case("unknown_attribute_on_pd", 2, 29, ErrorKind::UnknownAttribute { attribute: s("prio"), element: s("protection_domain") },
         "unknown attribute 'prio' on <protection_domain>"),
    case("unknown_element_in_pd", 4, 3, ErrorKind::UnknownElement { element: s("mapping"), parent: s("protection_domain") },
         "unknown element <mapping> in <protection_domain>"),
    case("unknown_element_in_system", 3, 1, ErrorKind::UnknownElement { element: s("pd"), parent: s("system") },
         "unknown element <pd> in <system>"),
    case("unknown_attribute_on_vcpu", 4, 46, ErrorKind::UnknownAttribute { attribute: s("affinity"), element: s("vcpu") },
         "unknown attribute 'affinity' on <vcpu>"),
    case("unsupported_page_size", 2, 39, ErrorKind::UnsupportedPageSize { page_size: 0x2000 },
         "page_size 0x2000 is not supported on x86_64"),
    case("vaddr_out_of_user_space", 3, 66, ErrorKind::VaddrOutOfRange { vaddr: 0x7ffffffff000, size: 0x2000 },
         "map at vaddr 0x7ffffffff000 of size 0x2000 reaches past the user address space end 0x800000000000"),
    case("vaddr_unaligned", 3, 66, ErrorKind::VaddrNotAligned { vaddr: 0x1234, page_size: 0x1000 },
         "vaddr 0x1234 is not aligned to the region's page_size 0x1000"),
    case("vaddr_unaligned_to_large_page", 3, 66, ErrorKind::VaddrNotAligned { vaddr: 0x1000, page_size: 0x200000 },
         "vaddr 0x1000 is not aligned to the region's page_size 0x200000"),
    case("vcpu_id_62", 4, 39, ErrorKind::OutOfRange { attribute: s("id"), value: 62, min: 0, max: 61 },
         "id=62 is out of range 0..=61"),
    case("vcpu_id_clashes_with_child", 5, 39, ErrorKind::DuplicateVcpuId { vm: s("guest"), id: 3, first: at(4, 35) },
         "vCPU id 3 of virtual machine 'guest' is already used in its VMM (first at 4:35)"),
    case("vcpu_in_pd", 4, 3, ErrorKind::MisplacedElement { element: s("vcpu"), parent: s("protection_domain") },
         "<vcpu> is not allowed in <protection_domain>"),
    case("vm_budget_over_period", 4, 33, ErrorKind::BudgetExceedsPeriod { budget: 2000, period: 1000 },
         "budget (2000 us) is larger than period (1000 us)"),
    case("vm_in_system", 3, 1, ErrorKind::MisplacedElement { element: s("virtual_machine"), parent: s("system") },
         "<virtual_machine> is not allowed in <system>"),
    case("vm_map_gpa_out_of_range", 7, 19, ErrorKind::GpaOutOfRange { gpa: 0xffff_ffff_f000, size: 0x2000 },
         "guest-physical range 0xfffffffff000..+0x2000 reaches past 0x1000000000000"),
    case("vm_map_gpa_unaligned", 7, 19, ErrorKind::VaddrNotAligned { vaddr: 0x1000, page_size: 0x200000 },
         "vaddr 0x1000 is not aligned to the region's page_size 0x200000"),
    case("vm_map_setvar_vaddr", 7, 31, ErrorKind::SetVarVaddrInVm { vm: s("guest") },
         "setvar_vaddr is not allowed on a map of virtual machine 'guest'"),
    case("vm_map_unknown_region", 6, 10, ErrorKind::UnknownName { kind: NameKind::MemoryRegion, name: s("ram") },
         "no memory region named 'ram'"),
    case("vm_maps_overlap", 9, 5, ErrorKind::MapOverlap { space: MapSpace::Vm(s("guest")), mr: s("rom"), other: s("low"), start: 0xf0000, end: 0xf1000, other_start: 0, other_end: 0x100000, first: at(8, 5) },
         "in virtual machine 'guest', map of 'rom' [0xf0000..0xf1000) overlaps map of 'low' [0x0..0x100000)"),
    case("vm_missing_vcpu", 4, 3, ErrorKind::MissingVcpu { vm: s("guest") },
         "virtual machine 'guest' has no <vcpu>"),
    // Microkit accepts a VM named like a PD: since this is a policy finding.
    case("vm_name_clashes_with_pd", 5, 20, ErrorKind::GuestNameClashesWithPd { name: s("vmm"), first: at(2, 20) },
         "virtual machine name 'vmm' is also a protection domain's (at 2:20)"),
    case("vm_priority_255", 4, 33, ErrorKind::OutOfRange { attribute: s("priority"), value: 255, min: 0, max: 254 },
         "priority=255 is out of range 0..=254"),
    case("vm_priority_above_vmm", 4, 33, ErrorKind::VmPriorityAboveVmm { vm: s("guest"), priority: 11, pd: s("vmm"), pd_priority: 10 },
         "virtual machine 'guest' (priority 11) is above its VMM 'vmm' (priority 10)"),
    case("vm_region_overlaps_pd_region", 9, 10, ErrorKind::GuestRegionOverlapsPdRegion { vm: s("guest"), mr: s("ram"), other: s("keys"), first: at(2, 42) },
         "virtual machine 'guest' maps 'ram', whose physical range overlaps 'keys', a region only protection domains map"),
    case("vm_too_many_vcpus", 21, 5, ErrorKind::TooManyVcpus { vm: s("guest"), count: 17 },
         "virtual machine 'guest' has 17 vCPUs, the maximum is 16"),
    case("policy_perms_execute_only", 3, 81, ErrorKind::PermsWithoutRead { value: s("x") },
         "perms=\"x\" lacks 'r'; mappings must be readable"),
    case("ioport_overlap", 5, 16, ErrorKind::IoportOverlap { pd: s("b"), other_pd: s("a"), first: at(3, 16) },
         "I/O ports of 'b' overlap those granted to 'a' (at 3:16)"),
    case("ioport_duplicate_id", 4, 9, ErrorKind::DuplicateValue { element: s("ioport"), attribute: s("id"), value: s("0"), first: at(3, 9) },
         "id=\"0\" on <ioport> is already used (first at 3:9)"),
    case("ioport_zero_size", 3, 29, ErrorKind::OutOfRange { attribute: s("size"), value: 0, min: 1, max: u64::MAX },
         "size=0 is out of range 1..=18446744073709551615"),
    case("domain_without_domains", 2, 29, ErrorKind::DomainWithoutDomains { domain: s("d1") },
         "domain=\"d1\" but the system declares no <domains>"),
    case("domain_missing_on_pd", 3, 1, ErrorKind::MissingAttribute { attribute: s("domain"), element: s("protection_domain") },
         "<protection_domain> is missing the required attribute 'domain'"),
    case("domain_bad_duration", 2, 74, ErrorKind::InvalidValue { attribute: s("duration"), value: s("10 minutes"), expected: s("a non-zero number and a unit, e.g. \"1000 us\" or \"5 ticks\"") },
         "duration=\"10 minutes\" is not a non-zero number and a unit, e.g. \"1000 us\" or \"5 ticks\""),
    case("domain_unknown_in_schedule", 2, 62, ErrorKind::UnknownName { kind: NameKind::Domain, name: s("d2") },
         "no domain named 'd2'"),
    case("prefill_conflict", 2, 46, ErrorKind::PrefillConflict,
         "prefill_path and prefill_bootinfo cannot both be given"),
    case("prefill_bootinfo_unknown", 2, 25, ErrorKind::InvalidValue { attribute: s("prefill_bootinfo"), value: s("x86_smbios"), expected: s("one of x86_vbe, x86_mbmmap, x86_acpi_rsdp, x86_framebuffer, x86_tsc_freq, fdt") },
         "prefill_bootinfo=\"x86_smbios\" is not one of x86_vbe, x86_mbmmap, x86_acpi_rsdp, x86_framebuffer, x86_tsc_freq, fdt"),
    case("region_without_size", 2, 1, ErrorKind::MissingSize,
         "memory region has no size and is not prefilled"),
    case("setvar_prefill_size_without_prefill", 3, 81, ErrorKind::SetVarPrefillWithoutPrefill { mr: s("m") },
         "setvar_prefill_size on a map of 'm', which has no prefill_path"),
    case("setvar_size_clashes_with_setvar_vaddr", 3, 98, ErrorKind::DuplicateSetVar { pd: s("a"), symbol: s("v"), first: at(3, 81) },
         "symbol 'v' is set twice in protection domain 'a' (first at 3:81)"),
    case("cap_slot_0", 3, 18, ErrorKind::OutOfRange { attribute: s("slot"), value: 0, min: 1, max: 127 },
         "slot=0 is out of range 1..=127"),
    case("cap_slot_twice", 3, 43, ErrorKind::DuplicateValue { element: s("cap_sc"), attribute: s("slot"), value: s("1"), first: at(3, 18) },
         "slot=\"1\" on <cap_sc> is already used (first at 3:18)"),
    case("cap_unknown_pd", 3, 27, ErrorKind::UnknownName { kind: NameKind::ProtectionDomain, name: s("b") },
         "no protection domain named 'b'"),
    case("duplicate_cspace", 3, 10, ErrorKind::DuplicateElement { element: s("cspace"), first: at(3, 1) },
         "a second <cspace> (first at 3:1)"),
    case("irq_vector_108", 3, 21, ErrorKind::OutOfRange { attribute: s("vector"), value: 108, min: 0, max: 107 },
         "vector=108 is out of range 0..=107"),
    case("irq_pcidev_invalid", 3, 13, ErrorKind::InvalidValue { attribute: s("pcidev"), value: s("0:20.0"), expected: s("a PCI address bus:device.function in hex, e.g. 0:1f.3") },
         "pcidev=\"0:20.0\" is not a PCI address bus:device.function in hex, e.g. 0:1f.3"),
    case("irq_polarity_invalid", 3, 32, ErrorKind::InvalidValue { attribute: s("polarity"), value: s("rising"), expected: s("one of low, high") },
         "polarity=\"rising\" is not one of low, high"),
    case("irq_ioapic_with_msi_attribute", 3, 32, ErrorKind::UnknownAttribute { attribute: s("handle"), element: s("irq") },
         "unknown attribute 'handle' on <irq>"),
    case("iomap_overlap_same_device", 6, 1, ErrorKind::IoMapOverlap { space: s("dev"), mr: s("n"), other: s("m"), first: at(5, 1) },
         "in io address space 'dev', iomap of 'n' overlaps iomap of 'm' (at 5:1)"),
    case("io_space_duplicate_device", 4, 29, ErrorKind::DuplicateValue { element: s("io_address_space"), attribute: s("peripheral_id"), value: s("0:4.0"), first: at(3, 29) },
         "peripheral_id=\"0:4.0\" on <io_address_space> is already used (first at 3:29)"),
    case("iomap_perms_execute", 3, 93, ErrorKind::InvalidValue { attribute: s("perms"), value: s("rx"), expected: s("\"r\", \"w\" or \"rw\" (a device cannot execute)") },
         "perms=\"rx\" is not \"r\", \"w\" or \"rw\" (a device cannot execute)"),
    case("iomap_large_page", 3, 72, ErrorKind::IoMapLargePage { mr: s("m") },
         "iomap of 'm', a region with large pages; the IOMMU maps 4 KiB pages only"),
    case("domain_start_index_past_schedule", 2, 46, ErrorKind::InvalidValue { attribute: s("start_index"), value: s("2"), expected: s("below the number of schedule entries (2, end markers included)") },
         "start_index=\"2\" is not below the number of schedule entries (2, end markers included)"),
    case("iomap_iovaddr_out_of_range", 3, 79, ErrorKind::OutOfRange { attribute: s("iovaddr"), value: 549755813888, min: 0, max: 549755813887 },
         "iovaddr=549755813888 is out of range 0..=549755813887"),
    case("zero_size", 2, 25, ErrorKind::ZeroSize,
         "memory region size is 0"),
    ]
}

fn errors_of(fixture: &str) -> Vec<Diagnostic> {
    let path = Path::new("tests/sdf").join(format!("{fixture}.xml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match parse_and_check(&text, &path) {
        Ok(_) => panic!("{fixture}: accepted"),
        Err(diags) => diags.into_iter().collect(),
    }
}

#[test]
fn every_fixture_yields_exactly_its_error() {
    let mut failures = Vec::new();
    for c in table() {
        let errors = errors_of(c.fixture);
        let rendered: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        let [d] = errors.as_slice() else {
            failures.push(format!(
                "{}: expected 1 error, got {}:\n{}",
                c.fixture,
                errors.len(),
                rendered.join("\n")
            ));
            continue;
        };
        let label = match c.kind.policy() {
            Some(p) => format!("error[policy {p}]"),
            None => "error".to_string(),
        };
        let want_head = format!(
            "tests/sdf/{}.xml:{}:{}: {label}: {}",
            c.fixture, c.line, c.col, c.message
        );
        let text = d.to_string();
        let (head, hint) = text.split_once('\n').unwrap_or((&text, ""));
        if d.kind != c.kind || d.span != at(c.line, c.col) || head != want_head {
            failures.push(format!(
                "{}:\n  want {want_head}\n       {:?}\n  got  {head}\n       {:?}",
                c.fixture, c.kind, d.kind
            ));
        }
        if !hint.starts_with("  hint: ") || hint.len() < 12 || hint.contains('\n') {
            failures.push(format!("{}: bad hint line {hint:?}", c.fixture));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--microkit` turns exactly the policy errors into warnings: a fixture whose one
/// error is a policy finding passes with that one warning, every other still fails
/// with the same error.
#[test]
fn microkit_mode_demotes_exactly_the_policy_errors() {
    let mut policies = Vec::new();
    for c in table() {
        let path = Path::new("tests/sdf").join(format!("{}.xml", c.fixture));
        let text = std::fs::read_to_string(&path).unwrap();
        let result = parse_and_check_with(&text, &path, Mode::Microkit);
        match (c.kind.policy(), result) {
            (Some(p), Ok(checked)) => {
                let [w] = checked.warnings.0.as_slice() else {
                    panic!("{}: want one warning, got {}", c.fixture, checked.warnings);
                };
                assert_eq!(w.kind, c.kind, "{}", c.fixture);
                assert!(
                    w.as_warning().contains(&format!("warning[policy {p}]")),
                    "{}",
                    c.fixture
                );
                policies.push(p);
            }
            (None, Err(errors)) => {
                assert_eq!(errors.len(), 1, "{}: {errors}", c.fixture);
                assert_eq!(errors.0[0].kind, c.kind, "{}", c.fixture);
            }
            (p, r) => panic!("{}: policy {p:?} but {r:?}", c.fixture),
        }
    }
    for p in [
        Policy::PlainNames,
        Policy::Identifiers,
        Policy::ReadableMaps,
        Policy::GuestCodeNotExecutable,
        Policy::GuestPriorityWithinVmm,
        Policy::DistinctGuestNames,
        Policy::NoSelfChannels,
        Policy::NonEmptyRegions,
    ] {
        assert!(policies.contains(&p), "no fixture for policy {p}");
    }
}

#[test]
fn every_fixture_is_in_the_table() {
    let table: Vec<&str> = table().iter().map(|c| c.fixture).collect();
    assert!(table.len() >= 25);
    for entry in std::fs::read_dir("tests/sdf").unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            table.contains(&stem.as_str()),
            "fixture {} has no table entry",
            path.display()
        );
    }
}

fn pd(name: &str) -> String {
    format!(r#"<protection_domain name="{name}"><program_image path="x"/></protection_domain>"#)
}

#[test]
fn sixty_four_pds_are_too_many() {
    let mut text = String::from("<system>\n");
    for i in 0..64 {
        text.push_str(&pd(&format!("pd{i}")));
        text.push('\n');
    }
    text.push_str("</system>\n");
    let errors = parse_and_check(&text, Path::new("t.xml")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    let d = &errors.0[0];
    assert_eq!(d.kind, ErrorKind::TooManyPds { count: 64 });
    // Reported at the 64th PD.
    assert_eq!(d.span, at(65, 1));
    assert_eq!(
        d.to_string().lines().next().unwrap(),
        "t.xml:65:1: error: too many protection domains: 64, the maximum is 63"
    );
}

#[test]
fn children_count_towards_the_pd_limit() {
    let mut text =
        String::from(r#"<system><protection_domain name="root"><program_image path="x"/>"#);
    for i in 0..63 {
        text.push_str(&format!(r#"<protection_domain name="c{i}" id="{}"><program_image path="x"/></protection_domain>"#, i % 62));
    }
    text.push_str("</protection_domain></system>");
    let errors = parse_and_check(&text, Path::new("t.xml")).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|d| d.kind == ErrorKind::TooManyPds { count: 64 }),
        "{errors}"
    );
}

#[test]
fn independent_errors_are_all_reported_in_source_order() {
    let text = r#"<system>
<memory_region name="m" size="0x1800"/>
<protection_domain name="a" priority="300"><program_image path="a"/></protection_domain>
<protection_domain name="b" priority="3" bogus="1"><program_image path="b"/></protection_domain>
<protection_domain name="c" priority="2"><program_image path="c"/><map mr="m" vaddr="0x1001"/></protection_domain>
<channel><end pd="c" id="0"/><end pd="nobody" id="0"/></channel>
</system>"#;
    let errors = parse_and_check(text, Path::new("t.xml")).unwrap_err();
    let got: Vec<(u32, u32, ErrorKind)> = errors
        .iter()
        .map(|d| (d.span.line, d.span.col, d.kind.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                25,
                ErrorKind::SizeNotPageMultiple {
                    size: 0x1800,
                    page_size: 0x1000
                }
            ),
            (
                3,
                29,
                ErrorKind::OutOfRange {
                    attribute: s("priority"),
                    value: 300,
                    min: 0,
                    max: 254
                }
            ),
            (
                4,
                42,
                ErrorKind::UnknownAttribute {
                    attribute: s("bogus"),
                    element: s("protection_domain")
                }
            ),
            (
                5,
                79,
                ErrorKind::VaddrNotAligned {
                    vaddr: 0x1001,
                    page_size: 0x1000
                }
            ),
            (
                6,
                35,
                ErrorKind::UnknownName {
                    kind: NameKind::ProtectionDomain,
                    name: s("nobody")
                }
            ),
        ]
    );
}

#[test]
fn references_to_broken_elements_do_not_cascade() {
    // PD 'b' and region 'm' are broken; the channel and the map that name them add nothing.
    let text = r#"<system>
<memory_region name="m" size="lots"/>
<protection_domain name="a"><program_image path="a"/><map mr="m" vaddr="0x1000"/></protection_domain>
<protection_domain name="b" passive="maybe"><program_image path="b"/></protection_domain>
<channel><end pd="a" id="0"/><end pd="b" id="0"/></channel>
</system>"#;
    let errors = parse_and_check(text, Path::new("t.xml")).unwrap_err();
    let kinds: Vec<ErrorKind> = errors.iter().map(|d| d.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            ErrorKind::InvalidNumber {
                attribute: s("size"),
                value: s("lots"),
                reason: NumberError::InvalidDigit
            },
            ErrorKind::InvalidBool {
                attribute: s("passive"),
                value: s("maybe")
            },
        ]
    );
}

#[test]
fn display_lists_every_error_with_its_hint() {
    let text = "<system>\n<protection_domain name=\"a\" priority=\"x\"><program_image path=\"a\"/></protection_domain>\n<bad/>\n</system>";
    let errors = parse_and_check(text, Path::new("dir/s.xml")).unwrap_err();
    let shown = errors.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 4, "{shown}");
    assert_eq!(lines[0], "dir/s.xml:2:29: error: priority=\"x\" is not a valid number: it contains a character that is not a digit");
    assert!(lines[1].starts_with("  hint: "));
    assert_eq!(
        lines[2],
        "dir/s.xml:3:1: error: unknown element <bad> in <system>"
    );
    assert!(lines[3].starts_with("  hint: "));
    let _: &dyn std::error::Error = &errors;
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "<system>\n<!-- ä --><protection_domain name=\"é\"><program_image path=\"a\"/></protection_domain>\n</system>";
    let errors = parse_and_check(text, Path::new("t.xml")).unwrap_err();
    assert_eq!(
        errors.0[0].kind,
        ErrorKind::InvalidName {
            attribute: s("name"),
            value: s("é")
        }
    );
    assert_eq!(errors.0[0].span, at(2, 30));
}

mod load {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sdf-load-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_file_is_a_diagnostic() {
        let path = Path::new("/nonexistent/system.xml");
        let errors = sdf::load(path).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors.0[0].kind, ErrorKind::Io { .. }));
        assert!(
            errors.to_string().starts_with(
                "/nonexistent/system.xml: error: cannot read the system description: "
            ),
            "{errors}"
        );
    }

    #[test]
    fn directory_is_a_diagnostic() {
        let dir = tmpdir("dir");
        let errors = sdf::load(&dir).unwrap_err();
        assert!(matches!(errors.0[0].kind, ErrorKind::Io { .. }), "{errors}");
    }

    #[test]
    fn invalid_utf8_points_at_the_bad_byte() {
        let dir = tmpdir("utf8");
        let path = dir.join("s.xml");
        std::fs::write(
            &path,
            b"<system>\n  <protection_domain name=\"\xff\"/>\n</system>",
        )
        .unwrap();
        let errors = sdf::load(&path).unwrap_err();
        assert_eq!(errors.0[0].kind, ErrorKind::NotUtf8);
        assert_eq!(errors.0[0].span, at(2, 28));
    }

    #[test]
    fn oversized_file_is_refused_without_reading_it_all() {
        let dir = tmpdir("big");
        let path = dir.join("s.xml");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(sdf::limits::MAX_SYSTEM_FILE_SIZE + 1).unwrap();
        let errors = sdf::load(&path).unwrap_err();
        assert!(
            matches!(&errors.0[0].kind, ErrorKind::Io { message } if message.contains("larger than")),
            "{errors}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn load_reads_and_checks() {
        let dir = tmpdir("ok");
        let path = dir.join("s.xml");
        std::fs::write(&path, r#"<system><protection_domain name="a"><program_image path="a.elf"/></protection_domain></system>"#).unwrap();
        let sys = sdf::load(&path).unwrap();
        assert_eq!(sys.file, path);
        assert_eq!(sys.pd("a").unwrap().program_image.path, Path::new("a.elf"));
    }
}
