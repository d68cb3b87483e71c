//! What the store holds: state transitions and job entries, and the result
//! served from them. All bincode-encoded (standard config); the job log's
//! keys are big-endian u64.

use crate::job::{Failure, JobId, JobSpec, Settlement, Status};
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// The outcome of a job as served, with its signed result.
///
/// It is not stored as such: the log's [`Execution`] record keeps what the
/// run produced and the operator's signature, and the signed bytes
/// (`ResultWithMetadata`) are rebuilt from the job's spec, since ABI
/// encoding is deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// The guest's exit code, if it exited.
    pub exit_code: Option<u32>,
    /// Cycles used.
    pub cycles: u64,
    /// Guest memory used.
    pub peak_memory_bytes: u64,
    /// The guest's output.
    pub output: Vec<u8>,
    /// Why the job failed, if it did.
    pub failure: Option<Failure>,
    /// `abi.encode(ResultWithMetadata)` (or the offchain variant); empty for
    /// a failed job, which is not signed or relayed.
    pub result_with_metadata: Vec<u8>,
    /// The operator's EIP-191 signature over `result_with_metadata`.
    pub signature: Vec<u8>,
}

impl ResultRecord {
    /// The status this result gives its job.
    pub fn status(&self) -> Status {
        if self.failure.is_none() {
            Status::Done
        } else {
            Status::Failed
        }
    }

    /// The served result of `spec` from its log record.
    pub fn rebuild(spec: &JobSpec, execution: Execution) -> ResultRecord {
        let result_with_metadata =
            if execution.failure.is_none() { spec.result_with_metadata(&execution.output) } else { Vec::new() };
        ResultRecord {
            exit_code: execution.exit_code,
            cycles: execution.cycles,
            peak_memory_bytes: execution.peak_memory_bytes,
            output: execution.output,
            failure: execution.failure,
            result_with_metadata,
            signature: execution.signature,
        }
    }

    /// What the log keeps of it, by reference.
    pub(crate) fn execution(&self) -> ExecutionRef<'_> {
        ExecutionRef {
            exit_code: self.exit_code,
            cycles: self.cycles,
            peak_memory_bytes: self.peak_memory_bytes,
            output: &self.output,
            failure: &self.failure,
            signature: &self.signature,
        }
    }
}

/// The job log's record of an execution: what the run produced, and the
/// operator's signature over the result (empty for a failed job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The guest's exit code, if it exited.
    pub exit_code: Option<u32>,
    /// Cycles used.
    pub cycles: u64,
    /// Guest memory used.
    pub peak_memory_bytes: u64,
    /// The guest's output.
    pub output: Vec<u8>,
    /// Why the job failed, if it did.
    pub failure: Option<Failure>,
    /// The operator's EIP-191 signature over the result.
    pub signature: Vec<u8>,
}

/// An [`Execution`] by reference (same fields, same encoding).
#[derive(Serialize)]
pub(crate) struct ExecutionRef<'a> {
    exit_code: Option<u32>,
    cycles: u64,
    peak_memory_bytes: u64,
    output: &'a [u8],
    failure: &'a Option<Failure>,
    signature: &'a [u8],
}

/// One state transition in the job log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    /// Accepted and durable.
    Pending(JobSpec),
    /// Executed (done or failed).
    Executed(Execution),
    /// A step of its settlement onchain.
    Settled(Settlement),
}

/// A job log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The job.
    pub job_id: JobId,
    /// Wall-clock time of the transition, in ms since the Unix epoch.
    pub unix_ms: u64,
    /// What happened.
    pub transition: Transition,
}

/// The `jobs` tree's value: a job's current state and where its records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntry {
    /// The consumer.
    pub consumer: Address,
    /// The consumer's nonce.
    pub nonce: u64,
    /// The current status.
    pub status: Status,
    /// Sequence number of its `Pending` record.
    pub pending_seq: u64,
    /// Sequence number of its `Executed` record, once executed.
    pub executed_seq: Option<u64>,
    /// Its latest result transaction, once submitted.
    pub tx_hash: Option<[u8; 32]>,
}

/// The `attempts` tree's value: the failed attempts to run a job (its
/// execution panicked the host), kept durably so that a job that always
/// fails this way is quarantined after `executor.max_attempts`, across
/// restarts too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    /// The `Pending` record of the job they belong to: a nonce reused after
    /// a failure is another job, which starts again from none.
    pub pending_seq: u64,
    /// Attempts that failed.
    pub count: u8,
    /// Why the last one failed.
    pub reason: String,
}

/// The `program_info` tree's value: what a program was registered as.
/// Names are labels: the program ID stays keccak256 of the ELF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramInfo {
    /// Its name (the last one given; empty for a program registered
    /// before names existed).
    pub name: String,
    /// The ELF's size.
    pub size_bytes: u64,
    /// When it was first registered (0: before this was recorded).
    pub registered_unix_ms: u64,
}

/// The `program_stats` tree's value: the jobs of a program that ran to a
/// result, and the cycles they used, kept by the group commit with the
/// results themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStats {
    /// Jobs recorded done or failed.
    pub jobs: u64,
    /// Cycles those jobs used.
    pub cycles: u64,
}

/// A [`LogRecord`] by reference: the same bincode bytes, without copying
/// the job's inputs to build one.
#[derive(Serialize)]
pub(crate) struct LogRecordRef<'a> {
    pub(crate) job_id: JobId,
    pub(crate) unix_ms: u64,
    pub(crate) transition: TransitionRef<'a>,
}

/// A [`Transition`] by reference (same variant order, same encoding).
#[derive(Serialize)]
pub(crate) enum TransitionRef<'a> {
    Pending(&'a JobSpec),
    Executed(ExecutionRef<'a>),
    Settled(&'a Settlement),
}

/// bincode's standard configuration, for every stored value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for these plain data types.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

/// Decodes a stored value.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(value, _)| value)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A done job's result for tests: exit code 0, 7 cycles, 4 KiB of memory,
/// no signature.
#[cfg(test)]
pub(crate) fn test_result(output: &[u8], failure: Option<Failure>) -> ResultRecord {
    ResultRecord {
        exit_code: Some(0),
        cycles: 7,
        peak_memory_bytes: 4096,
        output: output.to_vec(),
        failure,
        result_with_metadata: vec![],
        signature: vec![],
    }
}
