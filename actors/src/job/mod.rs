//! Jobs: the engine's shared vocabulary, below every actor and the store.
//!
//! - [`JobId`] names a job; [`JobSpec`] is everything needed to run it,
//!   built by one constructor per [`Origin`] that share one limits check.
//! - [`JobLimits`], [`JobOutcome`] and [`Failure`] are what a run may use
//!   and what it produces.
//! - [`Status`] is where a job is; [`Settlement`] names the steps after
//!   execution and which status each may follow.

mod id;
mod outcome;
mod settlement;
mod spec;

pub use id::JobId;
pub use outcome::{Failure, JobLimits, JobOutcome};
pub use settlement::{DeadLetter, Settlement};
pub(crate) use spec::check as check_limits;
pub use spec::{JobSpec, Origin, SpecError};

use serde::{Deserialize, Serialize};

/// A job's status (DESIGN.md, Jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Durable, waiting for an executor.
    Pending,
    /// On an executor.
    Running,
    /// Executed with exit code 0; its result is signed.
    Done,
    /// Executed and failed (see the result's failure).
    Failed,
    /// Sent onchain.
    Submitted,
    /// Confirmed onchain.
    Confirmed,
    /// Cancelled onchain (`JobCancelled`) before it settled.
    Cancelled,
    /// Its submission failed `chain.max_relay_attempts` times; it waits in
    /// the dead-letter tree for `coprocessor job retry`.
    DeadLettered,
    /// Settled onchain by someone else (another engine on the same
    /// JobManager) before this engine's result landed; never sent again.
    AlreadySettled,
}

impl Status {
    /// Every status, in the order a job may meet them.
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Running,
        Status::Done,
        Status::Failed,
        Status::Submitted,
        Status::Confirmed,
        Status::Cancelled,
        Status::DeadLettered,
        Status::AlreadySettled,
    ];

    /// The lowercase name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Submitted => "submitted",
            Status::Confirmed => "confirmed",
            Status::Cancelled => "cancelled",
            Status::DeadLettered => "dead-lettered",
            Status::AlreadySettled => "already-settled",
        }
    }

    /// Whether the job has left the executors for good: executed, or
    /// cancelled before it ran. A result that arrives later is dropped.
    pub fn is_executed(self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }

    /// Whether nothing more happens to the job onchain.
    pub fn is_settled(self) -> bool {
        matches!(self, Status::Confirmed | Status::Cancelled | Status::AlreadySettled)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
pub(crate) use spec::test_spec;
