//! `<pci_device>` grants through the builder: into the image's PCI table, the
//! BAR windows claimed in the PD's address space like maps.

use super::*;

const GRANT: &str = r#"<pci_device id="3" bdf="0:5.0" vendor="0x1af4" device="0x1042"><bar index="4" vaddr="VADDR" size="0x4000" setvar_vaddr="regs" /></pci_device>"#;

#[test]
fn a_grant_reaches_the_image_and_its_window_is_claimed() {
    let sys = system(&one_pd(&GRANT.replace("VADDR", "0x22000000")));
    let bytes = compile::compile(&sys, &programs(&sys), &[]).unwrap();
    let image = SystemImage::parse(&bytes).unwrap();
    let [d] = image.pcis() else {
        panic!("one grant: {:?}", image.pcis())
    };
    assert_eq!(
        (d.owner_pd, d.channel, d.device, d.vendor_id, d.device_id),
        (0, 3, 5, 0x1af4, 0x1042)
    );
    assert_eq!(
        (d.bars()[0].index, d.bars()[0].vaddr, d.bars()[0].size),
        (4, 0x2200_0000, 0x4000)
    );
    // The slot stays empty: the kernel puts the INTx line there at boot.
    assert_eq!(image.pd(0).unwrap().desc.caps[3].flags, 0);
    let e = compile_err(&one_pd(&GRANT.replace("VADDR", "0x401000")), None);
    assert!(
        e.contains("PD p: BAR 4 of PCI 0:5.0 at 0x401000..0x405000 overlaps program segment"),
        "{e}"
    );
}
