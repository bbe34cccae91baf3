//! The description the tests share: every core construct (regions of both page
//! sizes, a fixed physical one, PDs with maps, setvars, irqs, a child, channels with
//! pp and notify, a VMM and its guest), valid as it stands.

pub const FULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment is fine anywhere -->
<system>
    <memory_region name="ring" size="0x4000" />
    <memory_region name="big" size="0x40_0000" page_size="0x200000" />
    <memory_region name="mmio" size="0x1000" phys_addr="0xfec0_0000" />
    <protection_domain name="client" priority="100" budget="200" period="1000" stack_size="0x4000">
        <program_image path="client.elf" />
        <map mr="ring" vaddr="0x2000000" perms="rw" setvar_vaddr="ring_vaddr" />
        <map mr="big" vaddr="0x4000_0000" perms="r" cached="false" />
        <setvar symbol="ring_paddr" region_paddr="ring" />
    </protection_domain>
    <protection_domain name="server" priority="200" passive="true">
        <program_image path="server.elf" />
        <map mr="ring" vaddr="0x3000000" perms="rw" />
        <map mr="mmio" vaddr="0x3004000" perms="rw" cached="false" />
        <irq irq="33" id="5" trigger="edge" />
        <irq irq="34" id="6" />
        <protection_domain name="child" id="0" priority="201">
            <program_image path="child.elf" />
        </protection_domain>
    </protection_domain>
    <channel>
        <end pd="client" id="0" pp="true" notify="true" />
        <end pd="server" id="0" notify="false" />
    </channel>
    <channel>
        <end pd="server" id="1" />
        <end pd="child" id="61" />
    </channel>
    <memory_region name="ram" size="0x400000" page_size="0x200000" />
    <memory_region name="rom" size="0x1000" />
    <protection_domain name="vmm" priority="100">
        <program_image path="vmm.elf" />
        <map mr="ram" vaddr="0x4000_0000" perms="rw" setvar_vaddr="guest_ram" />
        <protection_domain name="helper" id="2" priority="101">
            <program_image path="helper.elf" />
        </protection_domain>
        <virtual_machine name="linux" priority="100" budget="500" period="1000">
            <vcpu id="0" setvar_id="boot_vcpu" />
            <vcpu id="1" cpu="0" />
            <map mr="ram" vaddr="0x0" perms="rwx" />
            <map mr="rom" vaddr="0xffff_f000" perms="rx" cached="false" />
        </virtual_machine>
    </protection_domain>
</system>
"#;
