//! The `coprocessor` command-line tool and client library.
//!
//! # Layout
//!
//! - [`client`]: the socket client (JSON-RPC, and the bincode fast path).
//! - [`request`]: building and signing offchain job requests.
//! - [`input`]: parsing of `HEX|@FILE` arguments.
//! - [`devnet`]: a local hardhat node and the contracts' deployment
//!   (`coprocessor dev`, `coprocessor deploy`, the chain tests).
//! - `cli` (binary only): the clap commands, one module per command.

pub mod client;
pub mod devnet;
pub mod input;
pub mod request;
