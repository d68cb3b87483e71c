//! The submitter: signs executed jobs' results and records them.
//!
//! A pool of sync actors (signing costs ~28 µs, so it runs beside the
//! executors, not on the socket's thread). Each result goes to the store's
//! group commit; once it is durable the job leaves the board (handing the
//! result to a waiting `wait: true` caller) and, when the engine settles
//! onchain, a successful result goes to the relayer.

mod signing;

use crate::board::JobBoard;
use crate::job::{JobOutcome, JobSpec, Status};
use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::{guarded, inject_panic, Handle, Mailbox, Panic};
use crate::protocol::eip191::Signer;
use crate::relayer::Relay;
use crate::store::{Store, Write};
use actix::{Actor, Handler, Message, SyncContext};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An executed job, to be signed and recorded.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Executed {
    /// The job.
    pub(crate) spec: Arc<JobSpec>,
    /// What the VM produced.
    pub(crate) outcome: JobOutcome,
}

/// What every submitter thread shares.
#[derive(Debug, Clone)]
pub(crate) struct SubmitterSetup {
    /// Where results go.
    pub(crate) store: Store,
    /// Jobs in flight.
    pub(crate) board: Arc<JobBoard>,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The operator key.
    pub(crate) operator: Signer,
    /// The relayer, when the engine settles onchain.
    pub(crate) relayer: Option<Mailbox<Relay>>,
}

/// One submitter thread.
#[derive(Debug)]
pub(crate) struct Submitter {
    setup: SubmitterSetup,
    actor: Arc<ActorMetrics>,
}

impl Submitter {
    /// Starts `threads` submitters.
    pub(crate) fn start(threads: usize, setup: SubmitterSetup) -> Handle<Submitter> {
        let metrics = Arc::clone(&setup.metrics);
        crate::pool::start_sync(ActorName::Submitter, threads, &metrics, move |actor| Submitter {
            setup: setup.clone(),
            actor,
        })
    }

    fn record(&self, msg: Executed) {
        let Executed { spec, outcome } = msg;
        if !outcome.log.is_empty() {
            tracing::debug!(job = %spec.id, log = %String::from_utf8_lossy(&outcome.log), "guest log");
        }
        let record = Arc::new(signing::sign_result(&spec, outcome, &self.setup.operator));
        let status = record.status();
        let write = Write::executed(&spec, &record);
        let (board, metrics, id) = (Arc::clone(&self.setup.board), Arc::clone(&self.setup.metrics), spec.id);
        // Only a successful result is relayed (as in InfinityVM).
        let relay = match (&self.setup.relayer, status) {
            (Some(relayer), Status::Done) => {
                Some((relayer.clone(), Relay { spec, result: Arc::clone(&record), resumed: None, ended: None }))
            }
            _ => None,
        };
        self.setup.store.commit(
            vec![write],
            Box::new(move |result| match result {
                Ok(()) => {
                    let counter = if status == Status::Done { &metrics.engine.done } else { &metrics.engine.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if let Some((relayer, message)) = relay {
                        relayer.do_send(message);
                    }
                    board.finish(&id, record);
                }
                // The job stays pending in the store and runs again at start-up.
                Err(err) => {
                    tracing::error!(job = %id, %err, "result not recorded");
                    board.remove(&id);
                }
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
