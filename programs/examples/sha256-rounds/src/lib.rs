//! Sha256-rounds: iterated SHA-256, in plain guest code or via the host's
//! precompile.
//!
//! - Onchain input: `flag: u8 ‖ rounds: u32 little-endian ‖ data`.
//!   `flag` 0 hashes with [`coprocessor_hashes::sha256`] (plain code, the
//!   same code natively and in the guest), 1 with the precompile passed to
//!   [`run`]. `rounds` must be at least 1. `data` is the rest (may be empty).
//!   The offchain input is ignored.
//! - Output: 32 bytes, `d(rounds)` where `d(0) = data` and
//!   `d(i + 1) = sha256(d(i))`.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// A 32-byte hash function (the plain one, or a precompile).
pub type HashFn = fn(&[u8]) -> [u8; 32];

/// Where the hashing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain code ([`coprocessor_hashes::sha256`]); flag byte 0.
    Plain = 0,
    /// The host precompile; flag byte 1.
    Precompile = 1,
}

/// The decoded onchain input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    /// Where the hashing runs.
    pub mode: Mode,
    /// How many times to hash (>= 1).
    pub rounds: u32,
    /// `d(0)`.
    pub data: &'a [u8],
}

/// Why the input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input is shorter than the 5-byte header.
    TooShort(usize),
    /// The flag byte is neither 0 nor 1.
    BadMode(u8),
    /// `rounds` is 0.
    ZeroRounds,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort(n) => write!(f, "input is {n} bytes, the header needs 5"),
            Error::BadMode(m) => write!(f, "mode flag must be 0 or 1, got {m}"),
            Error::ZeroRounds => write!(f, "rounds must be at least 1"),
        }
    }
}

/// Decodes `flag ‖ rounds (u32 LE) ‖ data`.
pub fn parse_input(onchain: &[u8]) -> Result<Input<'_>, Error> {
    let [flag, r0, r1, r2, r3, data @ ..] = onchain else {
        return Err(Error::TooShort(onchain.len()));
    };
    let mode = match flag {
        0 => Mode::Plain,
        1 => Mode::Precompile,
        &m => return Err(Error::BadMode(m)),
    };
    let rounds = u32::from_le_bytes([*r0, *r1, *r2, *r3]);
    if rounds == 0 {
        return Err(Error::ZeroRounds);
    }
    Ok(Input { mode, rounds, data })
}

/// Encodes an input (the inverse of [`parse_input`]).
pub fn encode_input(mode: Mode, rounds: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(mode as u8);
    out.extend_from_slice(&rounds.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// `d(rounds)` with `d(0) = data`, `d(i + 1) = hash(d(i))`, for `rounds >= 1`
/// (for 0 it returns `hash(data)`).
pub fn hash_rounds(data: &[u8], rounds: u32, hash: HashFn) -> [u8; 32] {
    let mut digest = hash(data);
    for _ in 1..rounds {
        digest = hash(&digest);
    }
    digest
}

/// The guest's whole job. `precompile` is used for flag 1 (the guest passes
/// the SDK's `sha256`; a host can pass any SHA-256).
pub fn run(onchain: &[u8], _offchain: &[u8], precompile: HashFn) -> Result<Vec<u8>, Error> {
    let input = parse_input(onchain)?;
    let hash = match input.mode {
        Mode::Plain => coprocessor_hashes::sha256 as HashFn,
        Mode::Precompile => precompile,
    };
    Ok(hash_rounds(input.data, input.rounds, hash).to_vec())
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
        let abc = hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let empty = hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(
            run(&encode_input(Mode::Plain, 1, b"abc"), &[], sha256).unwrap(),
            abc
        );
        assert_eq!(
            run(&encode_input(Mode::Plain, 1, b""), &[], sha256).unwrap(),
            empty
        );
    }

    #[test]
    fn rounds_chain_the_hash() {
        let two = sha256(&sha256(b"abc"));
        assert_eq!(hash_rounds(b"abc", 2, sha256), two);
        // sha256(sha256("")), a well-known value (Bitcoin's double SHA-256 of "").
        assert_eq!(
            hash_rounds(b"", 2, sha256),
            hex("5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456")
        );
    }

    #[test]
    fn precompile_mode_uses_the_given_function() {
        fn fake(_: &[u8]) -> [u8; 32] {
            [7; 32]
        }
        assert_eq!(
            run(&encode_input(Mode::Precompile, 3, b"x"), &[], fake).unwrap(),
            [7; 32]
        );
        assert_eq!(
            run(&encode_input(Mode::Plain, 3, b"x"), &[], fake).unwrap(),
            hash_rounds(b"x", 3, sha256)
        );
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(run(&[0, 1, 0, 0], &[], sha256), Err(Error::TooShort(4)));
        assert_eq!(run(&[2, 1, 0, 0, 0], &[], sha256), Err(Error::BadMode(2)));
        assert_eq!(
            run(&[0, 0, 0, 0, 0, 9], &[], sha256),
            Err(Error::ZeroRounds)
        );
        assert_eq!(
            parse_input(&[1, 2, 1, 0, 0, 9]).unwrap(),
            Input {
                mode: Mode::Precompile,
                rounds: 258,
                data: &[9]
            }
        );
    }
}
