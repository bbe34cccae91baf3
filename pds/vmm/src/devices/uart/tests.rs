use super::*;

fn out(u: &mut Uart, off: u16, v: u8) {
    u.write(off, v);
}

#[test]
fn linux_8250_autoconfig_sees_a_16550a() {
    let mut u = Uart::new();
    // IER scratch test.
    out(&mut u, reg::IER, 0);
    let scratch = u.read(reg::IER);
    out(&mut u, reg::IER, 0x0f);
    let scratch2 = u.read(reg::IER) & 0x0f;
    out(&mut u, reg::IER, 0);
    assert_eq!((scratch, scratch2), (0, 0x0f));
    // Loopback test: MCR LOOP|OUT2|RTS shows as DCD|CTS.
    let save_mcr = u.read(reg::MCR);
    out(&mut u, reg::MCR, mcr::LOOP | 0x0a);
    assert_eq!(u.read(reg::MSR) & 0xf0, 0x90);
    out(&mut u, reg::MCR, save_mcr);
    // FIFO: IIR's top bits say 16550A.
    out(&mut u, reg::IIR_FCR, 0x01);
    assert_eq!(u.read(reg::IIR_FCR) >> 6, 3);
    // EFR probes (LCR 0x80 / 0xBF) read IIR, which is never 0.
    out(&mut u, reg::LCR, 0x80);
    assert_ne!(u.read(reg::IIR_FCR), 0);
    out(&mut u, reg::LCR, 0xbf);
    assert_ne!(u.read(reg::IIR_FCR), 0);
    // NS16550 probe: bit 4 of "EXCR1" (IIR) must not follow MCR.LOOP.
    out(&mut u, reg::LCR, 0);
    let status1 = u.read(reg::MCR);
    out(&mut u, reg::LCR, 0xe0);
    let status2 = u.read(reg::IIR_FCR);
    assert_eq!((status1 ^ status2) & mcr::LOOP, 0);
    out(&mut u, reg::LCR, 0);
    out(&mut u, reg::MCR, status1 ^ mcr::LOOP);
    out(&mut u, reg::LCR, 0xe0);
    let status2 = u.read(reg::IIR_FCR);
    out(&mut u, reg::LCR, 0);
    out(&mut u, reg::MCR, status1);
    assert_eq!((status2 ^ status1) & mcr::LOOP, 0, "not an NS16550");
    // 16750 probe: no 64-byte FIFO bit.
    out(&mut u, reg::IIR_FCR, 0x21);
    let s1 = u.read(reg::IIR_FCR) >> 5;
    out(&mut u, reg::IIR_FCR, 0x01);
    out(&mut u, reg::LCR, LCR_DLAB);
    out(&mut u, reg::IIR_FCR, 0x21);
    let s2 = u.read(reg::IIR_FCR) >> 5;
    out(&mut u, reg::LCR, 0);
    assert!(!(s1 == 6 && s2 == 7));
    // XScale probe: IER bit 6 does not stick.
    out(&mut u, reg::IER, 0x40);
    assert_eq!(u.read(reg::IER) & 0x40, 0);
    // Scratch register and divisor latch.
    out(&mut u, reg::SCR, 0x5a);
    assert_eq!(u.read(reg::SCR), 0x5a);
    out(&mut u, reg::LCR, LCR_DLAB | 3);
    out(&mut u, reg::DATA, 0x0c);
    out(&mut u, reg::IER, 0x01);
    assert_eq!((u.read(reg::DATA), u.read(reg::IER)), (0x0c, 0x01));
    out(&mut u, reg::LCR, 3);
    assert_eq!(u.read(reg::IER), 0x40 & 0x0f);
    assert_eq!(u.read(reg::LSR), lsr::THRE | lsr::TEMT);
    assert!(u.take_output().is_none(), "probes transmitted nothing");
}

#[test]
fn thre_is_reasserted_when_enabled_again() {
    // serial8250_do_startup's UART_BUG_THRE test.
    let mut u = Uart::new();
    out(&mut u, reg::MCR, mcr::OUT2 | mcr::DTR | mcr::RTS);
    out(&mut u, reg::IER, ier::THRE);
    assert!(u.irq_level());
    let iir1 = u.read(reg::IIR_FCR);
    assert!(!u.irq_level(), "reading IIR consumed THRE");
    out(&mut u, reg::IER, 0);
    out(&mut u, reg::IER, ier::THRE);
    let iir = u.read(reg::IIR_FCR);
    out(&mut u, reg::IER, 0);
    assert_eq!(iir1 & iir::NO_INT, 0);
    assert_eq!(iir & iir::NO_INT, 0);
    assert_eq!(iir, iir::THRE);
}

#[test]
fn interrupt_driven_transmit() {
    let mut u = Uart::new();
    out(&mut u, reg::MCR, mcr::OUT2);
    out(&mut u, reg::IIR_FCR, 0x07);
    out(&mut u, reg::IER, ier::RX_DATA | ier::THRE);
    assert!(u.irq_level());
    assert_eq!(u.read(reg::IIR_FCR), iir::FIFO_ENABLED | iir::THRE);
    assert_eq!(u.read(reg::IIR_FCR), iir::FIFO_ENABLED | iir::NO_INT);
    for &b in b"hello\nwor" {
        out(&mut u, reg::DATA, b);
    }
    // THR emptied again: THRE interrupt pending.
    assert!(u.irq_level());
    assert_eq!(u.take_output().as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(u.take_output(), None);
    // Nothing more to send: the driver stops THRI, the line drops.
    out(&mut u, reg::IER, ier::RX_DATA);
    assert!(!u.irq_level());
    assert_eq!(u.flush_output(), b"wor");
    // OUT2 gates the line.
    out(&mut u, reg::IER, ier::THRE);
    out(&mut u, reg::MCR, 0);
    assert!(!u.irq_level());
}

#[test]
fn output_flushes_at_256_bytes() {
    let mut u = Uart::new();
    for i in 0..(FLUSH_AT - 1) {
        out(&mut u, reg::DATA, b'a' + (i % 26) as u8);
    }
    assert_eq!(u.take_output(), None);
    out(&mut u, reg::DATA, b'z');
    assert_eq!(u.take_output().map(|v| v.len()), Some(FLUSH_AT));
}

#[test]
fn receive_path_and_priorities() {
    let mut u = Uart::new();
    out(&mut u, reg::MCR, mcr::OUT2);
    // FIFOs off: one byte of room.
    assert_eq!(u.push_input(b"ab"), 1);
    out(&mut u, reg::IIR_FCR, 0x01);
    // Enabling the FIFO clears it.
    assert_eq!(u.read(reg::LSR) & lsr::DATA_READY, 0);
    assert_eq!(u.push_input(&[7u8; 20]), 16);
    out(
        &mut u,
        reg::IER,
        ier::RX_DATA | ier::THRE | ier::MODEM_STATUS,
    );
    // RX data outranks THRE.
    assert_eq!(u.read(reg::IIR_FCR), iir::FIFO_ENABLED | iir::RX_DATA);
    assert!(u.irq_level());
    for _ in 0..16 {
        assert_eq!(u.read(reg::LSR) & lsr::DATA_READY, lsr::DATA_READY);
        assert_eq!(u.read(reg::DATA), 7);
    }
    assert_eq!(u.read(reg::DATA), 0);
    assert_eq!(u.read(reg::IIR_FCR), iir::FIFO_ENABLED | iir::THRE);
    assert_eq!(u.read(reg::IIR_FCR), iir::FIFO_ENABLED | iir::NO_INT);
    // FCR bit 1 clears the receive FIFO.
    u.push_input(b"xy");
    out(&mut u, reg::IIR_FCR, 0x03);
    assert_eq!(u.read(reg::LSR), lsr::THRE | lsr::TEMT);
}

#[test]
fn loopback_echoes_and_overruns() {
    let mut u = Uart::new();
    out(&mut u, reg::MCR, mcr::LOOP);
    // Entering loopback dropped CTS/DSR/DCD: their deltas.
    assert_eq!(u.read(reg::MSR), 0x0b);
    out(&mut u, reg::IER, ier::LINE_STATUS | ier::RX_DATA);
    assert_eq!(u.push_input(b"x"), 0, "receiver disconnected in loopback");
    out(&mut u, reg::DATA, 0x41);
    out(&mut u, reg::DATA, 0x42);
    assert!(u.flush_output().is_empty());
    assert_eq!(u.read(reg::IIR_FCR), iir::LINE_STATUS);
    assert_eq!(
        u.read(reg::LSR),
        lsr::THRE | lsr::TEMT | lsr::DATA_READY | lsr::OVERRUN
    );
    assert_eq!(u.read(reg::IIR_FCR), iir::RX_DATA);
    assert!(!u.irq_level(), "loopback disconnects the line");
    assert_eq!(u.read(reg::DATA), 0x41);
    // Modem deltas: RI trailing edge sets TERI; reading MSR clears deltas.
    out(&mut u, reg::MCR, mcr::LOOP | mcr::OUT1);
    assert_eq!(u.read(reg::MSR), msr::RI);
    out(&mut u, reg::MCR, mcr::LOOP);
    assert_eq!(u.read(reg::MSR), msr::TERI);
    assert_eq!(u.read(reg::MSR), 0);
    out(&mut u, reg::MCR, mcr::LOOP | mcr::DTR);
    assert_eq!(u.read(reg::MSR), msr::DSR | 0x02);
    // Leaving loopback: CTS/DSR/DCD of a connected terminal.
    out(&mut u, reg::MCR, 0);
    assert_eq!(u.read(reg::MSR) & 0xf0, msr::CTS | msr::DSR | msr::DCD);
    assert_eq!(u.read(8), 0xff);
}
