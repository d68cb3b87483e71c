//! The host side of direct guest memory (vendored Unicorn patch 11,
//! `uc_coproc_direct`).
//!
//! Generated loads and stores of a warm VM do not go through the softmmu
//! TLB when they can help it: guest address `a` is host address
//! `space + a`, and a byte per guest page in the [`PageMap`] says whether a
//! load (bit 1) or a store (bit 2) may go straight there. Anything else (a
//! page not yet granted this job, a misaligned access, an address above
//! 4 GiB) takes the softmmu path, whose TLB fill ([`super::tlb_fill`]) counts
//! the page and grants it. So the page map only ever holds what the TLB
//! would allow, and a reset revokes exactly the pages the job touched.

use std::io;
use std::ptr::NonNull;

/// Bytes of guest address space behind one VM: all of `[0, 4 GiB)`.
const SPACE_BYTES: usize = 1 << 32;
/// Guest pages in [`SPACE_BYTES`]: one map byte each.
const MAP_PAGES: usize = SPACE_BYTES / crate::program::PAGE_SIZE as usize;
/// Bytes of address space behind the map: eight times its pages' bytes. A
/// 32-bit guest's misaligned access indexes the map past them (patch 13:
/// the address's low bits rotated above the page number), into bytes that
/// are never set (and never backed by memory), so it takes the softmmu path.
const MAP_BYTES: usize = MAP_PAGES << 3;
/// A load may go straight to host memory.
const READ: u8 = 1;
/// A store may go straight to host memory.
const WRITE: u8 = 2;

/// A reservation of 4 GiB of host address space (no access, no memory):
/// guest address `a` lives at `base + a`. The window and the input regions
/// are mapped into it at their guest addresses; the rest stays inaccessible.
#[derive(Debug)]
pub(crate) struct Space {
    base: NonNull<u8>,
}

impl Space {
    pub(crate) fn reserve() -> io::Result<Space> {
        let base = mmap(std::ptr::null_mut(), SPACE_BYTES, libc::PROT_NONE, 0)?;
        Ok(Space { base })
    }

    /// Host address of guest address 0.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Maps `len` bytes of zeroed, lazily backed read-write memory at guest
    /// address `addr`, inside the reservation.
    pub(crate) fn map(&self, addr: u32, len: usize) -> io::Result<NonNull<u8>> {
        let end = (addr as usize).checked_add(len).filter(|&end| end <= SPACE_BYTES);
        if end.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{len} bytes at guest address {addr:#010x} do not fit below 4 GiB"),
            ));
        }
        // SAFETY: the range lies inside our own reservation (checked above),
        // which nothing else uses, so MAP_FIXED replaces only our own pages.
        let at = unsafe { self.base.as_ptr().add(addr as usize) };
        mmap(at.cast(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_FIXED)
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        // SAFETY: the reservation is ours; every mapping inside it (window,
        // inputs) goes with it, and nothing refers to them any more: the
        // Unicorn instance that used them is closed first (see `Vm`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), SPACE_BYTES);
        }
    }
}

/// One byte per guest page: may a load or a store of this job go straight
/// to host memory. Where it cannot be mapped, direct memory is off for this
/// VM and every access takes the softmmu path, which is slower but the same
/// in every result.
#[derive(Debug)]
pub(crate) struct PageMap {
    ptr: Option<NonNull<u8>>,
}

impl PageMap {
    pub(crate) fn new() -> PageMap {
        PageMap { ptr: mmap(std::ptr::null_mut(), MAP_BYTES, libc::PROT_READ | libc::PROT_WRITE, 0).ok() }
    }

    /// The map for `uc_coproc_direct`, or null when direct memory is off.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.map_or(std::ptr::null_mut(), NonNull::as_ptr)
    }

    /// Lets loads (`read`) and stores (`write`) of `page` go straight to
    /// host memory.
    pub(crate) fn grant(&mut self, page: u32, read: bool, write: bool) {
        let bits = if read { READ } else { 0 } | if write { WRITE } else { 0 };
        self.set(page, bits);
    }

    /// Sends every access to `page` through the softmmu path again.
    pub(crate) fn revoke(&mut self, page: u32) {
        self.set(page, 0);
    }

    fn set(&mut self, page: u32, bits: u8) {
        if let Some(ptr) = self.ptr {
            if (page as usize) < MAP_PAGES {
                // SAFETY: `page` is inside the map (checked), which this
                // value owns; Unicorn reads it only while a job runs on
                // this thread, never concurrently with this write.
                unsafe { *ptr.as_ptr().add(page as usize) = bits };
            }
        }
    }
}

impl Drop for PageMap {
    fn drop(&mut self) {
        if let Some(ptr) = self.ptr {
            // SAFETY: the map is ours and its Unicorn instance is closed.
            unsafe {
                libc::munmap(ptr.as_ptr().cast(), MAP_BYTES);
            }
        }
    }
}

// SAFETY: both own their mappings and are only used by the VM holding them.
unsafe impl Send for Space {}
// SAFETY: as above.
unsafe impl Send for PageMap {}

fn mmap(at: *mut libc::c_void, len: usize, prot: libc::c_int, flags: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping: either fresh (no `at`), or
    // MAP_FIXED inside a reservation of the caller's (see `Space::map`).
    let ptr = unsafe {
        libc::mmap(at, len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | flags, -1, 0)
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)
}
