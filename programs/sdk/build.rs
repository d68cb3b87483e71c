//! Puts the guest linker script `link.x` on the linker's search path when
//! building for a riscv32 or riscv64 target, so that a guest binary only has to pass
//! `-Tlink.x` (see `programs/guest-build.rs`). On the host it does nothing.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=link.x");
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    if !(target.starts_with("riscv32") || target.starts_with("riscv64")) {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    fs::copy(manifest.join("link.x"), out.join("link.x")).expect("copy link.x to OUT_DIR");
    println!("cargo:rustc-link-search=native={}", out.display());
}
