//! Which libtpms `LibtpmsEngine` runs (`cfg(tpm_engine)` when there is one):
//! - feature `system` on the host: Debian's libtpms (package libtpms-dev);
//! - building for the PDs (target_os "none") with `TPM_ENGINE_LIB` naming the
//!   directory of the archive `build.sh` produced (`libtpm_engine.a`: libtpms +
//!   libcrypto + the printf shim).
//!
//! Otherwise none, so the default PD builds and CI need no C toolchain or
//! downloads.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tpm_engine)");
    println!("cargo:rerun-if-env-changed=TPM_ENGINE_LIB");
    println!("cargo:rerun-if-changed=build.rs");
    let bare = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none");
    if !bare {
        if std::env::var_os("CARGO_FEATURE_SYSTEM").is_some() {
            println!("cargo:rustc-link-lib=dylib=tpms");
            println!("cargo:rustc-cfg=tpm_engine");
        }
        return;
    }
    let Some(dir) = std::env::var_os("TPM_ENGINE_LIB") else {
        return;
    };
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
