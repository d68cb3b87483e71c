//! Request signature checks, off the socket's thread: one recovery costs
//! ~43 µs, so a pool of sync actors does them beside the executors.

use crate::metrics::ActorMetrics;
use crate::protocol::eip191::{recover, SignatureError};
use crate::supervisor::{guarded, RestartCount};
use actix::{Actor, Addr, Handler, Message, SyncContext};
use alloy::primitives::Address;
use std::sync::Arc;

/// Recover the EIP-191 signer of `request`. The request comes back with
/// the answer, so it is not copied.
#[derive(Debug, Message)]
#[rtype(result = "Verified")]
pub struct Verify {
    /// The signed bytes.
    pub request: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// The answer to [`Verify`].
#[derive(Debug, actix::MessageResponse)]
pub struct Verified {
    /// The signed bytes, handed back.
    pub request: Vec<u8>,
    /// The signer, or why there is none.
    pub signer: Result<Address, SignatureError>,
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
    type Result = Verified;

    fn handle(&mut self, msg: Verify, ctx: &mut SyncContext<Self>) -> Self::Result {
        let metrics = Arc::clone(&self.metrics);
        let signer = guarded(&metrics, ctx, || recover(&msg.request, &msg.signature));
        Verified { request: msg.request, signer: signer.unwrap_or(Err(SignatureError::Invalid)) }
    }
}
