//! `setjmp`/`longjmp` for libtpms's failure mode: `_plat__RunCommand` sets a
//! jump point and `TpmFail` (deep inside command processing, C frames only)
//! jumps back to it to answer TPM_RC_FAILURE. The PDs have no FPU state, so a
//! jump buffer holds only the callee-saved registers, the stack pointer and the
//! return address (8 of glibc's 25 words).
#![allow(unsafe_code)]

#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".global _setjmp",
    ".global setjmp",
    "_setjmp:",
    "setjmp:",
    "mov [rdi], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    // The caller's stack pointer once this call returns, and where it returns to.
    "lea rdx, [rsp + 8]",
    "mov [rdi + 48], rdx",
    "mov rdx, [rsp]",
    "mov [rdi + 56], rdx",
    "xor eax, eax",
    "ret",
    ".global longjmp",
    "longjmp:",
    // setjmp appears to return `val`, or 1 for 0.
    "mov eax, esi",
    "test eax, eax",
    "jnz 2f",
    "inc eax",
    "2:",
    "mov rbx, [rdi]",
    "mov rbp, [rdi + 8]",
    "mov r12, [rdi + 16]",
    "mov r13, [rdi + 24]",
    "mov r14, [rdi + 32]",
    "mov r15, [rdi + 40]",
    "mov rsp, [rdi + 48]",
    "jmp qword ptr [rdi + 56]",
);
