//! The guest's syscalls (`ecall`, number in `a7`).
//!
//! The number and the arguments `a0..a2` are read as whole registers
//! (`u64`; an rv32im guest's are zero-extended). A pointer or a length is
//! used only if it fits in 32 bits: on rv64im, `0x1_0000_0010` is a memory
//! fault, never an alias of `0x10`. A number is matched in full, so
//! `0x1_0000_005d` is not `exit`. An exit code and a file descriptor are C
//! `int`s, which the RISC-V psABI passes sign-extended to the register's
//! width: their low 32 bits are the value.

use super::memory::{AccessError, GuestMemory};
use crate::job::Failure;
use sha2::Digest;

/// `exit(a0 = code)`.
pub(crate) const EXIT: u64 = 93;
/// `write(a0 = fd, a1 = ptr, a2 = len)`.
pub(crate) const WRITE: u64 = 64;
/// `keccak256(a0 = ptr, a1 = len, a2 = out32)`.
pub(crate) const KECCAK256: u64 = 0x100;
/// `sha256(a0 = ptr, a1 = len, a2 = out32)`.
pub(crate) const SHA256: u64 = 0x101;

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
    Resume { ret: u64, cycles: u64 },
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
pub(crate) fn cost(number: u64, args: [u64; 3]) -> u64 {
    match number {
        KECCAK256 | SHA256 => {
            HASH_CYCLES_PER_BLOCK.saturating_mul(args[1].div_ceil(64).max(1)).saturating_add(HASH_CYCLES_BASE)
        }
        _ => 0,
    }
}

/// The low 32 bits of a register holding a C `int` (sign-extended on rv64).
fn int_arg(reg: u64) -> u32 {
    (reg & u64::from(u32::MAX)) as u32
}

/// Executes syscall `number` with arguments `a0..a2`.
pub(crate) fn dispatch(number: u64, args: [u64; 3], mem: &mut GuestMemory, io: &mut JobIo) -> Next {
    let [a0, a1, a2] = args;
    match number {
        EXIT => Next::Exit(int_arg(a0)),
        WRITE => write(int_arg(a0), a1, a2, mem, io),
        KECCAK256 => hash(a0, a1, a2, mem, |data| alloy::primitives::keccak256(data).0),
        SHA256 => hash(a0, a1, a2, mem, |data| sha2::Sha256::digest(data).into()),
        other => Next::Fail(Failure::UnsupportedSyscall(other)),
    }
}

/// A guest span `(ptr, len)` as the 32-bit values memory takes, or the
/// fault it is: a pointer or length above 4 GiB is outside the window, and
/// is reported in full. An empty span touches nothing, wherever it points.
fn span(ptr: u64, len: u64) -> Result<(u32, u32), Next> {
    if len == 0 {
        return Ok((0, 0));
    }
    match (u32::try_from(ptr), u32::try_from(len)) {
        (Ok(ptr), Ok(len)) => Ok((ptr, len)),
        _ => Err(Next::Fail(Failure::MemoryFault { addr: ptr, len })),
    }
}

fn write(fd: u32, ptr: u64, len: u64, mem: &mut GuestMemory, io: &mut JobIo) -> Next {
    let (ptr, len) = match span(ptr, len) {
        Ok(span) => span,
        // Discarded descriptors read nothing, so they cannot fault.
        Err(_) if !matches!(fd, FD_OUTPUT | 1 | 2) => return Next::Resume { ret: len, cycles: 0 },
        Err(failure) => return failure,
    };
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
    Next::Resume { ret: u64::from(len), cycles: 0 }
}

fn hash(ptr: u64, len: u64, out: u64, mem: &mut GuestMemory, f: impl Fn(&[u8]) -> [u8; 32]) -> Next {
    let cycles = cost(KECCAK256, [ptr, len, out]);
    let (ptr, len) = match span(ptr, len) {
        Ok(span) => span,
        Err(failure) => return failure,
    };
    let out = match span(out, 32) {
        Ok((out, _)) => out,
        Err(failure) => return failure,
    };
    let digest = match mem.read(ptr, len) {
        Ok(bytes) => f(bytes),
        Err(err) => return fault(err, ptr, len),
    };
    if let Err(err) = mem.write(out, &digest) {
        return fault(err, out, 32);
    }
    Next::Resume { ret: 0, cycles }
}

fn fault(err: AccessError, addr: u32, len: u32) -> Next {
    Next::Fail(match err {
        AccessError::Fault => Failure::MemoryFault { addr: u64::from(addr), len: u64::from(len) },
        AccessError::LimitExceeded => Failure::MemoryLimitExceeded,
    })
}
