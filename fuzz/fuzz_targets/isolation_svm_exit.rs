//! isolation::svm: any exit the kernel's state words can hold (the code, both
//! EXITINFO words and RAX/RCX/RDX are the guest's or its doing) through the one
//! SVM exit decoder the VMM dispatches on. Whatever it decodes must be something
//! the architecture can produce, and the decode must see only the fields it is
//! given (the same words in the state words decode the same).
#![no_main]

use isolation::backend::has_error_code;
use isolation::svm::{decode_exit, SvmExit};
use isolation::{ExitKind, MsrAccess, VcpuExit};
use kernel_abi::vcpu::StateWords;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut w = [0u64; 6];
    for (word, chunk) in w.iter_mut().zip(data.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    let e = SvmExit {
        code: w[0],
        info1: w[1],
        info2: w[2],
        rax: w[3],
        rcx: w[4],
        rdx: w[5],
    };
    let exit = decode_exit(&e);
    match exit {
        VcpuExit::Io(io) => {
            assert!(matches!(io.size, 1 | 2 | 4));
            assert_eq!(io.next_rip, Some(e.info2));
        }
        VcpuExit::Msr { index, access } => {
            assert_eq!(index, e.rcx as u32);
            if let MsrAccess::Write(v) = access {
                assert_eq!(v, (e.rax & 0xffff_ffff) | (e.rdx << 32));
            }
        }
        VcpuExit::Exception { vector, error_code } => {
            assert!(vector < 32);
            assert_eq!(error_code.is_some(), has_error_code(vector));
        }
        _ => {}
    }
    assert!((exit.kind() as usize) < ExitKind::COUNT);
    let mut st = StateWords::new();
    st.load_exit(&e.to_words());
    assert_eq!(decode_exit(&SvmExit::from_words(&st)), exit);
});
