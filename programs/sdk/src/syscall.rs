//! Syscall numbers and raw `ecall` wrappers (Guest ABI v1).
//!
//! The number goes in `a7`, arguments in `a0..a2`, the result comes back in
//! `a0`. Any other number fails the job with `UnsupportedSyscall(n)`.

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
#[cfg(target_arch = "riscv32")]
#[inline(always)]
pub unsafe fn ecall3(number: u32, a0: u32, a1: u32, a2: u32) -> u32 {
    let ret: u32;
    // SAFETY: the caller upholds the syscall's contract; the asm may read and
    // write memory (no `nomem`/`readonly`), so the compiler keeps buffers
    // initialised before it and re-reads them after it.
    unsafe {
        core::arch::asm!(
            "ecall",
            in("a7") number,
            inlateout("a0") a0 => ret,
            in("a1") a1,
            in("a2") a2,
            options(nostack),
        );
    }
    ret
}

/// `exit(code)`: never returns.
#[cfg(target_arch = "riscv32")]
pub fn sys_exit(code: u32) -> ! {
    // SAFETY: exit takes no pointers.
    unsafe {
        core::arch::asm!("ecall", in("a7") EXIT, in("a0") code, options(nostack));
    }
    // The VM never resumes after exit; spin if one ever does.
    #[allow(clippy::empty_loop)]
    loop {}
}
