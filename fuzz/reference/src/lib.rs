//! A reference rv32im and rv64im interpreter for guest ABI v1 (`DESIGN.md`, "Guest ABI
//! v1"), written to be read: one instruction at a time, memory as a map of
//! pages, no unsafe, no Unicorn. It is the oracle the engine's metered VM is
//! fuzzed against (`fuzz/targets`), so it follows the ABI to the letter:
//!
//! - The image: validated `PT_LOAD` segments with their rights; a page that
//!   several segments share has the union of their rights.
//! - Every other page of `[0x1_0000, 0x8000_0000)` is a zero page, made on
//!   the job's first access to it (a load, a store, a fetch, or a syscall's
//!   read or write), and counted against `max_memory_bytes` (whole pages:
//!   the limit is `max_memory_bytes / 4096` pages, image pages included).
//!   Zero pages are readable and writable, never executable.
//! - The inputs are read-only at `0x9000_0000` and `0xA000_0000`, in regions
//!   of `max_input_bytes` rounded up to whole pages (at least one); bytes
//!   past an input read as zero. They do not count against the limit.
//! - At entry `sp = 0x8000_0000 - 16`, `a0, a1` = onchain pointer and
//!   length, `a2, a3` = offchain pointer and length; the rest are zero.
//! - One cycle per retired instruction, checked before each instruction: a
//!   job stops with `CycleLimitExceeded` (reporting `max_cycles`) when it
//!   would retire one more than its budget. An instruction that traps does
//!   not retire. `ecall` retires; then a precompile's charge (16 + 64 per
//!   64-byte block, at least one block: known from its length alone) is
//!   checked before it runs, and a charge beyond the rest of the budget
//!   stops the job with `CycleLimitExceeded`, nothing read or written.
//! - Misaligned loads and stores are byte accesses; their pages are checked
//!   in address order. A jump or taken branch to an address that is not
//!   4-byte aligned fails `MisalignedFetch` at the jump.
//! - rv64im ([`Xlen::Rv64`], an ELF64 guest): the same window, inputs,
//!   syscalls and cycles, with 64-bit registers (the entry values
//!   zero-extended). A load, store or fetch address above 4 GiB is a
//!   `MemoryFault` reporting it in full, never an alias of the low 4 GiB. A
//!   syscall number is matched in full (`0x1_0000_005d` is not `exit`); an
//!   exit code and a file descriptor are the register's low 32 bits; a
//!   syscall pointer or length above 4 GiB is a `MemoryFault` reporting both
//!   in full, checked before anything else the syscall does (a write to a
//!   descriptor other than 1, 2 and 3 reads nothing and returns the whole
//!   length), and a precompile's charge uses the whole length (saturating).

pub mod asm;
mod cpu;
mod memory;

pub use cpu::{run, Limits, Outcome, Stop};

/// First guest address of the window.
pub const GUEST_WINDOW_START: u32 = 0x0001_0000;
/// End (exclusive) of the window.
pub const GUEST_WINDOW_END: u32 = 0x8000_0000;
/// The page size.
pub const PAGE_SIZE: u32 = 4096;
/// Guest address of the onchain input.
pub const ONCHAIN_INPUT_ADDR: u32 = 0x9000_0000;
/// Guest address of the offchain input.
pub const OFFCHAIN_INPUT_ADDR: u32 = 0xA000_0000;
/// The stack pointer at entry.
pub const STACK_TOP: u32 = GUEST_WINDOW_END - 16;
/// Fixed cycles of a precompile call.
pub const HASH_CYCLES_BASE: u64 = 16;
/// Cycles per 64-byte block (or part of one) a precompile hashes.
pub const HASH_CYCLES_PER_BLOCK: u64 = 64;
/// Bytes of fd 1/2 output kept per job.
pub const MAX_LOG_BYTES: usize = 4096;

/// Access rights of a segment or page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Fetches allowed.
    pub exec: bool,
}

/// A loadable segment, already validated (inside the window, no W+X page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// First guest address.
    pub vaddr: u32,
    /// Size in memory; bytes past `data` are zero.
    pub mem_size: u32,
    /// The file bytes.
    pub data: Vec<u8>,
    /// Its rights.
    pub perms: Perms,
}

/// The register width: which ISA a program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Xlen {
    /// rv32im (an ELF32 guest).
    #[default]
    Rv32,
    /// rv64im (an ELF64 guest).
    Rv64,
}

/// A validated program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Its ISA.
    pub xlen: Xlen,
    /// Entry point.
    pub entry: u32,
    /// Its segments.
    pub segments: Vec<Segment>,
}

/// Why a job failed, as the ABI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// More than `max_cycles` needed.
    CycleLimitExceeded,
    /// More than `max_memory_bytes` touched.
    MemoryLimitExceeded,
    /// A refused access: a load's or store's effective address and width, a
    /// fetch's pc and 4, or a syscall's whole range.
    MemoryFault {
        /// First byte (64 bits on rv64im).
        addr: u64,
        /// Bytes.
        len: u64,
    },
    /// Not an instruction of the program's ISA (or a CSR/SYSTEM one other than `ecall`).
    IllegalInstruction {
        /// Its address.
        pc: u64,
    },
    /// A jump or taken branch to an address that is not 4-byte aligned.
    MisalignedFetch {
        /// The jump's address.
        pc: u64,
    },
    /// `ecall` with an undefined number.
    UnsupportedSyscall(u64),
    /// `exit` with a non-zero code.
    GuestExit(u32),
    /// More than `max_output_bytes` written to fd 3.
    OutputTooLarge,
}

/// An input larger than its region: the job cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTooLarge {
    /// "onchain" or "offchain".
    pub which: &'static str,
    /// Its length.
    pub len: usize,
    /// The region's capacity.
    pub capacity: usize,
}

/// The capacity of an input region for `max_input_bytes`: whole pages, at
/// least one.
pub fn input_capacity(max_input_bytes: usize) -> usize {
    max_input_bytes.max(1).div_ceil(PAGE_SIZE as usize) * PAGE_SIZE as usize
}
