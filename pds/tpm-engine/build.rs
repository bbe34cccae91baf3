//! Links the archive `build.sh` produced (`libtpm_engine.a`: libtpms + libcrypto)
//! when building for the PDs (target_os "none") with `TPM_ENGINE_LIB` naming its
//! directory, and then sets `cfg(tpm_engine)`. Without it the crate offers no
//! engine (`tpm_engine::start` reports `NotBuilt`), so the default builds and CI
//! need no C toolchain or downloads.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tpm_engine)");
    println!("cargo:rerun-if-env-changed=TPM_ENGINE_LIB");
    println!("cargo:rerun-if-changed=build.rs");
    let bare = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none");
    let Some(dir) = std::env::var_os("TPM_ENGINE_LIB") else {
        return;
    };
    if !bare {
        return;
    }
    let dir = std::path::PathBuf::from(dir);
    let lib = dir.join("libtpm_engine.a");
    assert!(
        lib.is_file(),
        "TPM_ENGINE_LIB={} has no libtpm_engine.a: run pds/tpm-engine/build.sh",
        dir.display()
    );
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=tpm_engine");
    println!("cargo:rustc-cfg=tpm_engine");
}
