//! Links Debian's libtpms (package libtpms-dev) when the `libtpms` feature is on.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_LIBTPMS").is_some() {
        println!("cargo:rustc-link-lib=dylib=tpms");
    }
}
