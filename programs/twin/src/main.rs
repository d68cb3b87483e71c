//! The `twin` binary: `twin <workload> <onchain-file> <offchain-file>` runs
//! one workload (see the library) on the two files' contents, writes its
//! output bytes to stdout and exits 0. An unknown workload, a wrong number
//! of arguments or an unreadable file: a message on stderr, exit 2. A
//! failing workload: a message on stderr, exit 101 (as its guest would).
//!
//! Built for `riscv32im-unknown-none-elf` / `riscv64im-unknown-none-elf` as
//! a static Linux user-mode program (its own `_start`, Linux syscalls, a
//! bump allocator over a `.bss` arena) to run under `qemu-riscv32` /
//! `qemu-riscv64`: see `linux.rs`. On any other target it only says so.
#![cfg_attr(any(target_arch = "riscv32", target_arch = "riscv64"), no_std, no_main)]

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
extern crate alloc;

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
mod linux;

#[cfg(not(any(target_arch = "riscv32", target_arch = "riscv64")))]
fn main() {
    eprintln!("twin: a Linux user-mode program for riscv32im/riscv64im; build it with programs/build.sh --twins");
    std::process::exit(twin::USAGE_EXIT_CODE);
}

/// The program proper, called by `linux::start` with the arguments;
/// returns the exit code.
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
fn twin_main(args: &[&core::ffi::CStr]) -> i32 {
    use linux::{eprint_fmt, read_file, write_all, Lossy, STDOUT};

    let [_, workload, onchain_path, offchain_path] = args else {
        eprint_fmt(format_args!(
            "usage: twin <workload> <onchain-file> <offchain-file>; workloads: {}\n",
            twin::WORKLOADS.join(", ")
        ));
        return twin::USAGE_EXIT_CODE;
    };
    // Checked before reading the files, so a wrong name is reported as such.
    let workload = match workload.to_str() {
        Ok(w) if twin::WORKLOADS.contains(&w) => w,
        _ => {
            let error = twin::Error::UnknownWorkload(alloc::format!("{}", Lossy(workload.to_bytes())));
            eprint_fmt(format_args!("twin: {error}\n"));
            return twin::USAGE_EXIT_CODE;
        }
    };
    let read = |path: &core::ffi::CStr| {
        read_file(path).map_err(|errno| {
            eprint_fmt(format_args!("twin: cannot read {}: {errno}\n", Lossy(path.to_bytes())));
        })
    };
    let Ok(onchain) = read(onchain_path) else {
        return twin::USAGE_EXIT_CODE;
    };
    let Ok(offchain) = read(offchain_path) else {
        return twin::USAGE_EXIT_CODE;
    };
    match twin::run(workload, &onchain, &offchain) {
        Ok(output) => match write_all(STDOUT, &output) {
            Ok(()) => 0,
            Err(errno) => {
                eprint_fmt(format_args!("twin: cannot write the output to stdout: {errno}\n"));
                1
            }
        },
        Err(error @ twin::Error::UnknownWorkload(_)) => {
            eprint_fmt(format_args!("twin: {error}\n"));
            twin::USAGE_EXIT_CODE
        }
        Err(error @ twin::Error::Job { .. }) => {
            eprint_fmt(format_args!("twin: {error}\n"));
            twin::PANIC_EXIT_CODE
        }
    }
}
