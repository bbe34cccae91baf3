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
    }
    let _ = InfoPage::parse(data);
});
