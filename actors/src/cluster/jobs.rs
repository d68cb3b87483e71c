//! Jobs across the cluster.
//!
//! - **Intake.** A job enters through a claim on its ID in
//!   `coprocessor-claims` (a compare-and-set create: the first engine to
//!   claim an ID has it, every other is told it is taken), then the
//!   replicated work queue `COPROCESSOR_JOBS`, published with the job ID as
//!   its message ID (a publish retried within the duplicate window is one
//!   message). The client hears "accepted" only after the stream's ack.
//! - **Execution.** Engines pull from the queue's one durable consumer with
//!   explicit acks: a message not acked within the ack wait (its engine
//!   died) goes to another engine.
//! - **Results.** A job's first result goes into `coprocessor-results` by
//!   compare-and-set create; only then is its message acked. Execution is
//!   deterministic and signatures are RFC 6979, so a job run twice yields
//!   the same result, and exactly one is recorded.
//!
//! Messages and results come from other engines: they are decoded with a
//! size limit and checked by the engine that uses them.

use super::queue::{Delivery, Feed};
use super::{Cluster, ClusterError};
use crate::job::{JobId, JobSpec};
use crate::store::Execution;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use serde::{Deserialize, Serialize};
use std::future::IntoFuture;
use std::time::Duration;

/// The work queue of jobs.
pub(crate) const JOBS_STREAM: &str = "COPROCESSOR_JOBS";
/// Its one subject.
pub(crate) const JOBS_SUBJECT: &str = "coprocessor.jobs";
/// Job ID → the engine that claimed it.
pub(crate) const CLAIMS_BUCKET: &str = "coprocessor-claims";
/// Job ID → its first recorded result.
pub(crate) const RESULTS_BUCKET: &str = "coprocessor-results";
/// The durable consumer every engine pulls from.
pub(crate) const EXECUTORS: &str = "executors";
/// Deliveries of one job before the servers stop offering it.
pub(crate) const MAX_DELIVER: i64 = 10;
/// The duplicate window of the work queue: a publish of the same job ID
/// within it is dropped by the servers.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The most a job message or a result may decode to.
const DECODE_LIMIT: usize = 64 << 20;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This engine has the job now.
    Won,
    /// Another claim of the same ID came first.
    Taken,
}

/// A job's recorded result, as engines share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SharedResult {
    /// The job.
    pub(crate) spec: JobSpec,
    /// What its run produced, signed.
    pub(crate) execution: Execution,
    /// The engine that ran it.
    pub(crate) node: String,
}

impl Cluster {
    /// Claims `id` for this engine.
    pub(crate) async fn claim(&self, id: &JobId) -> Result<Claim, ClusterError> {
        let what = format!("claim job {id} in {CLAIMS_BUCKET}");
        match self.within_raw(self.claims.create(key(id), self.node.clone().into_bytes().into())).await {
            Ok(Ok(_)) => Ok(Claim::Won),
            Ok(Err(err)) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(Claim::Taken),
            Ok(Err(err)) => Err(ClusterError::JetStream { what, reason: err.to_string() }),
            Err(()) => Err(self.timed_out(&what)),
        }
    }

    /// Notes that `id` entered the cluster, whoever else did so too: an
    /// onchain job, which every engine's listener reads and queues (the
    /// queue's duplicate window makes it one message).
    pub(crate) async fn note_claim(&self, id: &JobId) -> Result<(), ClusterError> {
        let what = format!("note job {id} in {CLAIMS_BUCKET}");
        self.deadline(&what, self.claims.put(key(id), self.node.clone().into_bytes().into())).await.map(drop)
    }

    /// Gives a claim back (the job could not be queued); best effort.
    pub(crate) async fn release(&self, id: &JobId) {
        let what = format!("release the claim of job {id}");
        if let Err(err) = self.deadline(&what, self.claims.purge(key(id))).await {
            tracing::warn!(job = %id, %err, "the claim stays; a retry of this job will be refused as a used nonce");
        }
    }

    /// Queues `spec` on the work queue and waits for the servers' ack.
    pub(crate) async fn publish_job(&self, spec: &JobSpec) -> Result<(), ClusterError> {
        let what = format!("queue job {} on {JOBS_STREAM}", spec.id);
        let payload = bincode::serde::encode_to_vec(spec, bincode::config::standard())
            .map_err(|err| ClusterError::JetStream { what: what.clone(), reason: err.to_string() })?;
        let message = PublishMessage::build().payload(payload.into()).message_id(key(&spec.id));
        let ack = self.deadline(&what, self.js.send_publish(JOBS_SUBJECT, message)).await?;
        self.deadline(&what, ack.into_future()).await.map(drop)
    }

    /// The jobs this engine is offered, `batch` at a time.
    pub(crate) async fn feed(&self, batch: usize) -> Result<Feed, ClusterError> {
        self.pull(&self.jobs, JOBS_STREAM, EXECUTORS, MAX_DELIVER, batch).await
    }

    /// Records `result` as its job's result unless one is recorded already:
    /// true if this one is.
    pub(crate) async fn record_result(&self, result: &SharedResult) -> Result<bool, ClusterError> {
        let id = result.spec.id;
        let what = format!("record the result of job {id} in {RESULTS_BUCKET}");
        let value = bincode::serde::encode_to_vec(result, bincode::config::standard())
            .map_err(|err| ClusterError::JetStream { what: what.clone(), reason: err.to_string() })?;
        match self.within_raw(self.results.create(key(&id), value.into())).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(err)) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Ok(Err(err)) => Err(ClusterError::JetStream { what, reason: err.to_string() }),
            Err(()) => Err(self.timed_out(&what)),
        }
    }

    /// A job's recorded result, if any engine recorded one.
    pub(crate) async fn result(&self, id: &JobId) -> Result<Option<SharedResult>, ClusterError> {
        let what = format!("read the result of job {id} from {RESULTS_BUCKET}");
        match self.deadline(&what, self.results.get(key(id))).await? {
            Some(bytes) => decode_result(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Jobs in the queue not yet acked by any engine: waiting, and pulled
    /// but unacked.
    pub(crate) async fn queued(&self) -> Result<u64, ClusterError> {
        self.unacked(&self.jobs, JOBS_STREAM, EXECUTORS).await
    }

    /// Whether `id` was claimed by some engine.
    pub(crate) async fn claimed(&self, id: &JobId) -> Result<bool, ClusterError> {
        let what = format!("read the claim of job {id} from {CLAIMS_BUCKET}");
        Ok(self.deadline(&what, self.claims.get(key(id))).await?.is_some())
    }
}

/// A job ID as a key and a message ID: `0x` and 64 hex digits.
pub(super) fn key(id: &JobId) -> String {
    id.to_string()
}

pub(super) fn decode_result(id: &JobId, bytes: &[u8]) -> Result<SharedResult, ClusterError> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let untrusted = |reason: String| ClusterError::Untrusted {
        name: format!("the result of job {id}"),
        bucket: RESULTS_BUCKET,
        reason,
    };
    let (result, _): (SharedResult, usize) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|err| untrusted(format!("not a result: {err}")))?;
    if result.spec.id != *id {
        return Err(untrusted(format!("the result of job {}", result.spec.id)));
    }
    Ok(result)
}

impl Delivery {
    /// The job, decoded with a size limit (another engine sent it).
    pub(crate) fn spec(&self) -> Result<JobSpec, ClusterError> {
        let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
        bincode::serde::decode_from_slice(self.payload(), config).map(|(spec, _)| spec).map_err(|err| {
            ClusterError::Untrusted {
                name: "a message".to_owned(),
                bucket: JOBS_STREAM,
                reason: format!("not a job: {err}"),
            }
        })
    }
}
