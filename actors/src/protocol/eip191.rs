//! EIP-191 `personal_sign` over raw bytes, with libsecp256k1.
//!
//! Signatures are 65 bytes `r ‖ s ‖ v` with `v` = 27 or 28, as InfinityVM's
//! contracts (Solady `ECDSA.tryRecover` over `toEthSignedMessageHash`) expect.

use alloy::primitives::{eip191_hash_message, keccak256, Address, B256};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, Secp256k1, SecretKey};

/// Why a signature could not be checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// Not 65 bytes.
    #[error("signature must be 65 bytes, got {0}")]
    Length(usize),
    /// `v` is not 27 or 28 (or 0 or 1).
    #[error("signature v must be 27 or 28, got {0}")]
    RecoveryId(u8),
    /// The signature does not recover to any key.
    #[error("signature does not recover to a key")]
    Invalid,
    /// `s` over half the curve order ([`Rules::Ecrecover`]).
    #[error("signature s is over half the curve order (a malleable signature)")]
    HighS,
}

/// Which signatures recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Any that libsecp256k1 recovers: `v` 0, 1, 27 or 28, any `s`.
    Lenient,
    /// Only those OpenZeppelin's `ECDSA.tryRecover` (what the example
    /// consumers' `isValidSignature` and the JobManager run) recovers: `v`
    /// 27 or 28 (the only ones `ecrecover` knows) and `s` in the lower half
    /// of the curve order (the other half is the malleable twin).
    Ecrecover,
}

/// A signature's signer, and the digest it signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// The signer.
    pub signer: Address,
    /// The message's EIP-191 digest.
    pub digest: B256,
}

/// Half the secp256k1 group order, big-endian: the largest `s`
/// [`Rules::Ecrecover`] allows.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The digest an EIP-191 signer signs for `message`.
pub fn digest(message: &[u8]) -> B256 {
    eip191_hash_message(message)
}

/// The Ethereum address of a public key.
pub fn address(key: &PublicKey) -> Address {
    let uncompressed = key.serialize_uncompressed();
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}

/// A secp256k1 signing key with its address.
#[derive(Clone)]
pub struct Signer {
    secret: SecretKey,
    address: Address,
}

impl std::fmt::Debug for Signer {
    /// Shows the address only; the key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Signer, SignatureError> {
        let secret = SecretKey::from_byte_array(secret).map_err(|_| SignatureError::Invalid)?;
        let address = address(&secret.public_key(&Secp256k1::signing_only()));
        Ok(Signer { secret, address })
    }

    /// A fresh random signer.
    pub fn random() -> Signer {
        let secret = SecretKey::new(&mut secp256k1::rand::thread_rng());
        let address = address(&secret.public_key(&Secp256k1::signing_only()));
        Signer { secret, address }
    }

    /// The secret bytes (for storing the key file).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.secret_bytes()
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// EIP-191 `personal_sign` of `message`: 65 bytes `r ‖ s ‖ v`, v = 27/28.
    pub fn sign(&self, message: &[u8]) -> [u8; 65] {
        let digest = Message::from_digest(digest(message).0);
        let signature = SECP.with(|secp| secp.sign_ecdsa_recoverable(&digest, &self.secret));
        let (id, rs) = signature.serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&rs);
        out[64] = 27 + i32::from(id) as u8;
        out
    }
}

thread_local! {
    static SECP: Secp256k1<secp256k1::All> = Secp256k1::new();
}

/// The address that signed `message` (EIP-191) with `signature`, under
/// [`Rules::Lenient`].
pub fn recover(message: &[u8], signature: &[u8]) -> Result<Address, SignatureError> {
    recover_under(message, signature, Rules::Lenient).map(|recovered| recovered.signer)
}

/// The signer of `message` (EIP-191) with `signature` under `rules`, and
/// the digest (the message is hashed once).
pub fn recover_under(message: &[u8], signature: &[u8], rules: Rules) -> Result<Recovered, SignatureError> {
    let bytes: &[u8; 65] = signature.try_into().map_err(|_| SignatureError::Length(signature.len()))?;
    let v = bytes[64];
    let id = match (v, rules) {
        (27 | 28, _) => v - 27,
        (0 | 1, Rules::Lenient) => v,
        (other, _) => return Err(SignatureError::RecoveryId(other)),
    };
    // Big-endian byte strings of one length compare as the numbers they are.
    if rules == Rules::Ecrecover && bytes[32..64] > HALF_ORDER[..] {
        return Err(SignatureError::HighS);
    }
    let id = RecoveryId::try_from(i32::from(id)).map_err(|_| SignatureError::RecoveryId(v))?;
    let signature = RecoverableSignature::from_compact(&bytes[..64], id).map_err(|_| SignatureError::Invalid)?;
    let digest = digest(message);
    let message = Message::from_digest(digest.0);
    let key = SECP.with(|secp| secp.recover_ecdsa(&message, &signature)).map_err(|_| SignatureError::Invalid)?;
    Ok(Recovered { signer: address(&key), digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_one() -> Signer {
        let mut secret = [0u8; 32];
        secret[31] = 1;
        Signer::from_bytes(&secret).unwrap()
    }

    #[test]
    fn the_address_of_private_key_1_is_the_well_known_one() {
        assert_eq!(key_one().address(), "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf".parse::<Address>().unwrap());
    }

    #[test]
    fn a_signature_recovers_to_its_signer() {
        let signer = Signer::random();
        let signature = signer.sign(b"result bytes");
        assert!(matches!(signature[64], 27 | 28));
        assert_eq!(recover(b"result bytes", &signature), Ok(signer.address()));
        assert_ne!(recover(b"other bytes", &signature), Ok(signer.address()));
    }

    #[test]
    fn the_digest_is_the_personal_sign_prefix_hash() {
        let mut prefixed = b"\x19Ethereum Signed Message:\n5".to_vec();
        prefixed.extend_from_slice(b"hello");
        assert_eq!(digest(b"hello"), keccak256(&prefixed));
    }

    #[test]
    fn malformed_signatures_are_errors() {
        assert_eq!(recover(b"m", &[0u8; 64]), Err(SignatureError::Length(64)));
        let mut signature = key_one().sign(b"m");
        signature[64] = 29;
        assert_eq!(recover(b"m", &signature), Err(SignatureError::RecoveryId(29)));
        assert_eq!(recover(b"m", &[0u8; 65]), Err(SignatureError::Invalid));
    }

    #[test]
    fn the_debug_form_never_shows_the_key() {
        let text = format!("{:?}", key_one());
        assert!(text.contains("address"));
        assert!(!text.contains("0000000000000000000000000000000000000000000000000000000000000001"));
    }

    /// The secp256k1 group order, big-endian.
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae,
        0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
    ];

    /// `n - s`, big-endian.
    fn negate(s: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut digit = i16::from(ORDER[i]) - i16::from(s[i]) - borrow;
            borrow = i16::from(digit < 0);
            if digit < 0 {
                digit += 256;
            }
            out[i] = digit as u8;
        }
        out
    }

    /// What each rule set makes of `signature` over `request`: the signer
    /// or the reason.
    fn both(request: &[u8], signature: &[u8]) -> (Result<Address, SignatureError>, Result<Address, SignatureError>) {
        let signer = |rules| recover_under(request, signature, rules).map(|r| r.signer);
        (signer(Rules::Lenient), signer(Rules::Ecrecover))
    }

    #[test]
    fn half_order_is_half_the_group_order() {
        // n is odd: n = 2 * HALF_ORDER + 1.
        let mut doubled = [0u8; 32];
        let mut carry = 1u16;
        for i in (0..32).rev() {
            let digit = u16::from(HALF_ORDER[i]) * 2 + carry;
            doubled[i] = digit as u8;
            carry = digit >> 8;
        }
        assert_eq!((doubled, carry), (ORDER, 0));
    }

    #[test]
    fn a_well_formed_signature_recovers_its_signer_and_the_digest_under_both_rules() {
        let signer = Signer::random();
        let signature = signer.sign(b"request");
        let recovered = Recovered { signer: signer.address(), digest: digest(b"request") };
        assert_eq!(recover_under(b"request", &signature, Rules::Lenient), Ok(recovered));
        assert_eq!(recover_under(b"request", &signature, Rules::Ecrecover), Ok(recovered));
        // Over another message it recovers some other key, which the chain
        // then refuses.
        let (lenient, strict) = both(b"other", &signature);
        assert!(matches!(lenient, Ok(other) if other != signer.address()), "{lenient:?}");
        assert_eq!(strict, lenient);
    }

    #[test]
    fn ecrecover_rules_refuse_what_ecdsa_try_recover_refuses_with_the_reason() {
        let signer = Signer::random();
        let signature = signer.sign(b"request");
        let length = |n| Err(SignatureError::Length(n));
        assert_eq!(both(b"request", &signature[..64]), (length(64), length(64)));
        assert_eq!(both(b"request", &[]), (length(0), length(0)));

        // v = 0 or 1: libsecp256k1 recovers it, ecrecover does not.
        let mut raw_v = signature;
        raw_v[64] -= 27;
        let v = raw_v[64];
        assert_eq!(both(b"request", &raw_v), (Ok(signer.address()), Err(SignatureError::RecoveryId(v))));
        raw_v[64] = 29;
        let bad_v = || Err(SignatureError::RecoveryId(29));
        assert_eq!(both(b"request", &raw_v), (bad_v(), bad_v()));

        // The malleable twin (n - s, v flipped) recovers the same key, but
        // not under ecrecover's rules.
        let mut twin = signature;
        twin[32..64].copy_from_slice(&negate(&signature[32..64]));
        twin[64] = if signature[64] == 27 { 28 } else { 27 };
        assert_eq!(both(b"request", &twin), (Ok(signer.address()), Err(SignatureError::HighS)));
        assert_eq!(
            SignatureError::HighS.to_string(),
            "signature s is over half the curve order (a malleable signature)"
        );

        // s = n/2 is the largest allowed, one more is not; r = 0 has no key.
        let mut edge = [0u8; 65];
        edge[32..64].copy_from_slice(&HALF_ORDER);
        edge[64] = 27;
        let invalid = || Err(SignatureError::Invalid);
        assert_eq!(both(b"request", &edge), (invalid(), invalid()));
        edge[63] += 1;
        assert_eq!(both(b"request", &edge), (invalid(), Err(SignatureError::HighS)));
    }
}
