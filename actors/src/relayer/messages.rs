//! The relayer's messages and their handlers.

use super::{LaneView, Phase, Relayer};
use crate::job::{JobId, JobSpec, Settlement, Status};
use crate::store::{ResultRecord, StoreError};
use actix::{Context, Handler, Message};
use alloy::primitives::{Address, B256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An executed job whose signed result should go onchain.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Relay {
    /// The job.
    pub(crate) spec: Arc<JobSpec>,
    /// Its recorded result: `abi.encode(ResultWithMetadata)` (or the
    /// offchain variant) and the operator's signature over it.
    pub(crate) result: Arc<ResultRecord>,
    /// Set when start-up hands back a job from before the last stop.
    pub(crate) resumed: Option<Resumed>,
    /// Told the job's last settlement step once the relayer is done with it
    /// (`Confirmed`, `AlreadySettled`, `Cancelled` or `DeadLettered`); a
    /// relayer that stops first drops it unsent.
    pub(crate) ended: Option<Ended>,
}

/// Where a relayer says it is done with a job.
pub(crate) type Ended = tokio::sync::oneshot::Sender<Settlement>;

/// A job handed back at start-up: it may have settled while the engine
/// was down, by a transaction this run never sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resumed {
    /// The last transaction logged for it (`Submitted`), if any.
    pub(crate) tx: Option<B256>,
}

/// What the listener read onchain about a job the relayer may hold.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) enum FromListener {
    /// `JobCancelled`: drop it unless its transaction is out.
    Cancelled(JobId),
    /// Its `JobCreated` again, the same request, while it is dead-lettered:
    /// it vanished in a reorg (its onchain state was 0) and came back. It
    /// is pushed again, as `coprocessor job retry` would.
    Reappeared(JobId),
}

/// Push a dead-lettered job again.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RetryError>")]
pub(crate) struct Retry {
    /// The job.
    pub id: JobId,
    /// Told how its settlement ended this time (cluster mode records it
    /// for the other engines).
    pub ended: Option<Ended>,
}

/// Why a job could not be retried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RetryError {
    /// No such job.
    #[error("no job {0}")]
    Unknown(JobId),
    /// The job is not dead-lettered.
    #[error("job {id} is {status}, not dead-lettered")]
    NotDeadLettered {
        /// The job.
        id: JobId,
        /// Its status.
        status: Status,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a job the relayer holds is not sent yet: the fee ceiling (or, for
/// a result whose input goes in blobs, the blob fee ceiling) holds it
/// back. `None`: it is not held back by a ceiling.
#[derive(Debug, Message)]
#[rtype(result = "Option<String>")]
pub(crate) struct Waiting {
    /// The job.
    pub id: JobId,
}

/// A consumer's ordered-relay lane.
#[derive(Debug, Message)]
#[rtype(result = "LaneView")]
pub(crate) struct LaneQuery {
    /// The consumer.
    pub consumer: Address,
}

impl Handler<Relay> for Relayer {
    type Result = ();

    fn handle(&mut self, msg: Relay, ctx: &mut Context<Self>) {
        let start = Instant::now();
        self.add(msg.spec, &msg.result, msg.resumed, msg.ended);
        self.round(ctx);
        self.actor.handled(start.elapsed(), true);
    }
}

impl Handler<FromListener> for Relayer {
    type Result = ();

    fn handle(&mut self, msg: FromListener, _: &mut Context<Self>) {
        let id = match msg {
            FromListener::Cancelled(id) => id,
            FromListener::Reappeared(id) => {
                let retried = self.retry(id, None);
                self.actor.handled(Duration::ZERO, retried.is_ok());
                match retried {
                    Ok(()) => tracing::info!(job = %id, "a job that vanished in a reorg reappeared onchain"),
                    Err(err) => tracing::warn!(job = %id, %err, "a reappeared job was not pushed again"),
                }
                return;
            }
        };
        self.actor.handled(Duration::ZERO, true);
        let Some(job) = self.jobs.get(&id) else { return };
        if matches!(job.phase, Phase::InFlight { .. }) {
            // Its transaction's events tell: a skipped cancelled job is
            // found cancelled by its verdict.
            return;
        }
        if let Some(job) = self.jobs.remove(&id) {
            if job.spec.is_ordered() {
                self.lanes.settled(job.spec.consumer, job.spec.nonce);
            }
            if let Some(ended) = job.ended {
                let _ = ended.send(Settlement::Cancelled);
            }
        }
    }
}

impl Handler<Retry> for Relayer {
    type Result = Result<(), RetryError>;

    fn handle(&mut self, msg: Retry, ctx: &mut Context<Self>) -> Self::Result {
        let start = Instant::now();
        let retried = self.retry(msg.id, msg.ended);
        self.actor.handled(start.elapsed(), retried.is_ok());
        retried?;
        self.round(ctx);
        Ok(())
    }
}

impl Handler<LaneQuery> for Relayer {
    type Result = actix::MessageResult<LaneQuery>;

    fn handle(&mut self, msg: LaneQuery, _: &mut Context<Self>) -> Self::Result {
        self.actor.handled(Duration::ZERO, true);
        actix::MessageResult(self.lanes.view(&msg.consumer))
    }
}

impl Handler<Waiting> for Relayer {
    type Result = Option<String>;

    fn handle(&mut self, msg: Waiting, _: &mut Context<Self>) -> Self::Result {
        self.actor.handled(Duration::ZERO, true);
        self.waiting(&msg.id)
    }
}
