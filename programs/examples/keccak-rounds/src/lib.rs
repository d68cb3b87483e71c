//! keccak-rounds: iterated Keccak-256 (Ethereum's, not SHA3-256), in plain guest code or via the host's
//! precompile. The input format and the job are
//! [`coprocessor_hashes::rounds`]; plain mode uses
//! [`coprocessor_hashes::keccak256`], the same code natively and in the guest.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
pub use coprocessor_hashes::rounds::{encode_input, hash_rounds, parse_input, Error, HashFn, Input, Mode};

/// The guest's whole job. `precompile` is used for flag 1 (the guest passes
/// the SDK's `keccak256`). The offchain input is ignored.
pub fn run(onchain: &[u8], _offchain: &[u8], precompile: HashFn) -> Result<Vec<u8>, Error> {
    coprocessor_hashes::rounds::run(onchain, coprocessor_hashes::keccak256, precompile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coprocessor_hashes::keccak256;

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn one_round_is_the_plain_hash() {
        assert_eq!(
            run(&encode_input(Mode::Plain, 1, b"abc"), &[], keccak256).unwrap(),
            hex("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
        );
        assert_eq!(
            run(&encode_input(Mode::Plain, 1, b""), &[], keccak256).unwrap(),
            hex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        );
    }

    #[test]
    fn plain_mode_hashes_with_the_portable_code() {
        assert_eq!(
            run(&encode_input(Mode::Plain, 3, b"abc"), &[], |_| [0; 32]).unwrap(),
            keccak256(&keccak256(&keccak256(b"abc")))
        );
    }
}
