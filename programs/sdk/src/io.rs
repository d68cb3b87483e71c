//! Inputs, output, logging, exit, the hash precompiles and the panic
//! handler: everything that talks to the VM through syscalls.

use crate::syscall::{ecall3, sys_exit, FD_OUTPUT, FD_STDERR, FD_STDOUT, KECCAK256, SHA256, WRITE};
use core::fmt;
use core::ptr::addr_of;

/// (pointer, length) of the onchain and offchain inputs, saved by `_start`.
static mut INPUTS: [(*const u8, usize); 2] = [(core::ptr::null(), 0); 2];

/// Saves the input regions. Called once by `_start`, before `main`.
///
/// # Safety
/// Each pointer must be valid for reads of its length for the whole run.
pub(crate) unsafe fn save_inputs(on_ptr: *const u8, on_len: usize, off_ptr: *const u8, off_len: usize) {
    // SAFETY: single-threaded; nothing reads INPUTS before this runs.
    unsafe { INPUTS = [(on_ptr, on_len), (off_ptr, off_len)] };
}

fn input(which: usize) -> &'static [u8] {
    // SAFETY: INPUTS is written once, before main, and only read after.
    let (ptr, len) = unsafe { (*addr_of!(INPUTS))[which] };
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: the VM keeps the region mapped read-only for the whole run.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// The onchain input (mapped read-only at 0x9000_0000).
pub fn onchain_input() -> &'static [u8] {
    input(0)
}

/// The offchain input (mapped read-only at 0xA000_0000).
pub fn offchain_input() -> &'static [u8] {
    input(1)
}

/// Writes all of `bytes` to `fd` (1 = log, 2 = error log, 3 = output).
pub fn write(fd: u32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live, readable slice.
        let n = unsafe { ecall3(WRITE, fd as usize, bytes.as_ptr() as usize, bytes.len()) };
        if n == 0 || n > bytes.len() {
            // The VM wrote nothing or reported an error; do not spin.
            return;
        }
        bytes = &bytes[n..];
    }
}

/// Appends `bytes` to the job's output (fd 3). Several calls concatenate.
pub fn commit(bytes: &[u8]) {
    write(FD_OUTPUT, bytes);
}

/// Ends the job with `code` (0 = success). Never returns.
pub fn exit(code: u32) -> ! {
    sys_exit(code)
}

/// Writes `s` to the log (fd 1), as is (no newline added).
pub fn log(s: &str) {
    write(FD_STDOUT, s.as_bytes());
}

/// Writes `s` to the error log (fd 2), as is (no newline added).
pub fn eprint(s: &str) {
    write(FD_STDERR, s.as_bytes());
}

/// Ethereum's Keccak-256 of `data`, computed by the host (charged per
/// 64-byte block).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    hash_precompile(KECCAK256, data)
}

/// SHA-256 of `data`, computed by the host (charged per 64-byte block).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    hash_precompile(SHA256, data)
}

/// Calls the hash precompile `number` on `data`.
fn hash_precompile(number: u32, data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `data` is readable and `out` is 32 writable bytes.
    unsafe { ecall3(number, data.as_ptr() as usize, data.len(), out.as_mut_ptr() as usize) };
    out
}

/// Runs a guest's whole job: calls `job` with the onchain and offchain
/// inputs and commits its output; if it fails, panics (exit code 101) with
/// `name` and the error.
pub fn run_job<E: fmt::Display>(name: &str, job: impl FnOnce(&[u8], &[u8]) -> Result<alloc::vec::Vec<u8>, E>) {
    match job(onchain_input(), offchain_input()) {
        Ok(output) => commit(&output),
        Err(e) => panic!("{name}: {e}"),
    }
}

/// A `fmt::Write` that buffers on the stack and writes to a file descriptor
/// in as few syscalls as it can, without allocating.
struct FdWriter {
    fd: u32,
    len: usize,
    buf: [u8; 256],
}

impl FdWriter {
    fn new(fd: u32) -> Self {
        FdWriter { fd, len: 0, buf: [0; 256] }
    }

    fn flush(&mut self) {
        write(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for FdWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        if self.len + bytes.len() > self.buf.len() {
            self.flush();
        }
        if bytes.len() > self.buf.len() {
            write(self.fd, bytes);
        } else {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

/// The implementation of `println!` and `eprintln!`.
#[doc(hidden)]
pub fn _print(fd: u32, args: fmt::Arguments<'_>) {
    let mut w = FdWriter::new(fd);
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.flush();
}

/// Writes `panicked at FILE:LINE:COL: MESSAGE` to fd 2 and exits with 101.
/// It does not allocate, so it also works when the heap is exhausted.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut w = FdWriter::new(FD_STDERR);
    let _ = match info.location() {
        Some(loc) => fmt::Write::write_fmt(
            &mut w,
            format_args!("panicked at {}:{}:{}: {}\n", loc.file(), loc.line(), loc.column(), info.message()),
        ),
        None => fmt::Write::write_fmt(&mut w, format_args!("panicked: {}\n", info.message())),
    };
    w.flush();
    exit(crate::PANIC_EXIT_CODE)
}
