//! The submitter: signs executed jobs' results and records them.
//!
//! A pool of sync actors (signing costs ~28 µs, so it runs beside the
//! executors, not on the socket's thread). Each result goes to the store's
//! group commit; once it is durable the job leaves the board and, when the
//! engine settles onchain, a successful result goes to the [`relay`]er.

pub mod relay;
pub mod signing;

use crate::executor::vm::JobOutcome;
use crate::jobs::JobBoard;
use crate::metrics::{ActorMetrics, Metrics};
use crate::protocol::eip191::Signer;
use crate::store::{JobSpec, Status, Store, Write};
use crate::supervisor::{guarded, inject_panic, Panic, RestartCount};
use actix::{Actor, Addr, Handler, Message, Recipient, SyncContext};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An executed job, to be signed and recorded.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Executed {
    /// The job.
    pub spec: Arc<JobSpec>,
    /// What the VM produced.
    pub outcome: JobOutcome,
}

/// What every submitter thread shares.
#[derive(Debug, Clone)]
pub struct SubmitterSetup {
    /// Where results go.
    pub store: Store,
    /// Jobs in flight.
    pub board: Arc<JobBoard>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The operator key.
    pub operator: Signer,
    /// The relayer, when the engine settles onchain.
    pub relayer: Option<Recipient<relay::Relay>>,
}

/// One submitter thread.
#[derive(Debug)]
pub struct Submitter {
    setup: SubmitterSetup,
    actor: Arc<ActorMetrics>,
}

impl Submitter {
    /// Starts `threads` submitters.
    pub fn start(threads: usize, setup: SubmitterSetup) -> Addr<Submitter> {
        let actor = setup.metrics.actor("submitter");
        let restarts = RestartCount::new(threads, Arc::clone(&actor));
        crate::supervisor::start_pool("submitter", threads, move || {
            restarts.started();
            Submitter { setup: setup.clone(), actor: Arc::clone(&actor) }
        })
    }

    fn record(&self, msg: Executed) {
        let Executed { spec, outcome } = msg;
        let log = outcome.log.clone();
        let record = signing::sign_result(&spec, outcome, &self.setup.operator);
        let status = record.status();
        if !log.is_empty() {
            tracing::debug!(job = %hex::encode(spec.id), log = %String::from_utf8_lossy(&log), "guest log");
        }
        let board = Arc::clone(&self.setup.board);
        let metrics = Arc::clone(&self.setup.metrics);
        let id = spec.id;
        let write = Write::executed(id, &record);
        // Only a successful result is relayed (as in InfinityVM).
        let relay = match (&self.setup.relayer, status) {
            (Some(relayer), Status::Done) => Some((
                relayer.clone(),
                relay::Relay { spec, result_with_metadata: record.result_with_metadata, signature: record.signature },
            )),
            _ => None,
        };
        self.setup.store.commit(
            vec![write],
            Box::new(move |result| {
                match result {
                    Ok(()) if status == Status::Done => {
                        if let Some((relayer, message)) = relay {
                            metrics.actor("relayer").received();
                            relayer.do_send(message);
                        }
                        metrics.engine.done.fetch_add(1, Ordering::Relaxed)
                    }
                    Ok(()) => metrics.engine.failed.fetch_add(1, Ordering::Relaxed),
                    // The job stays pending in the store and runs again at start-up.
                    Err(err) => {
                        tracing::error!(job = %hex::encode(id), %err, "result not recorded");
                        0
                    }
                };
                board.remove(&id);
            }),
        );
    }
}

impl Actor for Submitter {
    type Context = SyncContext<Self>;
}

impl Handler<Executed> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: Executed, ctx: &mut SyncContext<Self>) {
        let actor = Arc::clone(&self.actor);
        let _ = guarded(&actor, ctx, || {
            self.record(msg);
            Ok::<(), Infallible>(())
        });
    }
}

impl Handler<Panic> for Submitter {
    type Result = ();

    fn handle(&mut self, _: Panic, ctx: &mut SyncContext<Self>) {
        inject_panic(&self.actor, ctx);
    }
}
