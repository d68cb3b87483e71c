//! Fibonacci: `fib(n) mod 2^64`, computed iteratively with wrapping adds.
//!
//! - Onchain input: `abi.encode(uint64 n)`, exactly 32 bytes, big-endian;
//!   the value must fit a `u64`. The offchain input is ignored.
//! - Output: `abi.encode(uint64 fib(n) mod 2^64)`, 32 bytes.
//!
//! `fib(0) = 0`, `fib(1) = 1`. The loop runs `n` times, so the cost is
//! linear in `n`: this is the plain-ALU benchmark.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
pub use coprocessor_abi::AbiError as Error;

/// `fib(n) mod 2^64`.
pub fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let next = a.wrapping_add(b);
        a = b;
        b = next;
    }
    a
}

/// The guest's whole job: decodes `n`, returns `abi.encode(uint64 fib(n))`.
pub fn run(onchain: &[u8], _offchain: &[u8]) -> Result<Vec<u8>, Error> {
    let n = coprocessor_abi::decode_u64(onchain)?;
    Ok(coprocessor_abi::encode_u64(fib(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coprocessor_abi::{encode_u64, AbiError};

    #[test]
    fn known_values() {
        assert_eq!(fib(0), 0);
        assert_eq!(fib(1), 1);
        assert_eq!(fib(2), 1);
        assert_eq!(fib(10), 55);
        assert_eq!(fib(90), 2_880_067_194_370_816_120);
        assert_eq!(fib(93), 12_200_160_415_121_876_738); // the largest that fits
        assert_eq!(fib(94), 1_293_530_146_158_671_551); // wrapped mod 2^64
    }

    #[test]
    fn run_encodes_and_decodes() {
        assert_eq!(run(&encode_u64(90), &[]), Ok(encode_u64(2_880_067_194_370_816_120)));
        assert_eq!(run(&encode_u64(0), b"ignored"), Ok(encode_u64(0)));
    }

    #[test]
    fn run_rejects_malformed_input() {
        assert!(matches!(run(&[0u8; 31], &[]), Err(AbiError::Length { .. })));
        let mut too_big = [0u8; 32];
        too_big[0] = 1;
        assert_eq!(run(&too_big, &[]), Err(AbiError::Overflow { offset: 0 }));
    }
}
