//! Just enough of a Linux user-mode runtime for the twin, with no libc:
//! `_start`, the five syscalls it needs, a bump allocator over a static
//! `.bss` arena, and a panic handler.
//!
//! Syscalls use the RISC-V Linux convention: the number in `a7`, arguments
//! in `a0..a5`, the result in `a0` (negative: `-errno`); the numbers are the
//! generic table's (openat 56, close 57, read 63, write 64, exit_group 94),
//! the same on riscv32 and riscv64.

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::fmt;
use core::ptr::{addr_of, addr_of_mut, null_mut};

const SYS_OPENAT: usize = 56;
const SYS_CLOSE: usize = 57;
const SYS_READ: usize = 63;
const SYS_WRITE: usize = 64;
const SYS_EXIT_GROUP: usize = 94;

/// `openat`'s "relative to the current directory".
const AT_FDCWD: isize = -100;
const O_RDONLY: usize = 0;
const O_CLOEXEC: usize = 0o2_000_000;
const EINTR: isize = 4;

/// Standard output: the workload's output bytes.
pub(crate) const STDOUT: usize = 1;
/// Standard error: messages.
const STDERR: usize = 2;

/// Largest arguments [`twin_main`](crate::twin_main) accepts (it wants 4).
const MAX_ARGS: usize = 8;

// Linux starts a static program at `_start` with `sp` pointing at argc,
// then argv[0..argc], NULL, envp..., NULL, auxv. `sp` is 16-byte aligned
// by the ABI; align anyway, then call the Rust side with the original sp.
core::arch::global_asm!(
    ".section .text._start, \"ax\", @progbits",
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "    mv a0, sp",
    "    andi sp, sp, -16",
    "    call {start}",
    ".size _start, . - _start",
    start = sym start,
);

/// The Rust side of `_start`: collects argv and exits with `twin_main`'s
/// code.
///
/// # Safety
/// Called once, by `_start`, with the initial stack pointer Linux set up.
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: Linux's initial stack: argc, then argc pointers to
    // NUL-terminated strings that live for the whole run.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const core::ffi::c_char) };
    let mut args: [&CStr; MAX_ARGS] = [c""; MAX_ARGS];
    let count = argc.min(MAX_ARGS);
    for (i, arg) in args.iter_mut().enumerate().take(count) {
        // SAFETY: i < argc; each argv entry is a valid C string (above).
        *arg = unsafe { CStr::from_ptr(*argv.add(i)) };
    }
    // twin_main wants exactly 4, so more than MAX_ARGS is a usage error
    // whatever the rest are: they are not looked at.
    let code = crate::twin_main(&args[..count]);
    exit_group(code)
}

/// A raw syscall with up to four arguments; returns `a0` (negative: -errno).
///
/// # Safety
/// The arguments must be valid for the syscall (pointers to memory of the
/// given lengths, NUL-terminated paths).
unsafe fn syscall4(number: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller upholds the syscall's contract; the asm may read
    // and write memory (no `nomem`), so buffers are in place around it.
    unsafe {
        core::arch::asm!(
            "ecall",
            in("a7") number,
            inlateout("a0") a0 => ret,
            in("a1") a1,
            in("a2") a2,
            in("a3") a3,
            options(nostack),
        );
    }
    ret
}

/// A failed syscall's error number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Errno(isize);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            2 => "No such file or directory",
            9 => "Bad file descriptor",
            13 => "Permission denied",
            20 => "Not a directory",
            21 => "Is a directory",
            32 => "Broken pipe",
            _ => "error",
        };
        write!(f, "{name} (errno {})", self.0)
    }
}

/// A syscall's result: `Ok(value)` or the error number.
fn check(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(Errno(-ret))
    } else {
        Ok(ret as usize)
    }
}

/// Reads the whole file at `path`.
pub(crate) fn read_file(path: &CStr) -> Result<Vec<u8>, Errno> {
    // SAFETY: `path` is NUL-terminated; openat reads only it.
    let fd =
        check(unsafe { syscall4(SYS_OPENAT, AT_FDCWD as usize, path.as_ptr() as usize, O_RDONLY | O_CLOEXEC, 0) })?;
    let mut data = Vec::new();
    let result = loop {
        if data.capacity() - data.len() < 64 << 10 {
            data.reserve(64 << 10);
        }
        let spare = data.spare_capacity_mut();
        let (ptr, room) = (spare.as_mut_ptr() as usize, spare.len());
        // SAFETY: `spare` is writable for `room` bytes; read writes at most
        // that many.
        let ret = unsafe { syscall4(SYS_READ, fd, ptr, room, 0) };
        match check(ret) {
            Ok(0) => break Ok(()),
            // SAFETY: read initialised the first n (<= room) spare bytes.
            Ok(n) => unsafe { data.set_len(data.len() + n.min(room)) },
            Err(Errno(EINTR)) => continue,
            Err(e) => break Err(e),
        }
    };
    // SAFETY: close takes no pointers. A close error loses nothing here.
    let _ = unsafe { syscall4(SYS_CLOSE, fd, 0, 0, 0) };
    result.map(|()| data)
}

/// Writes all of `bytes` to `fd`.
pub(crate) fn write_all(fd: usize, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live, readable slice.
        match check(unsafe { syscall4(SYS_WRITE, fd, bytes.as_ptr() as usize, bytes.len(), 0) }) {
            Ok(0) => return Err(Errno(5)),
            Ok(n) => bytes = &bytes[n.min(bytes.len())..],
            Err(Errno(EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ends the process with `code`.
fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers and does not return.
    unsafe {
        syscall4(SYS_EXIT_GROUP, code as usize, 0, 0, 0);
    }
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Displays bytes as UTF-8, invalid sequences as U+FFFD (paths, names).
pub(crate) struct Lossy<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// A `fmt::Write` that buffers on the stack and writes to a file
/// descriptor, without allocating (so it works when the heap is full).
struct FdWriter {
    fd: usize,
    len: usize,
    buf: [u8; 256],
}

impl FdWriter {
    fn flush(&mut self) {
        // Nothing to do about a failed write to stderr.
        let _ = write_all(self.fd, &self.buf[..self.len]);
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
            let _ = write_all(self.fd, bytes);
        } else {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

/// Formats to stderr.
pub(crate) fn eprint_fmt(args: fmt::Arguments<'_>) {
    let mut w = FdWriter { fd: STDERR, len: 0, buf: [0; 256] };
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.flush();
}

/// Writes `twin: panicked at FILE:LINE:COL: MESSAGE` to stderr and exits
/// with 101, as a guest does.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => eprint_fmt(format_args!(
            "twin: panicked at {}:{}:{}: {}\n",
            loc.file(),
            loc.line(),
            loc.column(),
            info.message()
        )),
        None => eprint_fmt(format_args!("twin: panicked: {}\n", info.message())),
    }
    exit_group(twin::PANIC_EXIT_CODE)
}

/// The heap: 256 MiB of `.bss`. Linux maps it zero-filled and lazily, so
/// untouched parts cost nothing.
const ARENA_BYTES: usize = 256 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the twin is single-threaded; only the allocator touches the arena
// through raw pointers.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

/// The next free offset in the arena.
static mut NEXT: usize = 0;

/// The bump allocator: never frees; `realloc` of the latest block resizes
/// in place; `alloc_zeroed` relies on the arena never being reused (it
/// starts zeroed and the bump pointer only moves up). As the SDK's.
struct BumpAllocator;

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator;

fn arena_start() -> usize {
    ARENA.0.get() as usize
}

/// Reserves `size` bytes aligned to `align` (a power of two); null if the
/// arena is full (`alloc` turns that into a panic: exit 101).
fn bump(size: usize, align: usize) -> *mut u8 {
    // SAFETY: single-threaded: no concurrent access.
    let next = unsafe { &mut *addr_of_mut!(NEXT) };
    let base = arena_start();
    let Some(start) = (base + *next).checked_add(align - 1).map(|v| v & !(align - 1)) else {
        return null_mut();
    };
    match start.checked_add(size) {
        Some(end) if end <= base + ARENA_BYTES => {
            *next = end - base;
            start as *mut u8
        }
        _ => null_mut(),
    }
}

// SAFETY: every block returned is fresh, aligned as asked, inside the
// arena, and never handed out again; the twin is single-threaded.
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(layout.size(), layout.align())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Past the bump pointer the arena was never written: still zero.
        bump(layout.size(), layout.align())
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: single-threaded; see `bump`.
        let next = unsafe { *addr_of!(NEXT) };
        let base = arena_start();
        let start = ptr as usize;
        if start + layout.size() == base + next {
            // The latest block: resize in place (a shrink keeps the bump
            // pointer, so memory past it stays never-written).
            if new_size > layout.size() {
                match start.checked_add(new_size) {
                    // SAFETY: as above.
                    Some(end) if end <= base + ARENA_BYTES => unsafe { *addr_of_mut!(NEXT) = end - base },
                    _ => return null_mut(),
                }
            }
            return ptr;
        }
        let new = bump(new_size, layout.align());
        if !new.is_null() {
            // SAFETY: both blocks are valid for the copied length and the
            // new one is fresh, so they do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
