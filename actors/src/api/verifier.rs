//! Request signature checks, off the socket's thread: one recovery costs
//! ~43 µs, so a pool of sync actors does them beside the executors.

use crate::metrics::ActorMetrics;
use crate::protocol::eip191::{recover, SignatureError};
use crate::supervisor::{guarded, RestartCount};
use actix::{Actor, Addr, Handler, Message, SyncContext};
use alloy::primitives::Address;
use std::sync::Arc;

/// Recover the EIP-191 signer of `request`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Address, SignatureError>")]
pub struct Verify {
    /// The signed bytes.
    pub request: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// One verifier thread.
#[derive(Debug)]
pub struct Verifier {
    metrics: Arc<ActorMetrics>,
}

impl Verifier {
    /// Starts `threads` verifiers.
    pub fn start(threads: usize, metrics: Arc<ActorMetrics>) -> Addr<Verifier> {
        let restarts = RestartCount::new(threads, Arc::clone(&metrics));
        crate::supervisor::start_pool("verifier", threads, move || {
            restarts.started();
            Verifier { metrics: Arc::clone(&metrics) }
        })
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
