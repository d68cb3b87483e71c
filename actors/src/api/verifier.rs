//! Request signature checks, off the socket's thread: one recovery costs
//! ~43 µs, so a pool of sync actors does them beside the executors. The
//! same pool computes the blob hashes of offchain inputs posted as blobs
//! (a compression and a KZG commitment per blob: milliseconds).
//!
//! Two rule sets ([`Rules`]): with no chain the recovered signer is checked
//! against the allow-list next; with a chain the signature is first held
//! to the rules of the consumers' `ECDSA.tryRecover`, so a signature that
//! no ECDSA signer can have made is refused at no cost to the node.

use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded, Handle};
use crate::protocol::blobs::{versioned_hashes, BlobError};
use crate::protocol::eip191::{recover_under, Recovered, Rules, SignatureError};
use actix::{Actor, Handler, Message, SyncContext};
use std::sync::Arc;

/// Recover the EIP-191 signer of `request` under `rules`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Recovered, SignatureError>")]
pub(crate) struct Verify {
    /// The signed bytes.
    pub request: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// Which signatures recover: [`Rules::Lenient`] with no chain,
    /// [`Rules::Ecrecover`] (what the consumers' `isValidSignature` runs)
    /// with one.
    pub rules: Rules,
}

/// The versioned hashes of the blobs `input` takes (at most `limit`).
#[derive(Debug, Message)]
#[rtype(result = "(Vec<u8>, Result<Vec<[u8; 32]>, BlobError>)")]
pub(crate) struct BlobHashes {
    /// The offchain input, handed back with the answer.
    pub input: Vec<u8>,
    /// `chain.max_blobs_per_job`.
    pub limit: usize,
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
    type Result = Result<Recovered, SignatureError>;

    fn handle(&mut self, msg: Verify, ctx: &mut SyncContext<Self>) -> Self::Result {
        guarded(&self.metrics, ctx, || recover_under(&msg.request, &msg.signature, msg.rules))
            .unwrap_or(Err(SignatureError::Invalid))
    }
}

impl Handler<BlobHashes> for Verifier {
    type Result = actix::MessageResult<BlobHashes>;

    fn handle(&mut self, msg: BlobHashes, ctx: &mut SyncContext<Self>) -> Self::Result {
        let hashes = guarded(&self.metrics, ctx, || versioned_hashes(&msg.input, msg.limit))
            .unwrap_or_else(|| Err(BlobError::Kzg("the blob hashing panicked".to_owned())))
            .map(|hashes| hashes.into_iter().map(|hash| hash.0).collect());
        actix::MessageResult((msg.input, hashes))
    }
}
