//! What a job may use, and what a run produces.

use serde::{Deserialize, Serialize};

/// Why a job failed. A guest's own failure is an outcome, not an engine error.
///
/// Addresses, lengths and syscall numbers are `u64`: an rv64im guest's
/// registers are 64 bits wide, and a wild pointer above 4 GiB is reported
/// as it is, never truncated. The stored form is unchanged: bincode's
/// standard configuration writes integers as varints, so a value that fits
/// in 32 bits is the same bytes as a `u32` (records written before the
/// widening read back as they were; `store.format` stays).
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
        addr: u64,
        /// Bytes accessed.
        len: u64,
    },
    /// An instruction outside the program's ISA (rv32im or rv64im), any CSR
    /// or SYSTEM instruction other than `ecall`, or an undecodable word.
    #[error("illegal instruction at pc {pc:#010x}")]
    IllegalInstruction {
        /// Address of the instruction.
        pc: u64,
    },
    /// A jump or branch to an address that is not 4-byte aligned.
    #[error("misaligned jump at pc {pc:#010x}")]
    MisalignedFetch {
        /// Address of the jump or branch.
        pc: u64,
    },
    /// `ecall` with a number the guest ABI does not define (all of `a7`).
    #[error("unsupported syscall {0}")]
    UnsupportedSyscall(u64),
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

#[cfg(test)]
mod tests {
    use super::Failure;
    use serde::Serialize;

    /// `Failure` as it was stored before addresses were widened to `u64`.
    #[derive(Serialize)]
    enum Failure32 {
        CycleLimitExceeded,
        MemoryLimitExceeded,
        MemoryFault { addr: u32, len: u32 },
        IllegalInstruction { pc: u32 },
        MisalignedFetch { pc: u32 },
        UnsupportedSyscall(u32),
        GuestExit(u32),
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("encode")
    }

    #[test]
    fn widened_failures_keep_the_stored_bytes_of_32_bit_values() {
        let cases = [
            (Failure32::CycleLimitExceeded, Failure::CycleLimitExceeded),
            (Failure32::MemoryLimitExceeded, Failure::MemoryLimitExceeded),
            (
                Failure32::MemoryFault { addr: 0xffff_fff0, len: 0x8000_0000 },
                Failure::MemoryFault { addr: 0xffff_fff0, len: 0x8000_0000 },
            ),
            (Failure32::MemoryFault { addr: 0x102, len: 2 }, Failure::MemoryFault { addr: 0x102, len: 2 }),
            (Failure32::IllegalInstruction { pc: 0x7fff_fffc }, Failure::IllegalInstruction { pc: 0x7fff_fffc }),
            (Failure32::MisalignedFetch { pc: 0x10004 }, Failure::MisalignedFetch { pc: 0x10004 }),
            (Failure32::UnsupportedSyscall(u32::MAX), Failure::UnsupportedSyscall(u64::from(u32::MAX))),
            (Failure32::GuestExit(3), Failure::GuestExit(3)),
        ];
        for (old, new) in cases {
            let bytes = encode(&old);
            assert_eq!(bytes, encode(&new), "{new:?}");
            let (decoded, _): (Failure, usize) =
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).expect("decode");
            assert_eq!(decoded, new);
        }
        let wide = Failure::MemoryFault { addr: 0x1_0000_0010, len: 8 };
        let (decoded, _): (Failure, usize) =
            bincode::serde::decode_from_slice(&encode(&wide), bincode::config::standard()).expect("decode");
        assert_eq!(decoded, wide);
        assert_eq!(wide.to_string(), "memory fault at 0x100000010 (8 bytes)");
    }
}
