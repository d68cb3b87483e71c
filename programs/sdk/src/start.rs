//! The entry point. The VM starts at `_start` with `sp = 0x8000_0000 - 16`,
//! `a0, a1` = onchain input pointer and length, `a2, a3` = offchain input
//! pointer and length. `_start` calls the Rust entry with those four values
//! as its C arguments; it saves them, runs the user's main (declared with
//! `entry!`), and exits with code 0. The same code serves rv32im and rv64im:
//! on rv64 the registers are 64 bits wide and the pointers and lengths are
//! zero-extended 32-bit values, so they arrive as valid `usize`s.
//!
//! The VM zero-fills `.bss` (memsz beyond filesz) and every untouched page,
//! so there is nothing to clear. No code relies on `gp` (lld does not relax
//! to it by default), so it is left alone.

use crate::io::{exit, save_inputs};

core::arch::global_asm!(
    ".section .text._start, \"ax\", @progbits",
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "    call {entry}",
    ".size _start, . - _start",
    entry = sym __coprocessor_sdk_start,
);

/// The Rust side of `_start`; see the module docs.
///
/// # Safety
/// Called once, by `_start`, with the input regions the VM mapped.
#[unsafe(no_mangle)]
unsafe extern "C" fn __coprocessor_sdk_start(
    onchain_ptr: *const u8,
    onchain_len: usize,
    offchain_ptr: *const u8,
    offchain_len: usize,
) -> ! {
    unsafe extern "Rust" {
        /// Defined by `entry!` in the guest binary.
        fn __coprocessor_main();
    }
    // SAFETY: the VM maps both regions read-only for the whole run.
    unsafe {
        save_inputs(onchain_ptr, onchain_len, offchain_ptr, offchain_len);
        __coprocessor_main();
    }
    exit(0)
}
