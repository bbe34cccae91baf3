//! Every way into the kernel: exceptions, interrupts and `syscall` all save the
//! interrupted state as one [`Frame`] and call [`crate::trap_entry`], which returns
//! the frame to resume (possibly another PD's). From ring 3 the frame is written
//! straight into the running PD's save area (TSS.rsp0 / SYSCALL_FRAME_TOP point at
//! its end), and the kernel then runs on its own stack; it never runs with
//! interrupts enabled except in the idle loop.
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};
use core::ptr::addr_of;

use kernel_core::Ret;

use crate::cpu::TablePointer;
use crate::gdt::{KERNEL_CS, USER_CS, USER_DS};

/// The saved state of an interrupted context, in push order (lowest address first).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// The CPU aligns its pushes to 16 bytes; the frame must end on that boundary.
const _: () = assert!(core::mem::size_of::<Frame>() == 176);

/// `vector` of a frame saved by `syscall`.
pub const SYSCALL_VECTOR: u64 = 0x100;

impl Frame {
    pub fn is_from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// The registers a system call's result comes back in.
    pub fn ret(&self) -> Ret {
        Ret::new(self.rax, self.rdi, self.rsi, self.rdx)
    }

    #[inline(always)]
    pub fn set_ret(&mut self, ret: Ret) {
        (self.rax, self.rdi, self.rsi, self.rdx) = (ret.rax, ret.rdi, ret.rsi, ret.rdx);
    }

    /// A fresh ring-3 context starting at `rip` with interrupts enabled.
    pub fn user(rip: u64, rsp: u64, arg0: u64, arg1: u64) -> Self {
        Self {
            rip,
            rsp,
            rdi: arg0,
            rsi: arg1,
            cs: u64::from(USER_CS),
            ss: u64::from(USER_DS),
            rflags: 0x202,
            ..Self::default()
        }
    }
}

/// Top of the kernel stack the trap paths switch to when they come from ring 3.
#[no_mangle]
static mut KERNEL_STACK_TOP: u64 = 0;
/// End of the running PD's frame: where `syscall_entry` saves its state, and where
/// `trap_common` moves a ring-3 frame the CPU pushed on an IST stack. Always equal
/// to TSS.rsp0 (see [`set_user_frame`]).
#[no_mangle]
static mut SYSCALL_FRAME_TOP: u64 = 0;
#[no_mangle]
static mut SYSCALL_USER_RSP: u64 = 0;

global_asm!(
    r#"
    .section .text.trap, "ax"
    /* The general registers in the order of the frame's fields (r15 at the
       lowest address); every kernel entry saves them this way. */
    .macro push_gprs
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    .endm

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,255
trap_stub_\v:
    .if (\v == 8) || (\v == 10) || (\v == 11) || (\v == 12) || (\v == 13) || (\v == 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
    .else
    push 0
    .endif
    push \v
    jmp trap_common
    .endr

trap_common:
    push_gprs
    mov rdi, rsp
    test byte ptr [rsp + 144], 3
    jz 1f
    /* From ring 3 the frame belongs in the running PD's save area, because that is
       what the kernel resumes the PD from. The CPU put it there (TSS.rsp0) for every
       vector but the IST ones (NMI, double fault): those switch to the IST stack
       even from ring 3, and resuming from the save area would then restart the PD
       from the state of its previous kernel entry. So copy an IST frame over. */
    cld
    mov rdi, [rip + SYSCALL_FRAME_TOP]
    sub rdi, {frame_size}
    cmp rdi, rsp
    je 2f
    mov rsi, rsp
    mov ecx, {frame_words}
    rep movsq
    sub rdi, {frame_size}
2:
    mov rsp, [rip + KERNEL_STACK_TOP]
1:
    cld
    call trap_entry
    jmp resume_frame

    .global syscall_entry
syscall_entry:
    mov [rip + SYSCALL_USER_RSP], rsp
    mov rsp, [rip + SYSCALL_FRAME_TOP]
    push {user_ds}
    push [rip + SYSCALL_USER_RSP]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {syscall_vector}
    push_gprs
    /* The fast path takes the arguments as they came (rdi, rsi, rdx; r10 -> rcx,
       the number -> r8, the frame -> r9). rbx (saved above) keeps the frame
       across the call for the general path. DF and AC are already clear (FMASK). */
    mov rcx, r10
    mov r8, rax
    mov r9, rsp
    mov rbx, rsp
    mov rsp, [rip + KERNEL_STACK_TOP]
    call syscall_fast
    test rax, rax
    jnz resume_frame
    mov rdi, rbx
    call trap_entry
    jmp resume_frame

    .global enter_user
enter_user:
    mov rax, rdi
resume_frame:
    mov rsp, rax
    /* Null data selectors: a PD must not see the selector values another PD loaded. */
    xor eax, eax
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    .section .rodata.trap, "a"
    .balign 8
    .global TRAP_STUBS
TRAP_STUBS:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,255
    .quad trap_stub_\v
    .endr
"#,
    user_ds = const USER_DS as u64,
    user_cs = const USER_CS as u64,
    syscall_vector = const SYSCALL_VECTOR,
    frame_size = const core::mem::size_of::<Frame>(),
    frame_words = const core::mem::size_of::<Frame>() / 8,
);

extern "C" {
    static TRAP_STUBS: [u64; 50];
    static kernel_stack_top: u8;
    fn syscall_entry();
    fn enter_user(frame: *mut Frame) -> !;
}

static mut IDT: [[u64; 2]; 256] = [[0; 2]; 256];

fn gate(handler: u64, ist: u64) -> [u64; 2] {
    let low = (handler & 0xFFFF)
        | (u64::from(KERNEL_CS) << 16)
        | (ist << 32)
        | (0x8E << 40) // present, DPL 0, 64-bit interrupt gate (clears IF)
        | (((handler >> 16) & 0xFFFF) << 48);
    [low, handler >> 32]
}

pub fn init() {
    // SAFETY: single CPU, interrupts off; the IDT and stacks are ours alone.
    unsafe {
        KERNEL_STACK_TOP = addr_of!(kernel_stack_top) as u64;
        let stubs = &*addr_of!(TRAP_STUBS);
        for (i, &stub) in stubs.iter().enumerate() {
            let vector = if i == 49 { 255 } else { i };
            // Double fault (8) and NMI (2) get the IST stack.
            let ist = if vector == 8 || vector == 2 { 1 } else { 0 };
            IDT[vector] = gate(stub, ist);
        }
        let ptr = TablePointer::to(addr_of!(IDT));
        asm!("lidt [{}]", in(reg) &ptr, options(nostack));

        // syscall: CS/SS from STAR, entry at LSTAR, flags masked by FMASK.
        // STAR[63:48] = 0x10: sysret would load SS 0x18|3 and CS 0x20|3 (we leave by iretq).
        crate::cpu::wrmsr(0xC000_0081, (0x10 << 48) | (u64::from(KERNEL_CS) << 32));
        crate::cpu::wrmsr(0xC000_0082, syscall_entry as *const () as u64);
        // IF, TF, DF, NT and AC cleared on entry (NT so the kernel's iretq never faults).
        crate::cpu::wrmsr(0xC000_0084, 0x4_4700);
    }
}

/// Where the next trap or syscall from ring 3 saves its state.
pub fn set_user_frame(frame: *mut Frame) {
    let top = frame as u64 + core::mem::size_of::<Frame>() as u64;
    crate::gdt::set_kernel_entry_stack(top);
    // SAFETY: single CPU, interrupts off; read only by syscall_entry.
    unsafe { SYSCALL_FRAME_TOP = top };
}

/// Leaves the kernel into `frame` (a PD's saved state).
pub fn enter(frame: *mut Frame) -> ! {
    // SAFETY: `frame` is a valid saved context (a PD's, built by the loader or saved on
    // its last trap) whose segments and rflags were set by the kernel.
    unsafe { enter_user(frame) }
}
