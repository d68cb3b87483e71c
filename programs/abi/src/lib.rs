//! Minimal Solidity ABI helpers for coprocessor guests.
//!
//! Guests read `abi.encode(...)`-style inputs and write `abi.encode(...)`-style
//! outputs. This crate holds only what the example guests need: 32-byte
//! words, `uint64`/`uint256`/`bytes32` values, one dynamic `bytes` field,
//! and the two structs of InfinityVM's `StatefulConsumer`.
//!
//! # Layout
//! - Reading: [`word_at`], [`read_u64`], [`read_bytes32`], [`read_offset`],
//!   [`read_bytes`], and the whole-input decoders [`decode_u64`] and
//!   [`decode_word`].
//! - Writing: [`u64_word`], [`push_word`], [`push_u64`], [`push_bytes_tail`],
//!   [`encode_u64`].
//! - Stateful apps: [`decode_stateful_input`], [`encode_stateful_input`],
//!   [`encode_stateful_result`], [`decode_stateful_result`].
//!
//! Every reader checks bounds and returns an [`AbiError`]; nothing here
//! panics on malformed input. Readers accept any in-bounds offsets (as
//! Solidity's decoder does); writers always produce the canonical encoding.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// The size of one ABI word in bytes.
pub const WORD: usize = 32;

/// One ABI word: 32 bytes, big-endian for numbers.
pub type Word = [u8; WORD];

/// Why an input could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiError {
    /// `len` bytes at `offset` were needed but the input has only `available`.
    OutOfBounds {
        /// Where the read started.
        offset: usize,
        /// How many bytes were needed.
        len: usize,
        /// The size of the input.
        available: usize,
    },
    /// The word at `offset` holds a number that does not fit the target type.
    Overflow {
        /// Where the word starts.
        offset: usize,
    },
    /// The input must be exactly `expected` bytes long but is `actual`.
    Length {
        /// The required length.
        expected: usize,
        /// The actual length.
        actual: usize,
    },
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AbiError::OutOfBounds { offset, len, available } => {
                write!(f, "abi: {len} bytes at offset {offset} are out of bounds (input is {available} bytes)")
            }
            AbiError::Overflow { offset } => {
                write!(f, "abi: the number at offset {offset} does not fit")
            }
            AbiError::Length { expected, actual } => {
                write!(f, "abi: input must be {expected} bytes, got {actual}")
            }
        }
    }
}

/// `len` bytes of `data` at `offset`, bounds-checked.
fn slice_at(data: &[u8], offset: usize, len: usize) -> Result<&[u8], AbiError> {
    let oob = AbiError::OutOfBounds { offset, len, available: data.len() };
    let end = offset.checked_add(len).ok_or(oob)?;
    data.get(offset..end).ok_or(oob)
}

/// The word that starts at byte `offset` of `data`.
pub fn word_at(data: &[u8], offset: usize) -> Result<&Word, AbiError> {
    let s = slice_at(data, offset, WORD)?;
    // The slice is exactly WORD bytes long.
    s.try_into().map_err(|_| AbiError::OutOfBounds { offset, len: WORD, available: data.len() })
}

/// The word as a `u64`, if its top 24 bytes are zero.
pub fn word_to_u64(w: &Word) -> Option<u64> {
    if w[..24].iter().any(|&b| b != 0) {
        return None;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&w[24..]);
    Some(u64::from_be_bytes(low))
}

/// The `uint` word at `offset` as a `u64`; [`AbiError::Overflow`] if it is
/// 2^64 or more.
pub fn read_u64(data: &[u8], offset: usize) -> Result<u64, AbiError> {
    word_to_u64(word_at(data, offset)?).ok_or(AbiError::Overflow { offset })
}

/// The word at `offset`, copied (a `bytes32` or a raw `uint256`).
pub fn read_bytes32(data: &[u8], offset: usize) -> Result<Word, AbiError> {
    Ok(*word_at(data, offset)?)
}

/// The `uint` word at `offset` as an offset or length (`usize`).
pub fn read_offset(data: &[u8], offset: usize) -> Result<usize, AbiError> {
    let v = read_u64(data, offset)?;
    usize::try_from(v).map_err(|_| AbiError::Overflow { offset })
}

/// A dynamic `bytes` field of the tuple that starts at `base`, whose head
/// word is at `base + head`. The head holds the offset of the field's tail
/// relative to `base`; the tail is a length word followed by the bytes.
pub fn read_bytes(data: &[u8], base: usize, head: usize) -> Result<&[u8], AbiError> {
    let overflow = AbiError::Overflow { offset: base };
    let head_at = base.checked_add(head).ok_or(overflow)?;
    let tail = base.checked_add(read_offset(data, head_at)?).ok_or(overflow)?;
    let len = read_offset(data, tail)?;
    slice_at(data, tail.checked_add(WORD).ok_or(overflow)?, len)
}

/// Decodes an input that is exactly `abi.encode(uint64 v)`: 32 bytes whose
/// value must fit a `u64`.
pub fn decode_u64(data: &[u8]) -> Result<u64, AbiError> {
    if data.len() != WORD {
        return Err(AbiError::Length { expected: WORD, actual: data.len() });
    }
    read_u64(data, 0)
}

/// Decodes an input that is exactly one word (`abi.encode(uint256)` or
/// `abi.encode(bytes32)`).
pub fn decode_word(data: &[u8]) -> Result<Word, AbiError> {
    if data.len() != WORD {
        return Err(AbiError::Length { expected: WORD, actual: data.len() });
    }
    read_bytes32(data, 0)
}

/// `v` as a big-endian `uint` word.
pub fn u64_word(v: u64) -> Word {
    let mut w = [0u8; WORD];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

/// Appends one word.
pub fn push_word(out: &mut Vec<u8>, w: &Word) {
    out.extend_from_slice(w);
}

/// Appends `v` as a `uint` word.
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    push_word(out, &u64_word(v));
}

/// `n` rounded up to a whole number of words.
pub fn padded_len(n: usize) -> usize {
    n.div_ceil(WORD) * WORD
}

/// Appends the tail of a dynamic `bytes` value: its length word, the bytes,
/// and zero padding to a whole word.
pub fn push_bytes_tail(out: &mut Vec<u8>, bytes: &[u8]) {
    push_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
    out.resize(out.len() + (padded_len(bytes.len()) - bytes.len()), 0);
}

/// `abi.encode(uint64 v)`: one word.
pub fn encode_u64(v: u64) -> Vec<u8> {
    u64_word(v).to_vec()
}

/// `abi.encode(S)` for a struct `S { bytes32 a; bytes b; }`. Because `S` is
/// dynamic, the encoding starts with the offset of the tuple (0x20), then
/// `a`, the offset of `b` in the tuple (0x40), `b`'s length, and `b` padded.
fn encode_word_bytes_struct(a: &Word, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 * WORD + padded_len(b.len()));
    push_u64(&mut out, WORD as u64);
    push_word(&mut out, a);
    push_u64(&mut out, 2 * WORD as u64);
    push_bytes_tail(&mut out, b);
    out
}

/// Decodes `abi.encode(S)` for a struct `S { bytes32 a; bytes b; }`.
fn decode_word_bytes_struct(data: &[u8]) -> Result<(Word, &[u8]), AbiError> {
    let base = read_offset(data, 0)?;
    let a = read_bytes32(data, base)?;
    let b = read_bytes(data, base, WORD)?;
    Ok((a, b))
}

/// Decodes `abi.encode(StatefulAppOnchainInput{bytes32 inputStateRoot;
/// bytes onchainInput})` into `(inputStateRoot, onchainInput)`.
pub fn decode_stateful_input(data: &[u8]) -> Result<(Word, &[u8]), AbiError> {
    decode_word_bytes_struct(data)
}

/// `abi.encode(StatefulAppOnchainInput{inputStateRoot, onchainInput})`.
pub fn encode_stateful_input(input_state_root: &Word, onchain_input: &[u8]) -> Vec<u8> {
    encode_word_bytes_struct(input_state_root, onchain_input)
}

/// `abi.encode(StatefulAppResult{bytes32 outputStateRoot; bytes result})`.
pub fn encode_stateful_result(output_state_root: &Word, result: &[u8]) -> Vec<u8> {
    encode_word_bytes_struct(output_state_root, result)
}

/// Decodes `abi.encode(StatefulAppResult{...})` into
/// `(outputStateRoot, result)`.
pub fn decode_stateful_result(data: &[u8]) -> Result<(Word, &[u8]), AbiError> {
    decode_word_bytes_struct(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn u64_words_round_trip() {
        for v in [0u64, 1, 0x1234_5678_9abc_def0, u64::MAX] {
            let w = u64_word(v);
            assert_eq!(decode_u64(&w), Ok(v));
        }
        let w = u64_word(0x0102);
        assert_eq!(&w[..30], &[0u8; 30]);
        assert_eq!(&w[30..], &[1, 2]);
    }

    #[test]
    fn u64_rejects_overflow_and_bad_length() {
        let mut w = [0u8; 32];
        w[23] = 1; // 2^64
        assert_eq!(decode_u64(&w), Err(AbiError::Overflow { offset: 0 }));
        assert_eq!(decode_u64(&[0u8; 31]), Err(AbiError::Length { expected: 32, actual: 31 }));
        assert_eq!(decode_u64(&[0u8; 33]), Err(AbiError::Length { expected: 32, actual: 33 }));
        assert_eq!(read_u64(&[0u8; 40], 10), Err(AbiError::OutOfBounds { offset: 10, len: 32, available: 40 }));
        assert!(read_u64(&[0u8; 40], usize::MAX).is_err());
    }

    #[test]
    fn stateful_encoding_matches_solidity() {
        // abi.encode(StatefulAppResult{outputStateRoot: 0x11..11, result: hex"abcdef"})
        let root = [0x11u8; 32];
        let enc = encode_stateful_result(&root, &[0xab, 0xcd, 0xef]);
        let mut expected = vec![];
        expected.extend_from_slice(&u64_word(0x20));
        expected.extend_from_slice(&root);
        expected.extend_from_slice(&u64_word(0x40));
        expected.extend_from_slice(&u64_word(3));
        let mut last = [0u8; 32];
        last[..3].copy_from_slice(&[0xab, 0xcd, 0xef]);
        expected.extend_from_slice(&last);
        assert_eq!(enc, expected);
        assert_eq!(decode_stateful_result(&enc), Ok((root, &[0xab, 0xcd, 0xef][..])));
    }

    #[test]
    fn stateful_round_trips_empty_and_word_multiples() {
        let root = [7u8; 32];
        for len in [0usize, 1, 31, 32, 33, 64, 100] {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let enc = encode_stateful_input(&root, &body);
            assert_eq!(enc.len(), 4 * 32 + padded_len(len));
            assert_eq!(decode_stateful_input(&enc), Ok((root, &body[..])));
        }
    }

    #[test]
    fn stateful_rejects_truncated_and_hostile_offsets() {
        let enc = encode_stateful_input(&[1u8; 32], &[9u8; 40]);
        for cut in 0..enc.len() - 24 {
            // Everything up to the end of the data must be present; the
            // trailing padding (24 bytes here) is not needed.
            assert!(decode_stateful_input(&enc[..cut]).is_err(), "cut {cut}");
        }
        let mut bad = enc.clone();
        bad[..32].copy_from_slice(&[0xff; 32]);
        assert!(decode_stateful_input(&bad).is_err());
        let mut bad = enc.clone();
        bad[64..96].copy_from_slice(&u64_word(u64::MAX));
        assert!(decode_stateful_input(&bad).is_err());
        let mut bad = enc;
        bad[96..128].copy_from_slice(&u64_word(u32::MAX as u64));
        assert!(decode_stateful_input(&bad).is_err());
    }

    #[test]
    fn bytes_tail_is_padded() {
        let mut out = Vec::new();
        push_bytes_tail(&mut out, &[]);
        assert_eq!(out, u64_word(0).to_vec());
        let mut out = Vec::new();
        push_bytes_tail(&mut out, &[5; 32]);
        assert_eq!(out.len(), 64);
    }
}
