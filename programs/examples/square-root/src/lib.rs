//! Square root: the exact integer square root of a 256-bit number.
//!
//! - Onchain input: `abi.encode(uint256 n)`, exactly 32 bytes, big-endian.
//!   The offchain input is ignored.
//! - Output: `abi.encode(uint256 n, uint256 floor(sqrt(n)))`, 64 bytes.
//!
//! The root is computed with the bit-by-bit (digit-by-digit, base 4) method
//! on a 256-bit integer held as two `u128` halves: 128 steps of compare,
//! subtract and shift, exact over the full range.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
pub use coprocessor_abi::AbiError as Error;
use coprocessor_abi::Word;

/// A 256-bit unsigned integer: `hi * 2^128 + lo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct U256 {
    /// The high 128 bits.
    pub hi: u128,
    /// The low 128 bits.
    pub lo: u128,
}

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256 { hi: 0, lo: 0 };
    /// 2^256 - 1.
    pub const MAX: U256 = U256 { hi: u128::MAX, lo: u128::MAX };

    /// From 32 big-endian bytes.
    pub fn from_be_bytes(b: &Word) -> U256 {
        let mut hi = [0u8; 16];
        let mut lo = [0u8; 16];
        hi.copy_from_slice(&b[..16]);
        lo.copy_from_slice(&b[16..]);
        U256 { hi: u128::from_be_bytes(hi), lo: u128::from_be_bytes(lo) }
    }

    /// To 32 big-endian bytes.
    pub fn to_be_bytes(self) -> Word {
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.hi.to_be_bytes());
        out[16..].copy_from_slice(&self.lo.to_be_bytes());
        out
    }

    /// `self + rhs`; the callers here never overflow.
    fn add(self, rhs: U256) -> U256 {
        let (lo, carry) = self.lo.overflowing_add(rhs.lo);
        U256 { hi: self.hi.wrapping_add(rhs.hi).wrapping_add(carry as u128), lo }
    }

    /// `self - rhs` for `self >= rhs`.
    fn sub(self, rhs: U256) -> U256 {
        let (lo, borrow) = self.lo.overflowing_sub(rhs.lo);
        U256 { hi: self.hi.wrapping_sub(rhs.hi).wrapping_sub(borrow as u128), lo }
    }

    /// `self >> s` for `s` in 1..128.
    fn shr(self, s: u32) -> U256 {
        U256 { hi: self.hi >> s, lo: (self.lo >> s) | (self.hi << (128 - s)) }
    }
}

/// `floor(sqrt(n))`, exact for every 256-bit `n`. The result is below 2^128.
pub fn isqrt(n: U256) -> u128 {
    if n == U256::ZERO {
        return 0;
    }
    let mut rem = n;
    let mut root = U256::ZERO;
    // The largest power of 4 that is <= n.
    let leading_zeros = if n.hi != 0 { n.hi.leading_zeros() } else { 128 + n.lo.leading_zeros() };
    let shift = (255 - leading_zeros) & !1;
    let mut bit = if shift >= 128 { U256 { hi: 1 << (shift - 128), lo: 0 } } else { U256 { hi: 0, lo: 1 << shift } };
    // Invariant at bit = 4^k: root = 2 * r * 4^k, where r = floor(sqrt(n /
    // 4^(k+1))) is the root of the bits above, and rem = n - r^2 * 4^(k+1).
    // r < 2^(127-k), so root + bit < 2^(128+k) <= 2^255: no overflow.
    while bit != U256::ZERO {
        let trial = root.add(bit);
        if rem >= trial {
            rem = rem.sub(trial);
            root = root.shr(1).add(bit);
        } else {
            root = root.shr(1);
        }
        bit = bit.shr(2);
    }
    root.lo
}

/// The guest's whole job: decodes `n`, returns
/// `abi.encode(uint256 n, uint256 floor(sqrt(n)))`.
pub fn run(onchain: &[u8], _offchain: &[u8]) -> Result<Vec<u8>, Error> {
    let word = coprocessor_abi::decode_word(onchain)?;
    let root = isqrt(U256::from_be_bytes(&word));
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&word);
    out.extend_from_slice(&U256 { hi: 0, lo: root }.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(v: u128) -> U256 {
        U256 { hi: 0, lo: v }
    }

    /// `a * a` as a 256-bit number (schoolbook on 64-bit limbs).
    fn square(a: u128) -> U256 {
        let (a1, a0) = (a >> 64, a & u64::MAX as u128);
        let low = a0 * a0;
        let mid = a0 * a1; // appears twice
        let high = a1 * a1;
        let (mid2, mid_carry) = mid.overflowing_add(mid);
        let (lo, c1) = low.overflowing_add(mid2 << 64);
        let hi = high + (mid2 >> 64) + ((mid_carry as u128) << 64) + c1 as u128;
        U256 { hi, lo }
    }

    fn check(n: U256) {
        let r = isqrt(n);
        assert!(square(r) <= n, "root too big for {n:?}");
        if r != u128::MAX {
            assert!(square(r + 1) > n, "root too small for {n:?}");
        }
    }

    #[test]
    fn small_values() {
        let expected = [0u128, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4];
        for (n, &r) in expected.iter().enumerate() {
            assert_eq!(isqrt(u(n as u128)), r, "n = {n}");
        }
        assert_eq!(isqrt(u(1_000_000)), 1000);
        assert_eq!(isqrt(u(999_999)), 999);
    }

    #[test]
    fn extremes() {
        assert_eq!(isqrt(U256::MAX), u128::MAX);
        let max_square = square(u128::MAX); // (2^128 - 1)^2
        assert_eq!(isqrt(max_square), u128::MAX);
        assert_eq!(isqrt(max_square.sub(u(1))), u128::MAX - 1);
        assert_eq!(isqrt(U256 { hi: 1, lo: 0 }), 1 << 64); // 2^128
        assert_eq!(isqrt(U256 { hi: 1 << 126, lo: 0 }), 1 << 127); // 2^254
        check(U256 { hi: 1 << 127, lo: 0 }); // 2^255, not a square
        assert_eq!(isqrt(u(u128::MAX)), u64::MAX as u128);
    }

    #[test]
    fn pseudo_random_values_satisfy_the_definition() {
        let mut x = 0x2545_f491_4f6c_dd1d_u128;
        for i in 0..2000u32 {
            x ^= x << 35;
            x ^= x >> 21;
            x ^= x << 4;
            let hi = x.rotate_left(i) >> (i % 128);
            let n = U256 { hi, lo: x.wrapping_mul(0x9e37_79b9_7f4a_7c15) };
            check(n);
            let r = x >> (i % 128);
            check(square(r));
            if r > 0 {
                check(square(r).sub(u(1)));
            }
        }
    }

    #[test]
    fn run_encodes_n_and_root() {
        let mut input = [0u8; 32];
        input[31] = 17;
        let out = run(&input, &[]).unwrap();
        assert_eq!(out.len(), 64);
        assert_eq!(&out[..32], &input);
        assert_eq!(out[63], 4);
        assert!(out[32..63].iter().all(|&b| b == 0));

        let out = run(&[0xff; 32], &[]).unwrap();
        assert_eq!(&out[32..48], &[0u8; 16]);
        assert_eq!(&out[48..], &[0xff; 16]);
        assert!(run(&[0u8; 33], &[]).is_err());
        assert!(run(&[], &[]).is_err());
    }
}
