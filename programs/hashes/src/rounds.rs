//! The input format and the job of the `*-rounds` example guests: iterated
//! hashing of the input, in plain guest code or via a host precompile.
//!
//! - Input: `flag: u8 ‖ rounds: u32 little-endian ‖ data`. `flag` 0 hashes
//!   in plain code, 1 with the precompile. `rounds` must be at least 1.
//! - Output: 32 bytes, `d(rounds)` where `d(0) = data` and
//!   `d(i + 1) = hash(d(i))`.

use alloc::vec::Vec;
use core::fmt;

/// A 32-byte hash function (the plain one, or a precompile).
pub type HashFn = fn(&[u8]) -> [u8; 32];

/// Where the hashing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain guest code; flag byte 0.
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

/// A rounds guest's whole job: `plain` hashes for flag 0, `precompile` for flag 1.
pub fn run(onchain: &[u8], plain: HashFn, precompile: HashFn) -> Result<Vec<u8>, Error> {
    let input = parse_input(onchain)?;
    let hash = match input.mode {
        Mode::Plain => plain,
        Mode::Precompile => precompile,
    };
    Ok(hash_rounds(input.data, input.rounds, hash).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(_: &[u8]) -> [u8; 32] {
        [7; 32]
    }

    fn count(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[0] = data.len() as u8;
        out
    }

    #[test]
    fn the_flag_selects_the_hash() {
        assert_eq!(run(&encode_input(Mode::Precompile, 3, b"x"), count, fake).unwrap(), [7; 32]);
        assert_eq!(run(&encode_input(Mode::Plain, 1, b"abc"), count, fake).unwrap(), count(b"abc"));
    }

    #[test]
    fn rounds_chain_the_hash() {
        // d(1) = count("abc") (first byte 3), d(2) = count(d(1)) (first byte 32).
        assert_eq!(hash_rounds(b"abc", 1, count)[0], 3);
        assert_eq!(hash_rounds(b"abc", 2, count)[0], 32);
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(run(&[0, 1, 0, 0], count, fake), Err(Error::TooShort(4)));
        assert_eq!(run(&[2, 1, 0, 0, 0], count, fake), Err(Error::BadMode(2)));
        assert_eq!(run(&[0, 0, 0, 0, 0, 9], count, fake), Err(Error::ZeroRounds));
        assert_eq!(
            parse_input(&[1, 2, 1, 0, 0, 9]).unwrap(),
            Input { mode: Mode::Precompile, rounds: 258, data: &[9] }
        );
    }
}
