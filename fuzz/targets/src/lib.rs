//! The bodies of the fuzz targets, as plain functions of `&[u8]` that panic
//! on a real bug: a crash, a broken invariant, or a disagreement between
//! the engine's VM and the reference interpreter (`rv32im-reference`).
//! `fuzz/fuzz_targets/*.rs` call them under libFuzzer; the tests in
//! `tests/` run every seed and every regression input through them, and
//! `vm_diff` through a few thousand deterministic inputs, under plain
//! `cargo test`.
//!
//! | target | what |
//! |---|---|
//! | [`elf`] | the ELF validator and the loader (a VM built and run on what it accepts) |
//! | [`jsonrpc`] | the line framer, the JSON-RPC envelope and `Method::parse` |
//! | [`fast_frame`] | the bincode fast-path frame decoder |
//! | [`abi_request`] | the ABI decoding of offchain requests and `JobSpec::from_offchain` |
//! | [`vm_diff`] | generated programs on the VM and on the reference: they must agree |

mod abi;
pub mod elf_writer;
pub mod gen;
mod loader;
mod rpc;
pub mod source;
mod vm;

pub use abi::abi_request;
pub use loader::elf;
pub use rpc::{fast_frame, jsonrpc};
pub use vm::{compare, vm_diff, Job};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus` and
/// `fuzz/regressions`.
pub const TARGETS: [(&str, Target); 5] = [
    ("elf", elf),
    ("jsonrpc", jsonrpc),
    ("fast_frame", fast_frame),
    ("abi_request", abi_request),
    ("vm_diff", vm_diff),
];
