//! Syscall numbers and raw `ecall` wrappers (Guest ABI v1).
//!
//! The number goes in `a7`, arguments in `a0..a2`, the result comes back in
//! `a0`. Any other number fails the job with `UnsupportedSyscall(n)`.
//!
//! The same numbers and semantics hold on rv32im and rv64im; on rv64 the
//! registers are 64 bits wide and pointers and lengths are zero-extended
//! 32-bit values (every guest address lies below 0x8000_0000), so the
//! wrappers take `usize` and widen the `u32` number and exit code.

/// `exit(a0 = code)`: ends the job; 0 is success, anything else fails it
/// with `GuestExit(code)`.
pub const EXIT: u32 = 93;
/// `write(a0 = fd, a1 = ptr, a2 = len) -> a0 = len`.
pub const WRITE: u32 = 64;
/// `keccak256(a0 = ptr, a1 = len, a2 = out)`: writes 32 bytes at `out`.
pub const KECCAK256: u32 = 0x100;
/// `sha256(a0 = ptr, a1 = len, a2 = out)`: writes 32 bytes at `out`.
pub const SHA256: u32 = 0x101;

/// The log.
pub const FD_STDOUT: u32 = 1;
/// The error log.
pub const FD_STDERR: u32 = 2;
/// The job's output (the result): every write appends to it.
pub const FD_OUTPUT: u32 = 3;

/// Raw `ecall` with three arguments; returns `a0`.
///
/// # Safety
/// The arguments must be valid for the syscall: pointers must point to
/// memory of the given length, readable (and writable for outputs).
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
#[inline(always)]
pub unsafe fn ecall3(number: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds the syscall's contract; the asm may read and
    // write memory (no `nomem`/`readonly`), so the compiler keeps buffers
    // initialised before it and re-reads them after it. Every register is
    // passed as a full `usize`: on rv64 a `u32` operand would leave the upper
    // half of its register undefined.
    unsafe {
        core::arch::asm!(
            "ecall",
            in("a7") number as usize,
            inlateout("a0") a0 => ret,
            in("a1") a1,
            in("a2") a2,
            options(nostack),
        );
    }
    ret
}

/// `exit(code)`: never returns.
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
pub fn sys_exit(code: u32) -> ! {
    // SAFETY: exit takes no pointers.
    unsafe {
        core::arch::asm!("ecall", in("a7") EXIT as usize, in("a0") code as usize, options(nostack));
    }
    // The VM never resumes after exit; spin if one ever does.
    #[allow(clippy::empty_loop)]
    loop {}
}
