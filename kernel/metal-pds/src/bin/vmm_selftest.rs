//! The VM boot test (vmtest.xml): a VMM that runs a small 32-bit guest on two
//! vCPUs through `VM_ENTER` and checks every kind of exit the kernel hands over:
//! CPUID, RDMSR/WRMSR, port I/O (plain and string), VMMCALL, HLT with a deadline,
//! MMIO on an unmapped GPA (decoded here), an injected external interrupt handled
//! by the guest's IDT, an interrupt-window exit, SSE/AVX registers that survive the
//! other vCPU and a protected call, a notification while the guest spins, a
//! halted entry woken by a notification, a state VMRUN refuses, and finally a
//! triple fault that stops only the guest. Prints a report and halts the machine
//! with the verdict (0 = pass).
#![no_std]
#![no_main]

use core::arch::global_asm;
use core::ptr::addr_of;

use ipc::{Channel, Init, InitError, IpcError, Kernel, MessageInfo, MessageRegisters, Region};
use kernel_abi::vcpu::{exit, flags, pseudo_exit, segment_word, Word};
use metal_pds::{Check, Never, LABEL_INCREMENT};
use pd_rt::println;
use pd_rt::sys::{debug_halt, rdtsc};
use pd_rt::vcpu::{Vcpu, VmEvent};

/// vmtest.xml: vmm -> pingserver (protected calls), vmm <-> ponger (notifications).
const PING: Channel = Channel::new(0);
const PONG: Channel = Channel::new(1);
/// vmm -> vm_busy: "compute for a while".
const BUSY: Channel = Channel::new(2);

/// Guest-physical layout (guest RAM starts at GPA 0).
const CODE: u64 = 0x1000;
const GDT: u64 = 0x500;
const IDT: u64 = 0x600;
const PATTERNS: u64 = 0x6000;
const FLAGS: u64 = 0x7000;
const STACK0: u64 = 0x8000;
const STACK1: u64 = 0x9000;
/// vCPU 1 runs in long mode on these tables: the first 4 MiB identity-mapped and
/// again at -2 GiB, with 2 MiB pages.
const PML4: u64 = 0x10000;
/// Not mapped into the VM: accesses are MMIO the VMM emulates.
const MMIO: u64 = 0xd000_0000;
const MMIO_READ_VALUE: u64 = 0xcafe_babe;
const TEST_PORT: u64 = 0x510;
const TEST_MSR: u64 = 0x4000_0123;
const CPUID_ROUNDS: u64 = 1000;

// The guest: 32-bit flat protected mode, paging off. Each step ends in an exit
// the VMM checks; VMMCALL marks "check my registers now". Addresses are GPAs.
global_asm!(
    r#"
    .section .rodata.guest, "a"
    .code32
    .global vmt_guest_start
vmt_guest_start:
    mov eax, 0x40000000
    cpuid
    vmmcall

    mov ecx, 0x40000123
    mov eax, 0xdeadbeef
    mov edx, 0x12345678
    wrmsr
    xor eax, eax
    xor edx, edx
    rdmsr
    vmmcall

    mov dx, 0x510
    mov al, 0x5a
    out dx, al
    in al, dx
    mov ebx, eax
    mov esi, 0x7100
    mov byte ptr [esi], 0x77
    outsb
    mov edi, 0x7200
    mov ecx, 4
    rep insb
    mov ecx, dword ptr [0x7200]
    vmmcall

    hlt

    mov eax, dword ptr [0xd0000000]
    mov ebx, 0x600dd00d
    mov dword ptr [0xd0000004], ebx
    vmmcall

    sti
2:  cmp dword ptr [0x7000], 0
    je 2b
    vmmcall

    cli
    vmmcall
    mov ecx, 100
3:  dec ecx
    jnz 3b
    sti
    nop
4:  cmp dword ptr [0x7004], 0
    je 4b
    vmmcall

    mov eax, cr4
    or eax, 0x40600
    mov cr4, eax
    mov eax, cr0
    and eax, 0xfffffffb
    or eax, 2
    mov cr0, eax
    xor ecx, ecx
    mov eax, 6
    xor edx, edx
    xsetbv
    mov eax, 7
    xsetbv
    vmovdqu ymm0, ymmword ptr [0x6000]
    movdqu xmm1, xmmword ptr [0x6020]
    mov eax, 0x1234
    mov dr0, eax
    vmmcall
    mov esi, dr0
    vextractf128 xmm3, ymm0, 1
    vpcmpeqb xmm3, xmm3, xmmword ptr [0x6010]
    vpmovmskb ebx, xmm3
    vpcmpeqb xmm4, xmm0, xmmword ptr [0x6000]
    vpmovmskb ecx, xmm4
    pcmpeqb xmm1, xmmword ptr [0x6020]
    pmovmskb edx, xmm1
    vmmcall

    .global vmt_spin
vmt_spin:
6:  jmp 6b

    mov esi, 1000
5:  xor eax, eax
    cpuid
    dec esi
    jnz 5b
    vmmcall

    lidt [0x7300]
    ud2

    .global vmt_gp
vmt_gp:
    mov dword ptr [0x7008], 13
    add esp, 4
    add dword ptr [esp], 3
    iretd
    .global vmt_irq30
vmt_irq30:
    mov dword ptr [0x7000], 0x30
    iretd
    .global vmt_irq31
vmt_irq31:
    mov dword ptr [0x7004], 0x31
    iretd

    .code64
    .global vmt_vcpu1
vmt_vcpu1:
    vmovdqu ymm0, ymmword ptr [0x6040]
    movdqu xmm1, xmmword ptr [0x6040]
    mov rax, 0x1122334455667788
    mov r15, 0x0123456789abcdef
    mov r8, qword ptr [0xffffffff80006040]
    mov rbx, dr0
    vmmcall
    hlt
    .global vmt_guest_end
vmt_guest_end:
"#
);

extern "C" {
    static vmt_guest_start: u8;
    static vmt_guest_end: u8;
    static vmt_spin: u8;
    static vmt_gp: u8;
    static vmt_irq30: u8;
    static vmt_irq31: u8;
    static vmt_vcpu1: u8;
}

/// pingserver answers a protected call: `n` comes back incremented.
fn ping_increments(k: &mut dyn Kernel, n: u64) -> bool {
    let mut mrs = MessageRegisters::new();
    mrs.set(0, n);
    let reply = PING.pp_call(k, MessageInfo::new(LABEL_INCREMENT, 1), &mut mrs);
    reply.is_ok() && mrs.get(0) == n + 1
}

/// A guest label's GPA (the code is copied to [`CODE`]).
fn gpa_of(label: *const u8) -> u64 {
    CODE + (label as u64 - addr_of!(vmt_guest_start) as u64)
}

struct Vmm<'a> {
    ram: Region<'a>,
    check: Check,
    exits: u64,
}

impl Vmm<'_> {
    fn enter(&mut self, v: &mut Vcpu, fl: u64, deadline: u64) -> VmEvent {
        self.exits += 1;
        match v.enter(fl, deadline) {
            Ok(e) => e,
            Err(e) => {
                println!("vmm_selftest: FAIL VM_ENTER: {e}");
                debug_halt(1)
            }
        }
    }

    /// Enters until an exit that is not `skip`, returning it.
    fn run_to(&mut self, v: &mut Vcpu, want: u64, what: &str) -> bool {
        let ev = self.enter(v, 0, 0);
        let ok = ev == VmEvent::Exit(want);
        if !ok {
            println!(
                "vmm_selftest: {what}: got {ev:?} at rip {:#x} (info1 {:#x} info2 {:#x})",
                v.get(Word::RIP),
                v.get(Word::EXIT_INFO1),
                v.get(Word::EXIT_INFO2)
            );
        }
        self.check.expect(ok, what);
        ok
    }

    fn vmmcall(&mut self, v: &mut Vcpu, what: &str) -> bool {
        let ok = self.run_to(v, exit::VMMCALL, what);
        v.advance_rip(3);
        ok
    }

    fn read_u32(&self, gpa: u64) -> u32 {
        self.ram.read::<u32>(gpa as usize).unwrap_or(0)
    }

    /// Decodes the MMIO instruction at the guest's RIP (paging off: RIP is the
    /// GPA): `mov r32, [disp32]` / `mov [disp32], r32` (8B/89 with mod 00 rm 101)
    /// and the moffs forms A1/A3. Returns (length, register index, is_write).
    fn decode_mmio(&self, rip: u64) -> Option<(u64, usize, bool)> {
        let mut b = [0u8; 2];
        self.ram.read_bytes(rip as usize, &mut b).ok()?;
        match b {
            [0xa1, _] => Some((5, 0, false)),
            [0xa3, _] => Some((5, 0, true)),
            [op @ (0x8b | 0x89), m] if m & 0xc7 == 0x05 => {
                Some((6, usize::from((m >> 3) & 7), op == 0x89))
            }
            _ => None,
        }
    }
}

/// The state words of a flat 32-bit protected-mode vCPU at `rip`.
fn flat32(v: &mut Vcpu, rip: u64, rsp: u64) {
    let code = segment_word(0x08, 0xc9b, 0xffff_ffff);
    let data = segment_word(0x10, 0xc93, 0xffff_ffff);
    for (seg, w) in [
        (0, data),
        (1, code),
        (2, data),
        (3, data),
        (4, data),
        (5, data),
        (6, segment_word(0, 0x82, 0)),
        (7, segment_word(0, 0x8b, 0x67)),
    ] {
        v.set(Word::SEGMENTS + 2 * seg, w);
        v.set(Word::SEGMENTS + 2 * seg + 1, 0);
    }
    v.set(Word::GDTR, 23);
    v.set(Word::GDTR + 1, GDT);
    v.set(Word::IDTR, 0x7ff);
    v.set(Word::IDTR + 1, IDT);
    v.set(Word::CR0, 0x31);
    v.set(Word::CR4, 0);
    v.set(Word::EFER, 0);
    v.set(Word::RFLAGS, 2);
    v.set(Word::RIP, rip);
    v.set(Word::RSP, rsp);
}

fn idt_gate(handler: u64) -> u64 {
    (handler & 0xffff) | (0x08 << 16) | (0x8e00 << 32) | ((handler >> 16) << 48)
}

fn setup_memory(ram: &mut Region<'_>) -> Result<(), ipc::RegionError> {
    let start = addr_of!(vmt_guest_start);
    let len = addr_of!(vmt_guest_end) as usize - start as usize;
    // SAFETY: both symbols delimit the guest code in this program's rodata.
    let code = unsafe { core::slice::from_raw_parts(start, len) };
    ram.write_bytes(CODE as usize, code)?;
    for (i, d) in [0u64, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff]
        .iter()
        .enumerate()
    {
        ram.write::<u64>(GDT as usize + i * 8, d)?;
    }
    ram.write::<u64>((IDT + 13 * 8) as usize, &idt_gate(gpa_of(addr_of!(vmt_gp))))?;
    ram.write::<u64>(
        (IDT + 0x30 * 8) as usize,
        &idt_gate(gpa_of(addr_of!(vmt_irq30))),
    )?;
    ram.write::<u64>(
        (IDT + 0x31 * 8) as usize,
        &idt_gate(gpa_of(addr_of!(vmt_irq31))),
    )?;
    for i in 0..0x30u8 {
        ram.write::<u8>(PATTERNS as usize + usize::from(i), &(0x10 + i))?;
    }
    for i in 0..0x20 {
        ram.write::<u8>(PATTERNS as usize + 0x40 + i, &0xee)?;
    }
    let (pml4, pdpt, pd) = (
        PML4 as usize,
        PML4 as usize + 0x1000,
        PML4 as usize + 0x2000,
    );
    ram.write::<u64>(pml4, &(pdpt as u64 | 3))?;
    ram.write::<u64>(pml4 + 511 * 8, &(pdpt as u64 | 3))?;
    ram.write::<u64>(pdpt, &(pd as u64 | 3))?;
    ram.write::<u64>(pdpt + 510 * 8, &(pd as u64 | 3))?;
    ram.write::<u64>(pd, &0x83)?;
    ram.write::<u64>(pd + 8, &0x20_0083)?;
    Ok(())
}

fn run(init: &dyn Init, k: &mut dyn Kernel) -> Result<(), InitError> {
    let mut ram = init.region("guest_ram")?;
    let busy = init.region("busy_counter")?;
    if setup_memory(&mut ram).is_err() {
        println!("vmm_selftest: FAIL guest RAM too small");
        debug_halt(1)
    }
    let mut vmm = Vmm {
        ram,
        check: Check::new("vmm_selftest"),
        exits: 0,
    };
    let c = &mut vmm;
    let mut v0 = Vcpu::new(0);
    let mut v1 = Vcpu::new(1);

    let mut stranger = Vcpu::new(9);
    c.check.expect(
        stranger.enter(0, 0) == Err(IpcError::NotGranted(Channel::new(9))),
        "a vCPU id the VM does not have is refused (NOT_A_VCPU)",
    );

    // A CR0 with reserved bits: VMRUN refuses it, nothing runs, the kernel lives.
    flat32(&mut v0, CODE, STACK0);
    v0.set(Word::CR0, (1 << 40) | 0x31);
    let ev = c.enter(&mut v0, 0, 0);
    if ev != VmEvent::Exit(pseudo_exit::INVALID_STATE) {
        println!(
            "vmm_selftest: a bad CR0 gave {ev:?} at rip {:#x}",
            v0.get(Word::RIP)
        );
    }
    c.check.expect(
        ev == VmEvent::Exit(pseudo_exit::INVALID_STATE),
        "a state VMRUN refuses comes back as INVALID_STATE",
    );
    v0.set(Word::CR0, 0x31);

    if c.run_to(&mut v0, exit::CPUID, "CPUID exits") {
        c.check
            .expect(v0.get(Word::RAX) == 0x4000_0000, "CPUID: leaf in RAX");
        v0.set(Word::RAX, 0x1111_1111);
        v0.set(Word::RBX, 0x2222_2222);
        v0.set(Word::RCX, 0x3333_3333);
        v0.set(Word::RDX, 0x4444_4444);
        v0.advance_rip(2);
    }
    c.vmmcall(&mut v0, "VMMCALL exits");
    c.check.expect(
        [Word::RAX, Word::RBX, Word::RCX, Word::RDX].map(|w| v0.get(w))
            == [0x1111_1111, 0x2222_2222, 0x3333_3333, 0x4444_4444],
        "CPUID: the VMM's results reached the guest's registers",
    );

    let mut msr_value = 0;
    if c.run_to(&mut v0, exit::MSR, "WRMSR exits") {
        c.check.expect(
            v0.get(Word::EXIT_INFO1) == 1 && v0.get(Word::RCX) == TEST_MSR,
            "WRMSR: write, MSR number in RCX",
        );
        msr_value = (v0.get(Word::RDX) << 32) | (v0.get(Word::RAX) & 0xffff_ffff);
        v0.advance_rip(2);
    }
    if c.run_to(&mut v0, exit::MSR, "RDMSR exits") {
        c.check.expect(v0.get(Word::EXIT_INFO1) == 0, "RDMSR: read");
        let r = msr_value + 1;
        v0.set(Word::RAX, r & 0xffff_ffff);
        v0.set(Word::RDX, r >> 32);
        v0.advance_rip(2);
    }
    c.vmmcall(&mut v0, "MSR step ends");
    c.check.expect(
        v0.get(Word::RAX) == 0xdead_bef0 && v0.get(Word::RDX) == 0x1234_5678,
        "RDMSR returns what the VMM emulates",
    );

    // IOIO EXITINFO1: bit 0 = IN, bit 2 = string, bit 3 = REP, port in 16..32.
    if c.run_to(&mut v0, exit::IOIO, "OUT exits") {
        let info = v0.get(Word::EXIT_INFO1);
        c.check.expect(
            info & 1 == 0 && info >> 16 == TEST_PORT && v0.get(Word::RAX) & 0xff == 0x5a,
            "OUT: port, direction and value",
        );
        v0.set(Word::RIP, v0.get(Word::EXIT_INFO2));
    }
    if c.run_to(&mut v0, exit::IOIO, "IN exits") {
        c.check
            .expect(v0.get(Word::EXIT_INFO1) & 1 == 1, "IN: direction");
        v0.set(Word::RAX, (v0.get(Word::RAX) & !0xff) | 0xa5);
        v0.set(Word::RIP, v0.get(Word::EXIT_INFO2));
    }
    if c.run_to(&mut v0, exit::IOIO, "OUTSB exits") {
        let info = v0.get(Word::EXIT_INFO1);
        let esi = v0.get(Word::RSI);
        let byte = c.ram.read::<u8>(esi as usize).unwrap_or(0);
        c.check.expect(
            info & 4 != 0 && info & 1 == 0 && byte == 0x77,
            "OUTSB: string form, the VMM reads the byte at DS:ESI",
        );
        v0.set(Word::RSI, esi + 1);
        v0.set(Word::RIP, v0.get(Word::EXIT_INFO2));
    }
    if c.run_to(&mut v0, exit::IOIO, "REP INSB exits") {
        let info = v0.get(Word::EXIT_INFO1);
        let (edi, count) = (v0.get(Word::RDI), v0.get(Word::RCX));
        c.check.expect(
            info & 0b1101 == 0b1101 && count == 4,
            "REP INSB: string, rep, in, count in ECX",
        );
        for i in 0..count.min(16) {
            let _ = c.ram.write::<u8>((edi + i) as usize, &(i as u8 + 1));
        }
        v0.set(Word::RDI, edi + count);
        v0.set(Word::RCX, 0);
        v0.set(Word::RIP, v0.get(Word::EXIT_INFO2));
    }
    c.vmmcall(&mut v0, "I/O step ends");
    c.check.expect(
        v0.get(Word::RBX) & 0xff == 0xa5
            && v0.get(Word::RCX) == 0x0403_0201
            && v0.get(Word::RSI) == 0x7101
            && v0.get(Word::RDI) == 0x7204,
        "IN/OUTSB/REP INSB results reached the guest",
    );

    if c.run_to(&mut v0, exit::HLT, "HLT exits") {
        v0.advance_rip(1);
        // Seven halts of different lengths: with only the 1 ms tick to wake them
        // they would be late by up to a tick each. Under -icount, idle time still
        // follows the host's clock, so one hiccup of a loaded host is forgiven.
        let hz = v0.get(Word::TSC_HZ);
        let mut lates = [0u64; 7];
        let mut all_returned = true;
        for (k, late) in lates.iter_mut().enumerate() {
            let deadline = rdtsc() + 150_000 + k as u64 * 170_000;
            let ev = c.enter(&mut v0, flags::HALTED, deadline);
            let now = rdtsc();
            all_returned &= ev == VmEvent::Exit(pseudo_exit::DEADLINE) && now >= deadline;
            *late = now.saturating_sub(deadline);
        }
        c.check.expect(
            all_returned,
            "a halted vCPU returns at its deadline, not before",
        );
        lates.sort_unstable();
        println!(
            "vmm_selftest: measure halted deadline late by {} tsc (median of 7; kernel's TSC rate {} kHz)",
            lates[3],
            hz / 1000
        );
        // Only instruction counting (-icount shift=0: a 1 GHz TSC) makes guest time
        // exact; in real time TCG is late by whatever the host was doing.
        if hz.abs_diff(1_000_000_000) < 10_000_000 {
            c.check.expect(
                lates[5] < hz / 3333,
                "a halted vCPU wakes within 0.3 ms of its deadline (APIC timer, not the 1 ms tick)",
            );
        }
        let ev = c.enter(&mut v0, flags::HALTED, 1);
        c.check.expect(
            ev == VmEvent::Exit(pseudo_exit::DEADLINE),
            "a halted entry whose deadline has passed returns at once",
        );
    }

    for (what, value) in [("read", None), ("write", Some(0x600d_d00d))] {
        if !c.run_to(&mut v0, exit::NPF, "an unmapped GPA is a nested page fault") {
            break;
        }
        let gpa = v0.get(Word::EXIT_INFO2);
        let write = v0.get(Word::EXIT_INFO1) & 2 != 0;
        let Some((len, reg, is_write)) = c.decode_mmio(v0.get(Word::RIP)) else {
            c.check.expect(false, "MMIO instruction decodes");
            break;
        };
        c.check.expect(
            is_write == write
                && gpa == MMIO + u64::from(write) * 4
                && value.is_none_or(|x| v0.get(Word::RAX + reg) == x),
            match what {
                "read" => "MMIO read: GPA, direction, decoded length",
                _ => "MMIO write: GPA, direction, value",
            },
        );
        if !is_write {
            v0.set(Word::RAX + reg, MMIO_READ_VALUE);
        }
        v0.advance_rip(len);
    }
    c.vmmcall(&mut v0, "MMIO step ends");
    c.check.expect(
        v0.get(Word::RAX) == MMIO_READ_VALUE,
        "the emulated MMIO read reached the guest",
    );

    // The guest spins with interrupts on; the deadline brings it back, then an
    // external interrupt is injected and its IDT handler ends the spin.
    let deadline = rdtsc() + 300_000;
    let ev = c.enter(&mut v0, 0, deadline);
    c.check.expect(
        ev == VmEvent::Exit(pseudo_exit::DEADLINE) && v0.get(Word::RFLAGS) & 0x200 != 0,
        "a spinning guest returns at its deadline",
    );
    v0.set(Word::EVENT_INJECT, (1 << 31) | 0x30);
    c.vmmcall(&mut v0, "the injected interrupt's handler ran");
    c.check.expect(
        c.read_u32(FLAGS) == 0x30 && v0.get(Word::EVENT_INJECT) & (1 << 31) == 0,
        "EVENTINJ: vector 0x30 delivered through the guest IDT",
    );

    c.vmmcall(&mut v0, "the guest turned interrupts off");
    v0.set(Word::INTERRUPT_WINDOW, 1);
    if c.run_to(&mut v0, exit::VINTR, "an interrupt window exit") {
        c.check.expect(
            v0.get(Word::RFLAGS) & 0x200 != 0 && v0.get(Word::INTERRUPT_WINDOW) & 1 == 0,
            "the window opened after STI; it is one-shot",
        );
        v0.set(Word::EVENT_INJECT, (1 << 31) | 0x31);
    }
    c.vmmcall(&mut v0, "the window's interrupt was handled");
    c.check.expect(
        c.read_u32(FLAGS + 4) == 0x31,
        "vector 0x31 delivered in the window",
    );

    // SSE/AVX: the guest enables them and loads patterns; the other vCPU loads
    // others and a protected call runs in between; the guest compares.
    // Both XSETBVs are the kernel's: the invalid one (no x87 bit) raises #GP in
    // the guest, whose handler skips it; the VMM sees neither.
    let ev = c.enter(&mut v0, 0, 0);
    c.check.expect(
        ev == VmEvent::Exit(exit::VMMCALL) && v0.get(Word::XCR0) == 7,
        "XSETBV in the kernel: the guest's XCR0 is x87|SSE|AVX",
    );
    c.check.expect(
        c.read_u32(FLAGS + 8) == 13,
        "XSETBV of an invalid XCR0 raised #GP in the guest",
    );
    v0.advance_rip(3);
    // vCPU 1 starts straight in 64-bit mode (as a VMM would start Linux).
    flat32(&mut v1, gpa_of(addr_of!(vmt_vcpu1)), STACK1);
    v1.set(
        Word::SEGMENTS + 2 * kernel_abi::vcpu::segment::CS,
        segment_word(0x08, 0xa9b, 0xffff_ffff),
    );
    v1.set(Word::CR0, 0x8000_0033);
    v1.set(Word::CR3, PML4);
    v1.set(Word::CR4, 0x40620);
    v1.set(Word::EFER, 0x500);
    v1.set(Word::XCR0, 7);
    c.vmmcall(&mut v1, "vCPU 1 (long mode) loaded other vector values");
    c.check.expect(
        v1.get(Word::RAX) == 0x1122_3344_5566_7788
            && v1.get(Word::R8 + 7) == 0x0123_4567_89ab_cdef
            && v1.get(Word::R8) == 0xeeee_eeee_eeee_eeee,
        "long mode: 64-bit registers and a load through the guest's page tables",
    );
    c.check
        .expect(v1.get(Word::RBX) == 0, "vCPU 1 does not see vCPU 0's DR0");
    c.check
        .expect(ping_increments(k, 41), "a protected call between exits");
    c.vmmcall(&mut v0, "vector compare step ends");
    c.check.expect(
        [Word::RBX, Word::RCX, Word::RDX].map(|w| v0.get(w) & 0xffff) == [0xffff; 3],
        "YMM0 and XMM1 survived the other vCPU and the call",
    );
    c.check
        .expect(v0.get(Word::RSI) == 0x1234, "DR0 survived the other vCPU");

    // A notification while the guest spins: ponger (same priority) runs on the
    // next tick, notifies back, and VM_ENTER returns NOTIFICATION.
    let spin = gpa_of(addr_of!(vmt_spin));
    let _ = PONG.notify(k);
    let ev = c.enter(&mut v0, 0, rdtsc() + 50_000_000);
    c.check.expect(
        matches!(ev, VmEvent::Notification(chs) if chs.contains(PONG))
            && v0.get(Word::EXIT_CODE) == pseudo_exit::NOTIFIED
            && v0.get(Word::RIP) == spin,
        "a notification while the guest spins ends VM_ENTER",
    );
    // The same while halted: the entry blocks, ponger runs, its notification wakes it.
    let _ = PONG.notify(k);
    let ev = c.enter(&mut v0, flags::HALTED, 0);
    c.check.expect(
        matches!(ev, VmEvent::Notification(chs) if chs.contains(PONG)),
        "a notification wakes a halted vCPU",
    );

    // The guest runs at its VM's priority (90), below vm_busy (95), while the VMM
    // itself is above it (100): notified, vm_busy runs while the guest spins, and
    // the guest resumes after it, until the deadline.
    let before = busy.read::<u64>(0).unwrap_or(u64::MAX);
    let _ = BUSY.notify(k);
    let deadline = rdtsc() + 5_000_000;
    let ev = c.enter(&mut v0, 0, deadline);
    let after = busy.read::<u64>(0).unwrap_or(0);
    c.check.expect(
        ev == VmEvent::Exit(pseudo_exit::DEADLINE)
            && after == before.wrapping_add(1)
            && v0.get(Word::RIP) == spin,
        "a PD between the guest's priority and the VMM's runs while the guest does; the guest resumes after it",
    );
    v0.set(Word::RIP, spin + 2);

    let start = rdtsc();
    let mut rounds = 0;
    loop {
        match c.enter(&mut v0, 0, 0) {
            VmEvent::Exit(exit::CPUID) => {
                rounds += 1;
                for w in [Word::RAX, Word::RBX, Word::RCX, Word::RDX] {
                    v0.set(w, 0);
                }
                v0.advance_rip(2);
            }
            VmEvent::Exit(exit::VMMCALL) => break,
            ev => {
                println!("vmm_selftest: CPUID loop: unexpected {ev:?}");
                break;
            }
        }
    }
    let cost = (rdtsc() - start) / rounds.max(1);
    c.check
        .expect(rounds == CPUID_ROUNDS, "1000 CPUID exits in a row");
    println!(
        "vmm_selftest: measure cpuid exit round trip {cost} tsc (guest -> kernel -> VMM -> VM_ENTER -> guest, {rounds} exits)"
    );
    v0.advance_rip(3);

    let ev = c.enter(&mut v0, 0, 0);
    c.check.expect(
        ev == VmEvent::Exit(exit::SHUTDOWN),
        "a triple fault is a SHUTDOWN exit for the VMM",
    );
    c.check.expect(
        ping_increments(k, 1),
        "after the guest's triple fault the other PDs still answer",
    );
    println!(
        "vmm_selftest: {} VM entries; measure boot_to_report {} tsc since reset",
        c.exits,
        rdtsc()
    );
    if c.check.failures == 0 {
        println!("vmm_selftest: REPORT PASS");
        debug_halt(0)
    }
    println!("vmm_selftest: REPORT FAIL ({} checks)", c.check.failures);
    debug_halt(1)
}

pd_rt::entry!(|init, kernel| -> Result<Never, InitError> {
    run(init, kernel)?;
    debug_halt(1)
});
