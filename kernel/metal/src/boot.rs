//! PVH entry: QEMU (or any PVH loader) jumps to `pvh_entry` in 32-bit protected mode
//! with paging off and %ebx pointing at the hvm_start_info. We build just enough page
//! tables to reach the kernel's link address (identity + -2 GiB, first 1 GiB each),
//! enter long mode and call `kmain(start_info_paddr)` on the kernel stack.
//! The kernel replaces these tables with its own in `mem::init`.
// The entry is assembly: unsafe by nature, and nothing else lives here.
#![allow(unsafe_code)]

use core::arch::global_asm;

// XEN_ELFNOTE_PHYS32_ENTRY: the note QEMU's `-kernel` looks for to boot a PVH ELF.
global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4
"#,
    options(att_syntax)
);

global_asm!(
    r#"
    .section .boot.text, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    cld
    movl %ebx, %esi

    /* PML4[0] and PML4[511] -> one PDPT; PDPT[0] and PDPT[510] -> one PD of 2 MiB pages. */
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    movl %eax, boot_pml4 + 511 * 8
    movl $boot_pd, %eax
    orl $3, %eax
    movl %eax, boot_pdpt
    movl %eax, boot_pdpt + 510 * 8
    xorl %ecx, %ecx
1:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, boot_pd(, %ecx, 8)
    incl %ecx
    cmpl $512, %ecx
    jne 1b

    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $(1 << 5), %eax            /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx         /* EFER: LME | NXE | SCE */
    rdmsr
    orl $((1 << 8) | (1 << 11) | 1), %eax
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax   /* PG | WP | PE */
    movl %eax, %cr0
    lgdt boot_gdtr
    ljmp $0x08, $boot_long

    .code64
boot_long:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movl %esi, %edi                /* zero-extends: start_info paddr */
    movabsq $kernel_stack_top, %rsp
    movabsq $kmain, %rax
    callq *%rax
2:
    hlt
    jmp 2b

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF       /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF       /* 0x10: data */
boot_gdtr:
    .word 3 * 8 - 1
    .long boot_gdt

    /* The one kernel stack: kmain starts on it, and every trap from ring 3 reuses it. */
    .section .bss.stack, "aw", @nobits
    .balign 16
    .global kernel_stack_top
kernel_stack: .skip 262144
kernel_stack_top:

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096
"#,
    options(att_syntax)
);
