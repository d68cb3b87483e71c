//! sha256-rounds: iterated SHA-256, in plain guest code or via the host's
//! precompile. The input format and the job are
//! [`coprocessor_hashes::rounds`]; plain mode uses
//! [`coprocessor_hashes::sha256`], the same code natively and in the guest.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
pub use coprocessor_hashes::rounds::{encode_input, hash_rounds, parse_input, Error, HashFn, Input, Mode};

/// The guest's whole job. `precompile` is used for flag 1 (the guest passes
/// the SDK's `sha256`). The offchain input is ignored.
pub fn run(onchain: &[u8], _offchain: &[u8], precompile: HashFn) -> Result<Vec<u8>, Error> {
    coprocessor_hashes::rounds::run(onchain, coprocessor_hashes::sha256, precompile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coprocessor_hashes::sha256;

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
            run(&encode_input(Mode::Plain, 1, b"abc"), &[], sha256).unwrap(),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            run(&encode_input(Mode::Plain, 1, b""), &[], sha256).unwrap(),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn plain_mode_hashes_with_the_portable_code() {
        assert_eq!(
            run(&encode_input(Mode::Plain, 3, b"abc"), &[], |_| [0; 32]).unwrap(),
            sha256(&sha256(&sha256(b"abc")))
        );
    }
}
