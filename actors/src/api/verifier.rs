//! Request signature checks, off the socket's thread: one recovery costs
//! ~43 µs, so a pool of sync actors does them beside the executors.
//!
//! Two rule sets ([`Rules`]): with no chain the recovered signer is checked
//! against the allow-list next; with a chain the signature is first held
//! to the rules of the consumers' `ECDSA.tryRecover`, so a signature that
//! no ECDSA signer can have made is refused at no cost to the node.

use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded, Handle};
use crate::protocol::eip191::{self, SignatureError};
use actix::{Actor, Handler, Message, SyncContext};
use alloy::primitives::{Address, B256};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::Secp256k1;
use std::sync::Arc;

/// Recover the EIP-191 signer of `request` under `rules`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Recovered, Unrecoverable>")]
pub(crate) struct Verify {
    /// The signed bytes.
    pub request: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// Which signatures recover.
    pub rules: Rules,
}

/// Which signatures recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// Any that libsecp256k1 recovers (`v` 0, 1, 27 or 28; any `s`), as
    /// `protocol::eip191::recover` does: with no chain.
    Lenient,
    /// Only those OpenZeppelin's `ECDSA.tryRecover` (what the example
    /// consumers' `isValidSignature` runs) recovers: `v` 27 or 28 (the only
    /// ones `ecrecover` knows) and `s` in the lower half of the curve order
    /// (the other half is the malleable twin). With a chain.
    Ecrecover,
}

/// A signature's signer, and the digest it signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The signer.
    pub signer: Address,
    /// The request's EIP-191 digest.
    pub digest: B256,
}

/// Why a signature recovers to no signer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Unrecoverable {
    /// Malformed, or no key.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// `s` over half the curve order ([`Rules::Ecrecover`]).
    #[error("signature s is over half the curve order (a malleable signature)")]
    HighS,
}

/// Half the secp256k1 group order, big-endian: the largest `s`
/// [`Rules::Ecrecover`] allows.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

thread_local! {
    static SECP: Secp256k1<secp256k1::VerifyOnly> = Secp256k1::verification_only();
}

/// The signer of `request` (EIP-191) with `signature`, under `rules`; the
/// request is hashed once.
pub(crate) fn recover(request: &[u8], signature: &[u8], rules: Rules) -> Result<Recovered, Unrecoverable> {
    let bytes: &[u8; 65] = signature.try_into().map_err(|_| SignatureError::Length(signature.len()))?;
    let v = bytes[64];
    let id = match (v, rules) {
        (27 | 28, _) => v - 27,
        (0 | 1, Rules::Lenient) => v,
        (other, _) => return Err(SignatureError::RecoveryId(other).into()),
    };
    // Big-endian byte strings of one length compare as the numbers they are.
    if rules == Rules::Ecrecover && bytes[32..64] > HALF_ORDER[..] {
        return Err(Unrecoverable::HighS);
    }
    let id = RecoveryId::try_from(i32::from(id)).map_err(|_| SignatureError::RecoveryId(v))?;
    let compact = RecoverableSignature::from_compact(&bytes[..64], id).map_err(|_| SignatureError::Invalid)?;
    let digest = eip191::digest(request);
    let message = secp256k1::Message::from_digest(digest.0);
    let key = SECP.with(|secp| secp.recover_ecdsa(&message, &compact)).map_err(|_| SignatureError::Invalid)?;
    Ok(Recovered { signer: eip191::address(&key), digest })
}

/// One verifier thread.
#[derive(Debug)]
pub(crate) struct Verifier {
    metrics: Arc<ActorMetrics>,
}

impl Verifier {
    /// Starts `threads` verifiers.
    pub(crate) fn start(threads: usize, metrics: &Metrics) -> Handle<Verifier> {
        crate::pool::start_sync(ActorName::Verifier, threads, metrics, |metrics| Verifier { metrics })
    }
}

impl Actor for Verifier {
    type Context = SyncContext<Self>;
}

impl Handler<Verify> for Verifier {
    type Result = Result<Recovered, Unrecoverable>;

    fn handle(&mut self, msg: Verify, ctx: &mut SyncContext<Self>) -> Self::Result {
        guarded(&self.metrics, ctx, || recover(&msg.request, &msg.signature, msg.rules))
            .unwrap_or(Err(Unrecoverable::Signature(SignatureError::Invalid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::eip191::Signer;

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
    /// or the reason. The lenient rules must agree with `eip191::recover`.
    fn both(request: &[u8], signature: &[u8]) -> (Result<Address, Unrecoverable>, Result<Address, Unrecoverable>) {
        let signer = |rules| recover(request, signature, rules).map(|r| r.signer);
        let lenient = signer(Rules::Lenient);
        assert_eq!(lenient, eip191::recover(request, signature).map_err(Unrecoverable::from));
        (lenient, signer(Rules::Ecrecover))
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
        let recovered = Recovered { signer: signer.address(), digest: eip191::digest(b"request") };
        assert_eq!(recover(b"request", &signature, Rules::Lenient), Ok(recovered));
        assert_eq!(recover(b"request", &signature, Rules::Ecrecover), Ok(recovered));
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
        let length = |n| Err(Unrecoverable::Signature(SignatureError::Length(n)));
        assert_eq!(both(b"request", &signature[..64]), (length(64), length(64)));
        assert_eq!(both(b"request", &[]), (length(0), length(0)));

        // v = 0 or 1: libsecp256k1 recovers it, ecrecover does not.
        let mut raw_v = signature;
        raw_v[64] -= 27;
        let v = raw_v[64];
        assert_eq!(
            both(b"request", &raw_v),
            (Ok(signer.address()), Err(Unrecoverable::Signature(SignatureError::RecoveryId(v))))
        );
        raw_v[64] = 29;
        let bad_v = || Err(Unrecoverable::Signature(SignatureError::RecoveryId(29)));
        assert_eq!(both(b"request", &raw_v), (bad_v(), bad_v()));

        // The malleable twin (n - s, v flipped) recovers the same key, but
        // not under ecrecover's rules.
        let mut twin = signature;
        twin[32..64].copy_from_slice(&negate(&signature[32..64]));
        twin[64] = if signature[64] == 27 { 28 } else { 27 };
        assert_eq!(both(b"request", &twin), (Ok(signer.address()), Err(Unrecoverable::HighS)));
        assert_eq!(
            Unrecoverable::HighS.to_string(),
            "signature s is over half the curve order (a malleable signature)"
        );

        // s = n/2 is the largest allowed, one more is not; r = 0 has no key.
        let mut edge = [0u8; 65];
        edge[32..64].copy_from_slice(&HALF_ORDER);
        edge[64] = 27;
        let invalid = || Err(Unrecoverable::Signature(SignatureError::Invalid));
        assert_eq!(both(b"request", &edge), (invalid(), invalid()));
        edge[63] += 1;
        assert_eq!(both(b"request", &edge), (invalid(), Err(Unrecoverable::HighS)));
    }
}
