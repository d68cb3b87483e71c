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
    pub(crate) durable: Durable,
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

/// What admitting a batch hands back.
#[derive(Debug)]
pub(crate) struct AdmittedBatch {
    /// Each job's admission, in the batch's order.
    pub(crate) admitted: Vec<Result<(), AdmitError>>,
    /// Resolves once the `Pending` records of every admitted job are
    /// durable (one write for them all); `None` when none was admitted.
    pub(crate) durable: Option<Durable>,
}

/// Resolves once `Pending` records are durable (or failed).
pub(crate) type Durable = tokio::sync::oneshot::Receiver<Result<(), CommitError>>;

impl Intake {
    /// Admits `spec`, queues its `Pending` record and dispatches it. The
    /// caller acknowledges the job only once `durable` resolves.
    pub(crate) fn admit(&self, spec: Arc<JobSpec>, wait: bool) -> Result<Admitted, AdmitError> {
        self.board.admit(&spec, &self.store)?;
        let executed = if wait { self.board.wait(&spec.id) } else { None };
        let durable = self.commit_and_dispatch(vec![spec]);
        Ok(Admitted { durable, executed })
    }

    /// Admits each of `specs` on its own (a refused one does not stop the
    /// others), queues the `Pending` records of the admitted ones as one
    /// write, and dispatches them.
    pub(crate) fn admit_batch(&self, specs: &[Arc<JobSpec>]) -> AdmittedBatch {
        let mut accepted = Vec::new();
        let admitted = specs
            .iter()
            .map(|spec| {
                self.board.admit(spec, &self.store)?;
                accepted.push(Arc::clone(spec));
                Ok(())
            })
            .collect();
        let durable = (!accepted.is_empty()).then(|| self.commit_and_dispatch(accepted));
        AdmittedBatch { admitted, durable }
    }

    /// Queues the `Pending` records of `specs` (admitted on the board) as
    /// one write and sends them to the executors.
    fn commit_and_dispatch(&self, specs: Vec<Arc<JobSpec>>) -> Durable {
        let (durable_tx, durable) = tokio::sync::oneshot::channel();
        let (metrics, board) = (Arc::clone(&self.metrics), Arc::clone(&self.board));
        let ids: Vec<_> = specs.iter().map(|spec| spec.id).collect();
        self.store.commit(
            specs.iter().map(|spec| Write::admit(spec)).collect(),
            Box::new(move |result| {
                match &result {
                    Ok(()) => {
                        metrics.engine.accepted.fetch_add(ids.len() as u64, Ordering::Relaxed);
                    }
                    // Never stored: off the board, so an executor that has
                    // not started one skips it, and one that has finds its
                    // result dropped by the writer (nothing is written).
                    Err(_) => ids.iter().for_each(|id| board.remove(id)),
                }
                drop(durable_tx.send(result));
            }),
        );
        // The group commit writes the `Pending` records before any result
        // these executions produce, so the executors can start now.
        for spec in specs {
            self.executor.do_send(Execute { spec, attempt: 0 });
        }
        durable
    }
}
