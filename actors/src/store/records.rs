//! What the store holds: job specs, state transitions, results. All
//! bincode-encoded (standard config); the job log's keys are big-endian u64.

use crate::executor::vm::Failure;
use crate::registry::elf::ProgramId;
use serde::{Deserialize, Serialize};

/// A job ID: `keccak256(abi.encodePacked(uint64 nonce, address consumer))`.
pub type JobId = [u8; 32];

/// Where a job came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// A signed request over the socket. The signed bytes,
    /// `abi.encode(OffchainJobRequest)`, are not kept: ABI encoding is
    /// canonical, so the spec's fields rebuild them exactly.
    Offchain {
        /// The consumer signer's signature, 65 bytes `r ‖ s ‖ v`.
        signature: Vec<u8>,
        /// Relay in nonce order (InfinityVM's `RelayStrategy::Ordered`).
        ordered: bool,
    },
    /// A `JobCreated` event.
    Onchain,
}

/// Everything needed to run (or re-run) a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job ID.
    pub id: JobId,
    /// The consumer's nonce.
    pub nonce: u64,
    /// The consumer contract.
    pub consumer: [u8; 20],
    /// The program to run.
    pub program_id: ProgramId,
    /// The cycle limit.
    pub max_cycles: u64,
    /// The memory limit the job runs with (recorded so replay is exact
    /// even if the configuration changes).
    pub max_memory_bytes: u64,
    /// The output limit the job runs with.
    pub max_output_bytes: u64,
    /// The onchain input.
    pub onchain_input: Vec<u8>,
    /// The offchain input (empty for onchain jobs).
    pub offchain_input: Vec<u8>,
    /// Where the job came from.
    pub origin: Origin,
}

impl JobSpec {
    /// The VM limits of this job.
    pub fn limits(&self) -> crate::executor::vm::JobLimits {
        crate::executor::vm::JobLimits {
            max_cycles: self.max_cycles,
            max_memory_bytes: self.max_memory_bytes,
            max_output_bytes: usize::try_from(self.max_output_bytes).unwrap_or(usize::MAX),
        }
    }

    /// Input bytes the job holds in memory.
    pub fn input_bytes(&self) -> usize {
        self.onchain_input.len() + self.offchain_input.len()
    }
}

/// A job's status (DESIGN.md, Jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Status {
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
        }
    }

    /// Whether the job has left the executors for good: executed, or
    /// cancelled before it ran. A result that arrives later is dropped.
    pub fn is_executed(self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }

    /// Whether nothing more happens to the job onchain.
    pub fn is_settled(self) -> bool {
        matches!(self, Status::Confirmed | Status::Cancelled)
    }
}

/// The outcome of a job as stored and served, with its signed result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// What the job log keeps of it: enough to check a replay.
    pub fn summary(&self) -> ResultSummary {
        ResultSummary {
            exit_code: self.exit_code,
            cycles: self.cycles,
            output_hash: alloy::primitives::keccak256(&self.output).0,
            failure: self.failure.clone(),
        }
    }
}

/// The job log's record of an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultSummary {
    /// The guest's exit code, if it exited.
    pub exit_code: Option<u32>,
    /// Cycles used.
    pub cycles: u64,
    /// keccak256 of the output.
    pub output_hash: [u8; 32],
    /// Why the job failed, if it did.
    pub failure: Option<Failure>,
}

/// One state transition in the job log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    /// Accepted and durable.
    Pending(JobSpec),
    /// Executed (done or failed).
    Executed(ResultSummary),
    /// Its result transaction was sent.
    Submitted {
        /// The transaction.
        tx_hash: [u8; 32],
    },
    /// Its result transaction is `confirmations` deep.
    Confirmed {
        /// The transaction (zero when the job was found settled onchain by
        /// a transaction this engine no longer knows, e.g. after a crash).
        tx_hash: [u8; 32],
        /// The block that included it.
        block: u64,
    },
    /// Cancelled onchain before it settled.
    Cancelled,
    /// Moved to the dead-letter tree.
    DeadLettered(DeadLetter),
    /// Pushed again from the dead-letter tree.
    Retried,
}

/// Why a job is in the dead-letter tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Failed submissions.
    pub attempts: u32,
    /// The last failure.
    pub reason: String,
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
    pub consumer: [u8; 20],
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
    Executed(&'a ResultSummary),
    Submitted { tx_hash: [u8; 32] },
    Confirmed { tx_hash: [u8; 32], block: u64 },
    Cancelled,
    DeadLettered(&'a DeadLetter),
    Retried,
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

/// A job spec for tests: consumer 0x0101…01, program 0x0202…02, an onchain
/// input of `input_bytes` bytes.
#[cfg(test)]
pub(crate) fn test_spec(nonce: u64, input_bytes: usize) -> JobSpec {
    JobSpec {
        id: crate::protocol::abi::job_id(nonce, alloy::primitives::Address::repeat_byte(1)).0,
        nonce,
        consumer: [1; 20],
        program_id: ProgramId([2; 32]),
        max_cycles: 100,
        max_memory_bytes: 1 << 20,
        max_output_bytes: 1 << 20,
        onchain_input: vec![nonce as u8; input_bytes],
        offchain_input: vec![],
        origin: Origin::Onchain,
    }
}
