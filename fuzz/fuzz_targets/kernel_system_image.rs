//! The kernel's view of the system image and a PD's of its info page: any bytes
//! either parse into parts that lie inside the input, or are refused; never a panic.
#![no_main]

use kernel_abi::image::SystemImage;
use kernel_abi::info::InfoPage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = SystemImage::parse(data) {
        assert!(image.len() <= data.len());
        for i in 0..image.pd_count() {
            let pd = image.pd(i).expect("parse checked every PD");
            for s in pd.segments {
                assert!(s.file_off + s.file_size <= pd.elf.len() as u64);
            }
            for m in pd.maps {
                assert!((m.region as usize) < image.regions().len());
            }
            if let Some(info) = InfoPage::parse(pd.info_page) {
                let _ = info.region("shared");
                let _ = info.variable("shared");
            }
        }
        for (i, r) in image.regions().iter().enumerate() {
            assert!(image.region_data(i).len() as u64 <= r.size);
        }
        for vm in image.vms() {
            assert!(usize::from(vm.desc.owner_pd) < image.pd_count());
            assert!(!vm.vcpu_ids().is_empty());
            for m in vm.maps {
                let r = image.regions()[m.region as usize];
                assert!(m.gpa % 4096 == 0 && m.gpa + r.size <= kernel_abi::image::GPA_LIMIT);
            }
            let owner = usize::from(vm.desc.owner_pd);
            assert_eq!(image.vm_of(owner).map(|v| v.desc.name), Some(vm.desc.name));
        }
    }
    let _ = InfoPage::parse(data);
});
