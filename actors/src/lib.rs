//! The coprocessor engine.
//!
//! # Layers
//!
//! Each layer uses only the layers below it (`make test` checks that no
//! module cycle exists):
//!
//! 1. The domain, shared by everything above: [`job`] (job IDs, specs,
//!    limits, outcomes, statuses, settlement steps), [`program`] (ELF
//!    validation, program IDs, the guest window), [`protocol`] (InfinityVM's
//!    ABI, the contracts' bindings, EIP-191 signatures), [`config`] and
//!    [`keys`].
//! 2. Infrastructure: `metrics`, `store` (sled trees and the group commit),
//!    `chain` (a node client with deadlines), `pool` (supervision as a
//!    library: sync pools, panic guards, restart counts, counted
//!    mailboxes), `cluster` (NATS JetStream, in cluster mode), `board`
//!    (jobs in flight), `intake` (admission) and
//!    `health` (the checks behind `coproc_health`, `/healthz`, `/readyz`).
//! 3. Actors, each in its own module with the messages it accepts:
//!    `registry` (programs), `executor` (runs jobs; the metered VM lives in
//!    `executor::vm`), `submitter` (signs and records results), `relayer`
//!    (settles them onchain), `listener` (onchain intake), `peers` (what a
//!    clustered engine shares with the others), `api` (the socket server). Actors meet only through messages: each holds
//!    `pool::Mailbox`es of the others, never their addresses.
//! 4. `supervisor`: the only module that names every actor. It starts
//!    them, recovers unfinished jobs and drains on shutdown ([`run`]).
//!
//! `replay` re-executes logged jobs against their records.

pub mod config;
pub mod job;
pub mod keys;
pub mod program;
pub mod protocol;

mod board;
mod chain;
mod cluster;
mod health;
mod intake;
mod metrics;
mod pool;
mod programs;
mod replay;
mod store;

mod api;
mod executor;
mod listener;
mod peers;
mod registry;
mod relayer;
mod submitter;
mod supervisor;

#[doc(hidden)]
pub mod fuzzing;

pub use api::ApiError;
pub use api::{fast_frame, wire};
pub use chain::job_state;
pub use chain::ChainError;
pub use cluster::ClusterError;
pub use executor::vm::{Vm, VmError, DEFAULT_MAX_INPUT_BYTES, STACK_TOP};
pub use health::{Check as HealthCheck, Health};
pub use metrics::{ActorSnapshot, EngineSnapshot, MetricsSnapshot};
pub use replay::{replay, Range as ReplayRange, ReplayError, ReplayReport};
pub use store::{Attempts, DiskFull, Execution, LogRecord, ResultRecord, Store, StoreError, Transition};
pub use supervisor::{create_data_dir, run, shutdown_signal, EngineError};
