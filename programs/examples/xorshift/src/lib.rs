//! Xorshift: a store + load benchmark over a 4 KiB table.
//!
//! - Onchain input: `abi.encode(uint64 iterations)`, exactly 32 bytes; the
//!   value must fit a `u64`. The offchain input is ignored.
//! - Output: `abi.encode(uint64 checksum)`, 32 bytes.
//!
//! The computation, exactly:
//!
//! ```text
//! table: [u32; 1024] = all zero            (4 KiB)
//! x: u32 = 2463534242                      (Marsaglia's xorshift32 seed)
//! checksum: u64 = 0
//! repeat `iterations` times:
//!     x ^= x << 13; x ^= x >> 17; x ^= x << 5     (xorshift32, shifts on u32)
//!     table[x & 1023] = x                           (one store)
//!     checksum += table[(x >> 16) & 1023] as u64    (one load, wrapping add)
//! output checksum
//! ```
//!
//! Every step does one store and one load at data-dependent addresses, so
//! the compiler can keep neither in registers. The first three values of
//! `x` are 723471715, 2497366906, 2064144800.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
pub use coprocessor_abi::AbiError as Error;

/// The initial xorshift32 state.
pub const SEED: u32 = 2_463_534_242;
/// The table size in `u32` words (4 KiB).
pub const TABLE_WORDS: usize = 1024;

/// One xorshift32 step (13, 17, 5).
pub fn xorshift32(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

/// The checksum after `iterations` steps (see the crate docs).
pub fn checksum(iterations: u64) -> u64 {
    let mut table = [0u32; TABLE_WORDS];
    let mut x = SEED;
    let mut sum = 0u64;
    for _ in 0..iterations {
        x = xorshift32(x);
        table[x as usize % TABLE_WORDS] = x;
        sum = sum.wrapping_add(table[(x >> 16) as usize % TABLE_WORDS] as u64);
    }
    sum
}

/// The guest's whole job: decodes the iteration count, returns
/// `abi.encode(uint64 checksum)`.
pub fn run(onchain: &[u8], _offchain: &[u8]) -> Result<Vec<u8>, Error> {
    let iterations = coprocessor_abi::decode_u64(onchain)?;
    Ok(coprocessor_abi::encode_u64(checksum(iterations)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coprocessor_abi::encode_u64;

    #[test]
    fn xorshift32_matches_marsaglia() {
        let a = xorshift32(SEED);
        let b = xorshift32(a);
        let c = xorshift32(b);
        assert_eq!([a, b, c], [723_471_715, 2_497_366_906, 2_064_144_800]);
    }

    #[test]
    fn checksums_match_an_independent_model() {
        // Computed with a separate Python model of the crate docs.
        assert_eq!(checksum(0), 0);
        assert_eq!(checksum(10), 0);
        assert_eq!(checksum(1000), 735_713_119_403);
        assert_eq!(checksum(100_000), 211_746_126_049_466);
        assert_eq!(checksum(1_000_000), 2_145_291_698_731_397);
    }

    #[test]
    fn run_encodes_and_rejects() {
        assert_eq!(run(&encode_u64(1000), &[]), Ok(encode_u64(735_713_119_403)));
        assert!(run(&[1u8; 32], &[]).is_err());
        assert!(run(&[], &[]).is_err());
    }
}
