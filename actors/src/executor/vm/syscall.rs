//! The guest's syscalls (`ecall`, number in `a7`).

use super::memory::{AccessError, GuestMemory};
use crate::job::Failure;
use sha2::Digest;

/// `exit(a0 = code)`.
pub(crate) const EXIT: u32 = 93;
/// `write(a0 = fd, a1 = ptr, a2 = len)`.
pub(crate) const WRITE: u32 = 64;
/// `keccak256(a0 = ptr, a1 = len, a2 = out32)`.
pub(crate) const KECCAK256: u32 = 0x100;
/// `sha256(a0 = ptr, a1 = len, a2 = out32)`.
pub(crate) const SHA256: u32 = 0x101;

/// The job's output file descriptor.
const FD_OUTPUT: u32 = 3;
/// Cycles charged per 64-byte block (or part) hashed by a precompile.
pub(crate) const HASH_CYCLES_PER_BLOCK: u64 = 64;
/// Fixed cycles charged per precompile call.
pub(crate) const HASH_CYCLES_BASE: u64 = 16;
/// Bytes of fd 1/2 output kept per job.
pub(crate) const MAX_LOG_BYTES: usize = 4096;

/// What the run loop should do after a syscall.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Continue; `a0` gets this value; charge these extra cycles.
    Resume { ret: u32, cycles: u64 },
    /// The guest exited with this code.
    Exit(u32),
    /// The job fails.
    Fail(Failure),
}

/// Per-job state the syscalls write to.
#[derive(Debug, Default)]
pub(crate) struct JobIo {
    pub(crate) output: Vec<u8>,
    pub(crate) log: Vec<u8>,
    pub(crate) max_output_bytes: usize,
}

/// What syscall `number` charges on top of its `ecall`, known from its
/// arguments before it runs: the run loop checks it against the budget
/// first, so a precompile over the budget hashes nothing (found by the
/// fuzzer: a 30-cycle job could make the host hash up to its memory limit
/// before being refused).
pub(crate) fn cost(number: u32, args: [u32; 3]) -> u64 {
    match number {
        KECCAK256 | SHA256 => HASH_CYCLES_BASE + HASH_CYCLES_PER_BLOCK * u64::from(args[1]).div_ceil(64).max(1),
        _ => 0,
    }
}

/// Executes syscall `number` with arguments `a0..a2`.
pub(crate) fn dispatch(number: u32, args: [u32; 3], mem: &mut GuestMemory, io: &mut JobIo) -> Next {
    let [a0, a1, a2] = args;
    match number {
        EXIT => Next::Exit(a0),
        WRITE => write(a0, a1, a2, mem, io),
        KECCAK256 => hash(a0, a1, a2, mem, |data| alloy::primitives::keccak256(data).0),
        SHA256 => hash(a0, a1, a2, mem, |data| sha2::Sha256::digest(data).into()),
        other => Next::Fail(Failure::UnsupportedSyscall(other)),
    }
}

fn write(fd: u32, ptr: u32, len: u32, mem: &mut GuestMemory, io: &mut JobIo) -> Next {
    match fd {
        FD_OUTPUT => {
            let len_bytes = len as usize;
            if io.output.len().saturating_add(len_bytes) > io.max_output_bytes {
                return Next::Fail(Failure::OutputTooLarge);
            }
            match mem.read(ptr, len) {
                Ok(bytes) => io.output.extend_from_slice(bytes),
                Err(err) => return fault(err, ptr, len),
            }
        }
        1 | 2 => match mem.read(ptr, len) {
            Ok(bytes) => {
                let room = MAX_LOG_BYTES.saturating_sub(io.log.len());
                io.log.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Err(err) => return fault(err, ptr, len),
        },
        // Writes to any other descriptor are discarded, as by /dev/null.
        _ => {}
    }
    Next::Resume { ret: len, cycles: 0 }
}

fn hash(ptr: u32, len: u32, out: u32, mem: &mut GuestMemory, f: impl Fn(&[u8]) -> [u8; 32]) -> Next {
    let digest = match mem.read(ptr, len) {
        Ok(bytes) => f(bytes),
        Err(err) => return fault(err, ptr, len),
    };
    if let Err(err) = mem.write(out, &digest) {
        return fault(err, out, 32);
    }
    Next::Resume { ret: 0, cycles: cost(KECCAK256, [ptr, len, out]) }
}

fn fault(err: AccessError, addr: u32, len: u32) -> Next {
    Next::Fail(match err {
        AccessError::Fault => Failure::MemoryFault { addr, len },
        AccessError::LimitExceeded => Failure::MemoryLimitExceeded,
    })
}
