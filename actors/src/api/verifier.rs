//! Request signature checks, off the socket's thread: one recovery costs
//! ~43 µs, so a pool of sync actors does them beside the executors.

use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded, Handle};
use crate::protocol::eip191::{recover, SignatureError};
use actix::{Actor, Handler, Message, SyncContext};
use alloy::primitives::Address;
use std::sync::Arc;

/// Recover the EIP-191 signer of `request`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Address, SignatureError>")]
pub(crate) struct Verify {
    /// The signed bytes.
    pub request: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
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
    type Result = Result<Address, SignatureError>;

    fn handle(&mut self, msg: Verify, ctx: &mut SyncContext<Self>) -> Self::Result {
        guarded(&self.metrics, ctx, || recover(&msg.request, &msg.signature)).unwrap_or(Err(SignatureError::Invalid))
    }
}
