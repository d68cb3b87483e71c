//! The coprocessor engine.
//!
//! # Layout
//!
//! Actors, each in its own module with the messages it accepts:
//! - [`supervisor`]: starts everything, restarts crashed actors, recovers
//!   unfinished jobs, drains on SIGTERM/SIGINT.
//! - [`registry`]: programs. ELF validation lives in `registry::elf`.
//! - [`executor`]: runs jobs. The metered RISC-V VM lives in `executor::vm`.
//! - [`submitter`]: signs results (`submitter::signing`), records them, and
//!   with a chain relays them onchain (`submitter::relay`).
//! - [`listener`]: with a chain, turns `JobCreated`/`JobCancelled` events
//!   into jobs and cancellations.
//! - [`api`]: the socket server (JSON-RPC 2.0 and the bincode fast path).
//!
//! Shared by several actors:
//! - [`store`]: sled trees and the group commit.
//! - [`intake`]: admission and dispatch, for the socket and the listener.
//! - [`chain`]: contract bindings and a node client with deadlines.
//! - [`jobs`]: jobs in flight, admission, the bounded queue, nonces.
//! - [`protocol`]: InfinityVM ABI types, job IDs, EIP-191 signatures.
//! - [`config`], [`keys`], [`metrics`], [`replay`].

pub mod api;
pub mod chain;
pub mod config;
pub mod executor;
pub mod intake;
pub mod jobs;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod protocol;
pub mod registry;
pub mod replay;
pub mod store;
pub mod submitter;
pub mod supervisor;
