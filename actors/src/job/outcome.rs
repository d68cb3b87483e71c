//! What a job may use, and what a run produces.

use serde::{Deserialize, Serialize};

/// Why a job failed. A guest's own failure is an outcome, not an engine error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    /// The job needed more than `max_cycles`.
    #[error("cycle limit exceeded")]
    CycleLimitExceeded,
    /// The job touched more memory than `max_memory_bytes`.
    #[error("memory limit exceeded")]
    MemoryLimitExceeded,
    /// A load, store or fetch outside mapped memory or against page rights.
    #[error("memory fault at {addr:#010x} ({len} bytes)")]
    MemoryFault {
        /// First byte of the access.
        addr: u32,
        /// Bytes accessed.
        len: u32,
    },
    /// An instruction outside rv32im, any CSR or SYSTEM instruction other
    /// than `ecall`, or an undecodable word.
    #[error("illegal instruction at pc {pc:#010x}")]
    IllegalInstruction {
        /// Address of the instruction.
        pc: u32,
    },
    /// A jump or branch to an address that is not 4-byte aligned.
    #[error("misaligned jump at pc {pc:#010x}")]
    MisalignedFetch {
        /// Address of the jump or branch.
        pc: u32,
    },
    /// `ecall` with a number the guest ABI does not define.
    #[error("unsupported syscall {0}")]
    UnsupportedSyscall(u32),
    /// The guest called `exit` with a non-zero code.
    #[error("guest exited with code {0}")]
    GuestExit(u32),
    /// The guest wrote more than `max_output_bytes` to its output.
    #[error("output too large")]
    OutputTooLarge,
    /// Running the job failed the host `attempts` times (a panic in the
    /// engine, not the guest's failure): it is not tried again. Never a
    /// VM outcome; the executor records it (`executor.max_attempts`).
    #[error("quarantined after {attempts} attempts: {reason}")]
    Quarantined {
        /// Attempts made.
        attempts: u8,
        /// Why the last one failed ("host panic: ...").
        reason: String,
    },
}

/// The result of running one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutcome {
    /// Bytes the guest wrote to fd 3 (the result).
    pub output: Vec<u8>,
    /// The guest's exit code (`None` if it never called `exit`).
    pub exit_code: Option<u32>,
    /// Instructions retired, plus syscall costs.
    pub cycles: u64,
    /// Guest memory used: image pages plus every fresh page touched.
    pub peak_memory_bytes: u64,
    /// `None` when the job is done, otherwise why it failed.
    pub failure: Option<Failure>,
    /// What the guest wrote to fd 1 and fd 2, truncated.
    pub log: Vec<u8>,
}

impl JobOutcome {
    /// Whether the job finished with exit code 0.
    pub fn is_done(&self) -> bool {
        self.failure.is_none()
    }
}

/// Limits of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Instructions (plus syscall costs) the job may use. Exact: a job that
    /// needs N cycles succeeds with N and fails with N - 1.
    pub max_cycles: u64,
    /// Guest memory (image plus touched pages) the job may use.
    pub max_memory_bytes: u64,
    /// Bytes the job may write to its output (inclusive).
    pub max_output_bytes: usize,
}

impl Default for JobLimits {
    /// The engine defaults: 10^9 cycles, 256 MiB, 1 MiB of output.
    fn default() -> Self {
        JobLimits { max_cycles: 1_000_000_000, max_memory_bytes: 256 << 20, max_output_bytes: 1 << 20 }
    }
}
