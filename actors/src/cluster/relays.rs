//! Settlement across the cluster: exactly one engine at a time relays each
//! result.
//!
//! The engine that records a successful result (with `[chain]`) queues its
//! job ID on the replicated work queue `COPROCESSOR_RELAY` before it acks
//! the job, with the job ID as the message ID (queued twice within the
//! duplicate window, it is one message). Engines pull from its durable
//! consumer `relayers` with explicit acks and keep a pulled message in
//! progress until their relayer is done with the job (confirmed, found
//! settled onchain, cancelled, or dead-lettered); only then is it acked. A
//! relaying engine that dies leaves its messages unacked, and another
//! engine takes them after the ack wait: it checks each job onchain before
//! it sends, so a result the dead engine had settled is not sent again.

use super::jobs::key;
use super::queue::{Delivery, Feed};
use super::{Cluster, ClusterError};
use crate::job::{JobId, Settlement};
use async_nats::jetstream::message::PublishMessage;
use serde::{Deserialize, Serialize};
use std::future::IntoFuture;

/// The work queue of results to settle.
pub(crate) const RELAY_STREAM: &str = "COPROCESSOR_RELAY";
/// Its one subject.
pub(crate) const RELAY_SUBJECT: &str = "coprocessor.relay";
/// The durable consumer every engine with a chain pulls from.
pub(crate) const RELAYERS: &str = "relayers";
/// Job ID → how its settlement ended, so that every engine can tell.
pub(crate) const SETTLED_BUCKET: &str = "coprocessor-settled";
/// The most a settlement record may decode to.
const SETTLED_LIMIT: usize = 64 << 10;

/// How a job's settlement ended, as engines share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SharedSettlement {
    /// The last step: `Confirmed`, `AlreadySettled`, `Cancelled` or
    /// `DeadLettered`.
    pub(crate) step: Settlement,
    /// The engine that relayed it.
    pub(crate) node: String,
    /// The job's consumer (subscriptions follow consumers).
    pub(crate) consumer: alloy::primitives::Address,
}

impl Cluster {
    /// Queues job `id` to be settled and waits for the servers' ack.
    pub(crate) async fn publish_relay(&self, id: &JobId) -> Result<(), ClusterError> {
        let what = format!("queue the settlement of job {id} on {RELAY_STREAM}");
        let message = PublishMessage::build().payload(id.0.to_vec().into()).message_id(key(id));
        let ack = self.deadline(&what, self.js.send_publish(RELAY_SUBJECT, message)).await?;
        self.deadline(&what, ack.into_future()).await.map(drop)
    }

    /// The results this engine is offered to settle, `batch` at a time:
    /// offered without a bound (a relayer gives up on a job by
    /// dead-lettering it, not by dropping its message).
    pub(crate) async fn relay_feed(&self, batch: usize) -> Result<Feed, ClusterError> {
        self.pull(&self.relays, RELAY_STREAM, RELAYERS, -1, batch).await
    }

    /// Results not yet settled (or given up) by any engine.
    pub(crate) async fn relays_queued(&self) -> Result<u64, ClusterError> {
        self.unacked(&self.relays, RELAY_STREAM, RELAYERS).await
    }

    /// Records how job `id`'s settlement ended (the last word stands: a
    /// dead-lettered job retried later ends again).
    pub(crate) async fn record_settlement(
        &self,
        id: &JobId,
        consumer: alloy::primitives::Address,
        step: &Settlement,
    ) -> Result<(), ClusterError> {
        let what = format!("record the settlement of job {id} in {SETTLED_BUCKET}");
        let shared = SharedSettlement { step: step.clone(), node: self.node.clone(), consumer };
        let value = bincode::serde::encode_to_vec(&shared, bincode::config::standard())
            .map_err(|err| ClusterError::JetStream { what: what.clone(), reason: err.to_string() })?;
        self.deadline(&what, self.settled.put(key(id), value.into())).await.map(drop)
    }

    /// How job `id`'s settlement ended, if it did.
    pub(crate) async fn settlement(&self, id: &JobId) -> Result<Option<SharedSettlement>, ClusterError> {
        let what = format!("read the settlement of job {id} from {SETTLED_BUCKET}");
        let Some(bytes) = self.deadline(&what, self.settled.get(key(id))).await? else { return Ok(None) };
        SharedSettlement::decode(id, &bytes).map(Some)
    }
}

impl SharedSettlement {
    /// Job `id`'s settlement record, decoded with a size limit (another
    /// engine wrote it).
    pub(super) fn decode(id: &JobId, bytes: &[u8]) -> Result<SharedSettlement, ClusterError> {
        let config = bincode::config::standard().with_limit::<SETTLED_LIMIT>();
        let (shared, _): (SharedSettlement, usize) =
            bincode::serde::decode_from_slice(bytes, config).map_err(|err| ClusterError::Untrusted {
                name: format!("the settlement of job {id}"),
                bucket: SETTLED_BUCKET,
                reason: format!("not a settlement: {err}"),
            })?;
        Ok(shared)
    }
}

impl Delivery {
    /// The job to settle: a job ID, 32 bytes.
    pub(crate) fn job_id(&self) -> Result<JobId, ClusterError> {
        let bytes: [u8; 32] = self.payload().try_into().map_err(|_| ClusterError::Untrusted {
            name: "a message".to_owned(),
            bucket: self.stream(),
            reason: format!("not a job ID: {} bytes", self.payload().len()),
        })?;
        Ok(JobId(bytes))
    }
}
