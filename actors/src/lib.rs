//! The coprocessor engine.
//!
//! # Layout
//!
//! - [`registry`]: programs. ELF validation and program IDs live in
//!   `registry::elf`.
//! - [`executor`]: runs jobs. The metered RISC-V VM lives in `executor::vm`.

pub mod executor;
pub mod registry;
