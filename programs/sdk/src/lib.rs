//! Guest SDK for coprocessor programs (Guest ABI v1: rv32im or rv64im, bare
//! metal).
//!
//! A guest is a `#![no_std] #![no_main]` binary for
//! `riscv32im-unknown-none-elf` or `riscv64im-unknown-none-elf` (the same
//! source, the same ABI: the VM runs an ELF32 as rv32im and an ELF64 as
//! rv64im) that names its main function with [`entry!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! coprocessor_sdk::entry!(main);
//!
//! fn main() {
//!     let input = coprocessor_sdk::onchain_input();
//!     coprocessor_sdk::commit(&coprocessor_sdk::keccak256(input));
//! }
//! ```
//!
//! When `main` returns the program exits with code 0. A panic writes its
//! message to fd 2 and exits with code 101. `alloc` (`Vec`, `String`, ...)
//! works through a bump allocator. Link the binary with `link.x`, as
//! `programs/guest-build.rs` does.
//!
//! # Layout
//! - [`entry!`] and the `_start` entry point (`start`, private).
//! - Inputs: [`onchain_input`], [`offchain_input`].
//! - Output and exit: [`commit`], [`exit`]; [`run_job`] wires a
//!   `run(onchain, offchain)` function to both.
//! - Logging: [`log`], [`eprint`], [`println!`], [`eprintln!`], [`write`].
//! - Precompiles: [`keccak256`], [`sha256`].
//! - Memory: the global bump allocator ([`heap_used`]).
//! - [`abi`]: Solidity ABI helpers (the `coprocessor-abi` crate).
//! - [`syscall`]: the raw syscall numbers and `ecall` wrappers.
//!
//! Everything that only makes sense inside the VM is compiled only for
//! `target_arch = "riscv32"` or `"riscv64"`; on other targets this crate is
//! a thin shell holding [`abi`], [`entry!`] and the ABI constants, so a
//! workspace that also builds for the host still compiles.
#![no_std]

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
extern crate alloc;

pub use coprocessor_abi as abi;

pub mod syscall;

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
mod heap;
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
mod io;
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
mod start;

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
pub use heap::heap_used;
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
#[doc(hidden)]
pub use io::_print;
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
pub use io::{commit, eprint, exit, keccak256, log, offchain_input, onchain_input, run_job, sha256, write};

/// Where the VM maps the onchain input (read-only).
pub const ONCHAIN_INPUT_ADDR: usize = 0x9000_0000;
/// Where the VM maps the offchain input (read-only).
pub const OFFCHAIN_INPUT_ADDR: usize = 0xA000_0000;
/// The stack pointer at entry; the stack grows down from here.
pub const STACK_TOP: usize = 0x8000_0000 - 16;
/// The heap may not grow past this address; an allocation that would is a
/// failure (and `alloc` turns that into a panic, so exit code 101).
pub const HEAP_LIMIT: usize = 0x7000_0000;
/// The exit code of a guest that panicked.
pub const PANIC_EXIT_CODE: u32 = 101;

/// Declares the guest's main function: `entry!(main)` where `main` is a
/// `fn()`. The SDK's `_start` saves the inputs, calls it, and exits with
/// code 0 when it returns.
#[macro_export]
macro_rules! entry {
    ($path:path) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub fn __coprocessor_main() {
            let main: fn() = $path;
            main()
        }
    };
}

/// Formats to the log (fd 1), with a newline, like `std::println!`.
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
#[macro_export]
macro_rules! println {
    () => { $crate::_print($crate::syscall::FD_STDOUT, format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::_print($crate::syscall::FD_STDOUT, format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Formats to the error log (fd 2), with a newline, like `std::eprintln!`.
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
#[macro_export]
macro_rules! eprintln {
    () => { $crate::_print($crate::syscall::FD_STDERR, format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::_print($crate::syscall::FD_STDERR, format_args!("{}\n", format_args!($($arg)*)))
    };
}
