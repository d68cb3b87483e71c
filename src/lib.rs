//! The `coprocessor` command-line tool and client library.
//!
//! # Layout
//!
//! - [`input`]: parsing of `HEX|@FILE` arguments.
//! - `cli` (binary only): the clap commands; `exec` runs one program locally.

pub mod input;
