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
}

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

/// The address that signed `message` (EIP-191) with `signature`.
pub fn recover(message: &[u8], signature: &[u8]) -> Result<Address, SignatureError> {
    let bytes: &[u8; 65] = signature.try_into().map_err(|_| SignatureError::Length(signature.len()))?;
    let v = bytes[64];
    let id = match v {
        27 | 28 => v - 27,
        0 | 1 => v,
        other => return Err(SignatureError::RecoveryId(other)),
    };
    let id = RecoveryId::try_from(i32::from(id)).map_err(|_| SignatureError::RecoveryId(v))?;
    let signature = RecoverableSignature::from_compact(&bytes[..64], id).map_err(|_| SignatureError::Invalid)?;
    let digest = Message::from_digest(digest(message).0);
    let key = SECP.with(|secp| secp.recover_ecdsa(&digest, &signature)).map_err(|_| SignatureError::Invalid)?;
    Ok(address(&key))
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
}
