//! `coprocessor new NAME`: a ready app in `./NAME` (or `--dir DIR/NAME`): a
//! guest crate on the SDK (copied in, so the app builds on its own) with a
//! real example and a unit test of its logic, a Makefile whose `make test`
//! tests the logic, builds the guest for rv32im and rv64im and runs it with
//! `coprocessor exec`, and a README.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `new`.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The app's name: lowercase letters, digits and dashes, starting with a
    /// letter (it names the folder, the crate and the guest binary).
    name: String,
    /// Where to create it [default: the current directory].
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The SDK and the ABI helpers, as this binary was built with them.
const SDK_FILES: [(&str, &str); 12] = [
    (".cargo/config.toml", include_str!("../../programs/.cargo/config.toml")),
    ("sdk/sdk/Cargo.toml", include_str!("../../programs/sdk/Cargo.toml")),
    ("sdk/sdk/build.rs", include_str!("../../programs/sdk/build.rs")),
    ("sdk/sdk/link.x", include_str!("../../programs/sdk/link.x")),
    ("sdk/sdk/src/lib.rs", include_str!("../../programs/sdk/src/lib.rs")),
    ("sdk/sdk/src/heap.rs", include_str!("../../programs/sdk/src/heap.rs")),
    ("sdk/sdk/src/io.rs", include_str!("../../programs/sdk/src/io.rs")),
    ("sdk/sdk/src/start.rs", include_str!("../../programs/sdk/src/start.rs")),
    ("sdk/sdk/src/syscall.rs", include_str!("../../programs/sdk/src/syscall.rs")),
    ("sdk/abi/Cargo.toml", include_str!("../../programs/abi/Cargo.toml")),
    ("sdk/abi/src/lib.rs", include_str!("../../programs/abi/src/lib.rs")),
    ("guest/build.rs", include_str!("../../programs/guest-build.rs")),
];

const GUEST_CARGO: &str = r#"[package]
name = "{name}"
description = "The {name} guest: the sum of the squares 1..=n"
version = "0.1.0"
edition = "2021"
publish = false
# Links the guest binary with the SDK's link.x for riscv32 and riscv64.
build = "build.rs"

# The pure logic: no_std + alloc, no syscalls, tested on the host.
[lib]
path = "src/lib.rs"

# The guest binary (riscv32im or riscv64im): `--features guest`.
[[bin]]
name = "{name}"
path = "src/main.rs"
required-features = ["guest"]

[features]
guest = ["dep:coprocessor-sdk"]

[dependencies]
coprocessor-abi = { path = "../sdk/abi" }
coprocessor-sdk = { path = "../sdk/sdk", optional = true }

# Its own workspace: the guest builds with its own toolchain and flags.
[workspace]

[profile.release]
opt-level = 3
codegen-units = 1
lto = "fat"
panic = "abort"
debug = false
"#;

const GUEST_LIB: &str = r#"//! {name}: the sum of the squares 1² + 2² + … + n².
//!
//! - Onchain input: `abi.encode(uint64 n)`. The offchain input is ignored.
//! - Output: `abi.encode(uint64 n, uint256 sum)`.
//!
//! Replace `sum_of_squares` with your app's logic: this crate builds and is
//! tested on the host (`make unit`), and the guest binary (`src/main.rs`)
//! only wires `run` to the VM's inputs and output.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use coprocessor_abi::{decode_u64, push_u64, push_word, AbiError};

/// The sum of the squares of 1..=n (exact for every n below 2^40).
pub fn sum_of_squares(n: u64) -> u128 {
    (1..=u128::from(n)).map(|i| i * i).sum()
}

/// The job: decodes n, encodes (n, sum).
pub fn run(onchain: &[u8], _offchain: &[u8]) -> Result<Vec<u8>, AbiError> {
    let n = decode_u64(onchain)?;
    let mut out = Vec::with_capacity(64);
    push_u64(&mut out, n);
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&sum_of_squares(n).to_be_bytes());
    push_word(&mut out, &word);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_matches_the_closed_form() {
        for n in [0u64, 1, 2, 3, 10, 1000, 123_456] {
            let n128 = u128::from(n);
            assert_eq!(sum_of_squares(n), n128 * (n128 + 1) * (2 * n128 + 1) / 6, "n = {n}");
        }
    }

    #[test]
    fn run_decodes_and_encodes_abi_words() {
        let out = run(&coprocessor_abi::encode_u64(3), &[]).expect("a valid input");
        assert_eq!(out.len(), 64);
        assert_eq!(out[31], 3);
        assert_eq!(out[63], 14);
        assert!(run(&[1, 2, 3], &[]).is_err());
    }
}
"#;

const GUEST_MAIN: &str = r#"//! The {name} guest binary: see the library for its input and output.
//! Malformed input panics (exit code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    coprocessor_sdk::run_job("{name}", {crate}::run);
}
"#;

const MAKEFILE: &str = r#"# {name}: `make test` tests the guest's logic on the host, builds the guest
# for rv32im and rv64im (elf/), and runs both with `coprocessor exec`.
#
# The guest builds with Debian's rustc (rustc-web, rust-web-src, lld) and
# -Zbuild-std, as the coprocessor repository's guests do.

COPROCESSOR ?= coprocessor
GUEST_CARGO ?= /usr/bin/cargo
GUEST_RUSTC ?= /usr/bin/rustc
TARGETS := riscv32im-unknown-none-elf riscv64im-unknown-none-elf
# abi.encode(uint64 1000), and abi.encode(uint64 1000, uint256 333833500).
INPUT := 0x00000000000000000000000000000000000000000000000000000000000003e8
EXPECTED := 0x00000000000000000000000000000000000000000000000000000000000003e80000000000000000000000000000000000000000000000000000000013e5e51c

.PHONY: test unit guest exec
test: unit exec

unit:
	cargo test --manifest-path guest/Cargo.toml --lib

guest:
	RUSTC=$(GUEST_RUSTC) RUSTC_BOOTSTRAP=1 $(GUEST_CARGO) build --release -Zbuild-std=core,alloc \
	    --manifest-path guest/Cargo.toml --features guest --bins $(addprefix --target ,$(TARGETS))
	mkdir -p elf/rv64
	cp guest/target/riscv32im-unknown-none-elf/release/{name} elf/{name}.elf
	cp guest/target/riscv64im-unknown-none-elf/release/{name} elf/rv64/{name}.elf

exec: guest
	@for elf in elf/{name}.elf elf/rv64/{name}.elf; do \
	    out=$$($(COPROCESSOR) exec $$elf --input $(INPUT) --json) || exit 1; \
	    echo "$$elf: $$out"; \
	    case "$$out" in *'"output":"$(EXPECTED)"'*) ;; *) echo "$$elf: unexpected output" >&2; exit 1;; esac; \
	done
"#;

const README: &str = r#"# {name}

A coprocessor app: a guest program (`guest/`) that runs in the
coprocessor's metered RISC-V VM. Created by `coprocessor new {name}`.

```sh
make test                     # test the logic, build the guest, run it
coprocessor exec elf/{name}.elf --input 0x…   # run it on your input
```

- `guest/src/lib.rs`: the logic, plain `no_std` Rust, unit-tested on the
  host. Input `abi.encode(uint64 n)`, output `abi.encode(uint64 n, uint256
  sum of the squares 1..=n)`: replace it with yours.
- `guest/src/main.rs`: the guest binary, which wires `run` to the VM's
  inputs and output through the SDK.
- `sdk/`: the coprocessor guest SDK and ABI helpers, as `coprocessor new`
  was built with them.
- `elf/{name}.elf` (rv32im) and `elf/rv64/{name}.elf` (rv64im): what
  `make guest` builds. Register one with
  `coprocessor program submit elf/{name}.elf`, try it with
  `coprocessor job call`, and submit jobs with `coprocessor job submit`.
"#;

/// `new NAME`: refuses a bad name or an existing folder.
pub(crate) fn run(args: NewArgs) -> Result<ExitCode, String> {
    let name = args.name.as_str();
    let valid = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(format!(
            "app name {name:?}: use lowercase letters, digits and dashes, starting with a letter (at most 40)"
        ));
    }
    let root = args.dir.unwrap_or_else(|| PathBuf::from(".")).join(name);
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    let fill = |template: &str| template.replace("{name}", name).replace("{crate}", &name.replace('-', "_"));
    // The shared guest build script watches itself under its name here.
    let mut files: Vec<(&str, String)> =
        SDK_FILES.iter().map(|(path, text)| (*path, text.replace("../../guest-build.rs", "build.rs"))).collect();
    files.extend([
        ("guest/Cargo.toml", fill(GUEST_CARGO)),
        ("guest/src/lib.rs", fill(GUEST_LIB)),
        ("guest/src/main.rs", fill(GUEST_MAIN)),
        ("Makefile", fill(MAKEFILE)),
        ("README.md", fill(README)),
        (".gitignore", "/guest/target\n/elf\n".to_owned()),
    ]);
    for (path, text) in &files {
        write(&root.join(path), text)?;
    }
    println!("created {} ({} files): cd {} && make test", root.display(), files.len(), root.display());
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| format!("creating {}: {err}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|err| format!("writing {}: {err}", path.display()))
}
