//! Intake: how a job enters the engine, from the socket or from a
//! `JobCreated` event. Admission (nonce and queue), the `Pending` record,
//! and dispatch to the executors, in that order.

use crate::board::{AdmitError, Finished, JobBoard};
use crate::executor::Execute;
use crate::job::JobSpec;
use crate::metrics::Metrics;
use crate::pool::Mailbox;
use crate::store::{CommitError, Store, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What admitting a job hands back.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Resolves once the job's `Pending` record is durable (or failed).
    pub(crate) durable: tokio::sync::oneshot::Receiver<Result<(), CommitError>>,
    /// Resolves with its result once that is durable, if asked for.
    pub(crate) executed: Option<tokio::sync::oneshot::Receiver<Finished>>,
}

/// The parts admission needs.
#[derive(Debug, Clone)]
pub(crate) struct Intake {
    /// Where the `Pending` record goes.
    pub(crate) store: Store,
    /// Jobs in flight.
    pub(crate) board: Arc<JobBoard>,
    /// Where the job runs.
    pub(crate) executor: Mailbox<Execute>,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
}

impl Intake {
    /// Admits `spec`, queues its `Pending` record and dispatches it. The
    /// caller acknowledges the job only once `durable` resolves.
    pub(crate) fn admit(&self, spec: Arc<JobSpec>, wait: bool) -> Result<Admitted, AdmitError> {
        self.board.admit(&spec, &self.store)?;
        let executed = if wait { self.board.wait(&spec.id) } else { None };
        let (durable_tx, durable) = tokio::sync::oneshot::channel();
        let (metrics, board, id) = (Arc::clone(&self.metrics), Arc::clone(&self.board), spec.id);
        self.store.commit(
            vec![Write::admit(&spec)],
            Box::new(move |result| {
                match &result {
                    Ok(()) => {
                        metrics.engine.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    // Never stored: off the board, so an executor that has
                    // not started it skips it, and one that has finds its
                    // result dropped by the writer (nothing is written).
                    Err(_) => board.remove(&id),
                }
                drop(durable_tx.send(result));
            }),
        );
        // The group commit writes the `Pending` record before any result this
        // execution produces, so the executor can start now.
        self.executor.do_send(Execute { spec, attempt: 0 });
        Ok(Admitted { durable, executed })
    }
}
