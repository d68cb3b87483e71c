//! The global bump allocator.
//!
//! The heap starts at `__heap_start` (the first page after `.bss`, from
//! `link.x`) and grows up to [`HEAP_LIMIT`](crate::HEAP_LIMIT). Memory is
//! never freed: a guest is one short run and the VM discards its memory.
//! Two refinements keep common patterns cheap:
//! - `realloc` of the most recent allocation grows or shrinks it in place
//!   (a growing `Vec` does not copy);
//! - `alloc_zeroed` does not write zeros: the bump pointer only moves up,
//!   so memory past it has never been written, and the VM hands out every
//!   untouched page zero-filled (Guest ABI v1). This also means a large
//!   zeroed allocation touches no pages until it is used.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{addr_of, addr_of_mut, null_mut};

unsafe extern "C" {
    /// The first page boundary after `.bss` (defined by `link.x`).
    static __heap_start: u8;
}

/// The next free address; 0 until the first allocation.
static mut NEXT: usize = 0;

struct BumpAllocator;

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator;

fn heap_start() -> usize {
    // Page-aligned by link.x; align again in case a custom script is used.
    (addr_of!(__heap_start) as usize + 4095) & !4095
}

/// Bytes of heap handed out so far (including alignment gaps).
pub fn heap_used() -> usize {
    // SAFETY: single-threaded; plain read.
    let next = unsafe { *addr_of!(NEXT) };
    if next == 0 {
        0
    } else {
        next - heap_start()
    }
}

/// Reserves `size` bytes aligned to `align` (a power of two); null if that
/// would pass the heap limit.
fn bump(size: usize, align: usize) -> *mut u8 {
    // SAFETY: single-threaded guest, no interrupts: no concurrent access.
    let next = unsafe { &mut *addr_of_mut!(NEXT) };
    if *next == 0 {
        *next = heap_start();
    }
    let Some(start) = next.checked_add(align - 1).map(|v| v & !(align - 1)) else {
        return null_mut();
    };
    match start.checked_add(size) {
        Some(end) if end <= crate::HEAP_LIMIT => {
            *next = end;
            start as *mut u8
        }
        _ => null_mut(),
    }
}

// SAFETY: every block returned is fresh, aligned as asked, and never handed
// out again; the guest is single-threaded.
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(layout.size(), layout.align())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Memory past the bump pointer was never written and the VM
        // zero-fills untouched pages, so it is already zero.
        bump(layout.size(), layout.align())
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: single-threaded; see `bump`.
        let next = unsafe { &mut *addr_of_mut!(NEXT) };
        let start = ptr as usize;
        if start + layout.size() == *next {
            // The last block: resize in place. On a shrink the bump pointer
            // stays, so memory past it is still never-written.
            if new_size > layout.size() {
                match start.checked_add(new_size) {
                    Some(end) if end <= crate::HEAP_LIMIT => *next = end,
                    _ => return null_mut(),
                }
            }
            return ptr;
        }
        let new = bump(new_size, layout.align());
        if !new.is_null() {
            // SAFETY: both blocks are valid for the copied length and the new
            // one is fresh, so they do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
