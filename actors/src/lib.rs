//! The coprocessor engine.
//!
//! # Layout
//!
//! - [`registry`]: programs. ELF validation and program IDs live in
//!   `registry::elf`.
//! - [`executor`]: runs jobs. The metered RISC-V VM lives in `executor::vm`.
//! - [`protocol`]: InfinityVM ABI types, job IDs, EIP-191 signatures.

pub mod executor;
pub mod protocol;
pub mod registry;
