//! `twin`: the example guests' pure logic as one Linux user-mode program,
//! for the benchmarks' QEMU column (`qemu-riscv32` / `qemu-riscv64` running
//! the same guest code as the VM, unmetered).
//!
//! The binary (`src/main.rs`, built by `programs/build.sh --twins` for
//! `riscv32im-unknown-none-elf` and `riscv64im-unknown-none-elf`) is
//! `twin <workload> <onchain-file> <offchain-file>`: it reads both files,
//! calls [`run`], writes the output bytes to stdout and exits 0. This
//! library is that dispatch, and the host tests (which also run the built
//! twins under QEMU when both are there).
//!
//! Each workload calls its example crate's `run` exactly as the guest's main
//! does, except that the hash "precompile" argument is the portable code
//! ([`coprocessor_hashes::sha256`] / [`coprocessor_hashes::keccak256`]):
//! there is no host to call. With the benchmark inputs (plain mode) that
//! argument is used only by `clob`, for the one state-root hash per batch.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Every workload name [`run`] accepts, as the guests are named, plus
/// `none`, which reads the inputs and outputs nothing (the benchmark
/// subtracts process start-up and input reading with it).
pub const WORKLOADS: [&str; 6] = ["sha256-rounds", "keccak-rounds", "clob", "fibonacci", "xorshift", "none"];

/// Exit code for a usage error: unknown workload, unreadable file.
pub const USAGE_EXIT_CODE: i32 = 2;
/// Exit code when the workload fails (as a guest: it panics, exit 101).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Why [`run`] produced no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The workload name is not one of [`WORKLOADS`].
    UnknownWorkload(String),
    /// The workload's `run` returned an error (the guest would panic with
    /// exit code 101).
    Job {
        /// The workload.
        workload: &'static str,
        /// The example crate's error, displayed.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownWorkload(name) => {
                write!(f, "unknown workload {name:?} (expected one of {})", WORKLOADS.join(", "))
            }
            // The guest's run_job panics with exactly "{name}: {error}".
            Error::Job { workload, message } => write!(f, "{workload}: {message}"),
        }
    }
}

fn job<E: fmt::Display>(workload: &'static str, result: Result<Vec<u8>, E>) -> Result<Vec<u8>, Error> {
    result.map_err(|e| Error::Job { workload, message: e.to_string() })
}

/// Runs `workload` on the inputs, as its guest's main does; returns the
/// bytes the guest would commit.
pub fn run(workload: &str, onchain: &[u8], offchain: &[u8]) -> Result<Vec<u8>, Error> {
    match workload {
        "sha256-rounds" => job("sha256-rounds", sha256_rounds::run(onchain, offchain, coprocessor_hashes::sha256)),
        "keccak-rounds" => job("keccak-rounds", keccak_rounds::run(onchain, offchain, coprocessor_hashes::keccak256)),
        "clob" => job("clob", clob::run(onchain, offchain, coprocessor_hashes::keccak256)),
        "fibonacci" => job("fibonacci", fibonacci::run(onchain, offchain)),
        "xorshift" => job("xorshift", xorshift::run(onchain, offchain)),
        "none" => Ok(Vec::new()),
        other => Err(Error::UnknownWorkload(other.to_string())),
    }
}

#[cfg(test)]
mod tests;
