//! The build script shared by every example guest (each guest's Cargo.toml
//! names it with `build = "../../guest-build.rs"`).
//!
//! When the target is riscv32 or riscv64 it links the guest binary with the SDK's
//! linker script: the SDK's own build script puts `link.x` on the search
//! path, and this passes `-Tlink.x` to the binary's link. On the host (where
//! the guest's pure library is unit-tested and benchmarked) it does nothing.
//! A guest outside this repository can copy this file as its `build.rs`.

fn main() {
    println!("cargo:rerun-if-changed=../../guest-build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("riscv32") || target.starts_with("riscv64") {
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
}
