//! Mem-touch: allocates N pages of heap and writes one byte into each.
//!
//! - Onchain input: `abi.encode(uint64 pages)`, exactly 32 bytes; the value
//!   must fit a `u64`. The offchain input is ignored.
//! - Output: `abi.encode(uint64 pages)`, 32 bytes.
//!
//! [`touch_pages`] allocates `pages * 4096` bytes aligned to 4096 with the
//! global allocator, does NOT initialise them, and writes the byte `1` at the
//! start of each 4 KiB page (a volatile write, so it is not optimised away).
//! In the guest, whose bump allocator hands out never-touched memory, that is
//! exactly `pages` fresh pages touched by the loop; the guest binary keeps its
//! output on the stack so that no other heap page is touched. Zero pages
//! allocates nothing. An allocation the heap cannot satisfy is an error (the
//! guest panics, exit 101).
#![no_std]

extern crate alloc;

use alloc::alloc::{alloc, dealloc, Layout};
use alloc::vec::Vec;
use coprocessor_abi::AbiError;
use core::fmt;

/// The page size the guest touches.
pub const PAGE_SIZE: usize = 4096;

/// Why the job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input is not `abi.encode(uint64)`.
    Abi(AbiError),
    /// `pages * 4096` does not fit the address space.
    TooLarge(u64),
    /// The allocator could not provide `pages` pages.
    OutOfMemory(u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Abi(e) => e.fmt(f),
            Error::TooLarge(p) => write!(f, "{p} pages do not fit the address space"),
            Error::OutOfMemory(p) => write!(f, "cannot allocate {p} pages"),
        }
    }
}

impl From<AbiError> for Error {
    fn from(e: AbiError) -> Self {
        Error::Abi(e)
    }
}

/// Decodes the page count from the onchain input.
pub fn parse_input(onchain: &[u8]) -> Result<u64, Error> {
    Ok(coprocessor_abi::decode_u64(onchain)?)
}

/// Allocates `pages` uninitialised 4 KiB-aligned pages, writes one byte into
/// each, frees them (a no-op in the guest) and returns `pages`.
pub fn touch_pages(pages: u64) -> Result<u64, Error> {
    if pages == 0 {
        return Ok(0);
    }
    let count = usize::try_from(pages).map_err(|_| Error::TooLarge(pages))?;
    let size = count.checked_mul(PAGE_SIZE).ok_or(Error::TooLarge(pages))?;
    let layout = Layout::from_size_align(size, PAGE_SIZE).map_err(|_| Error::TooLarge(pages))?;
    // SAFETY: `layout` has a non-zero size.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        return Err(Error::OutOfMemory(pages));
    }
    for page in 0..count {
        // SAFETY: `page * PAGE_SIZE < size`, inside the block; writing to
        // uninitialised memory is fine.
        unsafe { base.add(page * PAGE_SIZE).write_volatile(1) };
    }
    // SAFETY: `base` came from `alloc` with this layout.
    unsafe { dealloc(base, layout) };
    Ok(pages)
}

/// The guest's whole job: returns `abi.encode(uint64 pages)` after touching
/// them.
pub fn run(onchain: &[u8], _offchain: &[u8]) -> Result<Vec<u8>, Error> {
    let pages = touch_pages(parse_input(onchain)?)?;
    Ok(coprocessor_abi::encode_u64(pages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coprocessor_abi::encode_u64;

    #[test]
    fn touches_and_reports() {
        assert_eq!(touch_pages(0), Ok(0));
        assert_eq!(touch_pages(1), Ok(1));
        assert_eq!(touch_pages(1000), Ok(1000));
        assert_eq!(run(&encode_u64(3), &[]), Ok(encode_u64(3)));
    }

    #[test]
    fn rejects_impossible_sizes_and_bad_input() {
        assert_eq!(touch_pages(u64::MAX), Err(Error::TooLarge(u64::MAX)));
        assert!(matches!(run(&[0u8; 5], &[]), Err(Error::Abi(_))));
    }
}
