//! The registry: validates and stores programs.

pub mod elf;
