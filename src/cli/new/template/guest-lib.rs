//! {name}: the sum of the squares 1² + 2² + … + n².
//!
//! - Onchain input: `abi.encode(uint64 n)`. The offchain input is ignored.
//! - Output: `abi.encode(uint64 n, uint256 sum)`.
//!
//! Replace `sum_of_squares` with your app's logic: this crate builds and is
//! tested on the host (`make unit`), and the guest binary (`src/main.rs`)
//! only wires `run` to the VM's inputs and output.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use coprocessor_abi::{decode_u64, push_u64, push_word, AbiError};

/// The sum of the squares of 1..=n (exact for every n below 2^40).
pub fn sum_of_squares(n: u64) -> u128 {
    (1..=u128::from(n)).map(|i| i * i).sum()
}

/// The job: decodes n, encodes (n, sum).
pub fn run(onchain: &[u8], _offchain: &[u8]) -> Result<Vec<u8>, AbiError> {
    let n = decode_u64(onchain)?;
    let mut out = Vec::with_capacity(64);
    push_u64(&mut out, n);
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&sum_of_squares(n).to_be_bytes());
    push_word(&mut out, &word);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_matches_the_closed_form() {
        for n in [0u64, 1, 2, 3, 10, 1000, 123_456] {
            let n128 = u128::from(n);
            assert_eq!(sum_of_squares(n), n128 * (n128 + 1) * (2 * n128 + 1) / 6, "n = {n}");
        }
    }

    #[test]
    fn run_decodes_and_encodes_abi_words() {
        let out = run(&coprocessor_abi::encode_u64(3), &[]).expect("a valid input");
        assert_eq!(out.len(), 64);
        assert_eq!(out[31], 3);
        assert_eq!(out[63], 14);
        assert!(run(&[1, 2, 3], &[]).is_err());
    }
}
