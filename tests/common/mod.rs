//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Path of a built example guest (`make guests` builds them).
pub fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("programs/elf").join(format!("{name}.elf"));
    assert!(path.exists(), "{} is missing: run `make guests` first", path.display());
    path
}

/// `abi.encode(uint64 n)`.
pub fn abi_u64(n: u64) -> Vec<u8> {
    let mut word = vec![0u8; 32];
    word[24..].copy_from_slice(&n.to_be_bytes());
    word
}

pub fn hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Runs `coprocessor ARGS...` and returns its output.
pub fn coprocessor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coprocessor")).args(args).output().expect("run coprocessor")
}

/// Runs `coprocessor exec ELF ARGS... --json`; returns (exit status, JSON).
pub fn exec_json(elf: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let path = guest(elf);
    let mut all = vec!["exec", path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    all.push("--json");
    let out = coprocessor(&all);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().expect("exit code"), json)
}

pub mod chain;
pub mod engine;
