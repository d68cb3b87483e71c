//! Intake: how a job enters the engine, from the socket or from a
//! `JobCreated` event. Admission (nonce and queue), the `Pending` record,
//! and dispatch to the executors, in that order.

use crate::executor::{Execute, Executor};
use crate::jobs::{AdmitError, JobBoard};
use crate::metrics::Metrics;
use crate::store::{CommitError, JobSpec, Store, Write};
use actix::Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What admitting a job hands back.
#[derive(Debug)]
pub struct Admitted {
    /// Resolves once the job's `Pending` record is durable (or failed).
    pub durable: tokio::sync::oneshot::Receiver<Result<(), CommitError>>,
    /// Resolves once its result is durable, if asked for.
    pub executed: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// The parts admission needs.
#[derive(Debug, Clone)]
pub struct Intake {
    /// Where the `Pending` record goes.
    pub store: Store,
    /// Jobs in flight.
    pub board: Arc<JobBoard>,
    /// Where the job runs.
    pub executor: Addr<Executor>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl Intake {
    /// Admits `spec`, queues its `Pending` record and dispatches it. The
    /// caller acknowledges the job only once `durable` resolves.
    pub fn admit(&self, spec: Arc<JobSpec>, wait: bool) -> Result<Admitted, AdmitError> {
        self.board.admit(&spec, &self.store)?;
        let executed = if wait { self.board.wait(&spec.id) } else { None };
        let (durable_tx, durable) = tokio::sync::oneshot::channel();
        let metrics = Arc::clone(&self.metrics);
        self.store.commit(
            vec![Write::admit(&spec)],
            Box::new(move |result| {
                if result.is_ok() {
                    metrics.engine.accepted.fetch_add(1, Ordering::Relaxed);
                }
                drop(durable_tx.send(result));
            }),
        );
        // The group commit writes the `Pending` record before any result this
        // execution produces, so the executor can start now.
        self.metrics.actor("executor").received();
        self.executor.do_send(Execute { spec, attempt: 0 });
        Ok(Admitted { durable, executed })
    }
}
