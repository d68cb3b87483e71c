//! Ordered relay across the cluster: one engine at a time holds a
//! consumer's lease, and relays all of that consumer's ordered results, so
//! its relayer's lane puts them onchain in nonce order as on one engine.
//!
//! - **Results.** The engine that records an ordered job's successful
//!   result queues its job ID on the work queue `COPROCESSOR_ORDERED`,
//!   under the consumer's own subject `coprocessor.ordered.0x…` (message
//!   ID = job ID), before it acks the job, as for the relay queue.
//! - **Leases.** The KV bucket `coprocessor-leases` maps a consumer to the
//!   engine holding its lease. The engine that queues a consumer's first
//!   ordered result creates the key (compare-and-set on "no value"); the
//!   holder pulls the consumer's subject through its own durable consumer
//!   `ordered-0x…` and renews the lease (compare-and-set on the revision
//!   it wrote) every third of the ack wait. A lease whose revision has
//!   not moved for an ack wait, by the watching engine's own clock (no two
//!   clocks are compared), is taken by compare-and-set: one engine wins.
//!   The old holder's next renewal fails and it stops pulling; its unacked
//!   messages go to the new holder after the ack wait.
//!
//! Two engines may relay a consumer's results for a moment (one that
//! stalled past the ack wait and has not noticed yet): the relayer checks
//! each job onchain before sending, and the JobManager refuses a second
//! settlement, so a result still settles once.

use super::jobs::key;
use super::queue::Feed;
use super::{consumer_key, parse_consumer_key, Cluster, ClusterError};
use crate::job::JobId;
use alloy::primitives::Address;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use futures_util::StreamExt;
use std::future::IntoFuture;

/// The work queue of ordered results to settle, a subject per consumer.
pub(crate) const ORDERED_STREAM: &str = "COPROCESSOR_ORDERED";
/// Its subjects: `coprocessor.ordered.0x…` (the consumer).
pub(super) const ORDERED_SUBJECTS: &str = "coprocessor.ordered.*";
/// Consumer → the engine holding its lease.
pub(crate) const LEASES_BUCKET: &str = "coprocessor-leases";

/// A lease this engine holds: renewed against `revision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease(pub(crate) u64);

/// A consumer's lease as the bucket has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseEntry {
    /// The consumer.
    pub(crate) consumer: Address,
    /// The engine holding it; `None`: given back.
    pub(crate) holder: Option<String>,
    /// Its revision.
    pub(crate) revision: u64,
}

/// The leases as they change, starting with each one's last value.
pub(crate) struct LeaseWatch {
    watch: kv::Watch,
}

impl std::fmt::Debug for LeaseWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseWatch").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Queues ordered job `id` of `consumer` to be settled by the holder of
    /// the consumer's lease, creating the lease (held by this engine) if
    /// there is none; waits for the servers' ack.
    pub(crate) async fn publish_ordered(&self, id: &JobId, consumer: Address) -> Result<(), ClusterError> {
        self.create_lease(consumer).await?;
        let what = format!("queue the settlement of job {id} on {ORDERED_STREAM}");
        let message = PublishMessage::build().payload(id.0.to_vec().into()).message_id(key(id));
        let ack = self.deadline(&what, self.js.send_publish(subject(consumer), message)).await?;
        self.deadline(&what, ack.into_future()).await.map(drop)
    }

    /// Creates `consumer`'s lease for this engine unless it exists; the
    /// lease watch tells this engine it holds it.
    async fn create_lease(&self, consumer: Address) -> Result<(), ClusterError> {
        let what = format!("create the lease of consumer {consumer} in {LEASES_BUCKET}");
        match self.within_raw(self.leases.create(consumer_key(consumer), self.node.clone().into_bytes().into())).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
            Ok(Err(err)) => Err(ClusterError::JetStream { what, reason: err.to_string() }),
            Err(()) => Err(self.timed_out(&what)),
        }
    }

    /// Writes this engine as `consumer`'s holder over `revision` (the one
    /// it renews, or the stale one it takes over; 0: a lease given back,
    /// or none): `None` if another engine wrote first.
    pub(crate) async fn hold_lease(&self, consumer: Address, revision: u64) -> Result<Option<Lease>, ClusterError> {
        let what = format!("hold the lease of consumer {consumer} in {LEASES_BUCKET}");
        let value = self.node.clone().into_bytes().into();
        let written = match revision {
            0 => self.within_raw(self.leases.create(consumer_key(consumer), value)).await.map(|written| {
                written.map_err(|err| match err.kind() {
                    kv::CreateErrorKind::AlreadyExists => None,
                    _ => Some(err.to_string()),
                })
            }),
            _ => self.within_raw(self.leases.update(consumer_key(consumer), value, revision)).await.map(|written| {
                written.map_err(|err| match err.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => None,
                    _ => Some(err.to_string()),
                })
            }),
        };
        match written {
            Ok(Ok(revision)) => Ok(Some(Lease(revision))),
            Ok(Err(None)) => Ok(None),
            Ok(Err(Some(reason))) => Err(ClusterError::JetStream { what, reason }),
            Err(()) => Err(self.timed_out(&what)),
        }
    }

    /// Every consumer's lease, then each change.
    pub(crate) async fn watch_leases(&self) -> Result<LeaseWatch, ClusterError> {
        let what = format!("watch {LEASES_BUCKET}");
        let watch = self.deadline(&what, self.leases.watch_with_history(">")).await?;
        Ok(LeaseWatch { watch })
    }

    /// `consumer`'s ordered results to settle, offered to the holder of its
    /// lease, `batch` at a time and without a bound on deliveries.
    pub(crate) async fn ordered_feed(&self, consumer: Address, batch: usize) -> Result<Feed, ClusterError> {
        let durable = format!("ordered-{}", consumer_key(consumer));
        self.pull_filtered(&self.ordered, ORDERED_STREAM, &durable, Some(subject(consumer)), -1, batch).await
    }
}

impl LeaseWatch {
    /// The next lease change; `None` once the watch ends (watch again), an
    /// `Err` for an entry that cannot be a lease (skip it).
    pub(crate) async fn next(&mut self) -> Option<Result<LeaseEntry, ClusterError>> {
        let entry = match self.watch.next().await? {
            Ok(entry) => entry,
            Err(err) => {
                return Some(Err(ClusterError::JetStream {
                    what: format!("watch {LEASES_BUCKET}"),
                    reason: err.to_string(),
                }))
            }
        };
        let untrusted = |reason: &str| ClusterError::Untrusted {
            name: format!("key {:?}", entry.key),
            bucket: LEASES_BUCKET,
            reason: reason.to_owned(),
        };
        let Some(consumer) = parse_consumer_key(&entry.key) else { return Some(Err(untrusted("not a consumer"))) };
        let holder = match entry.operation {
            kv::Operation::Put => match String::from_utf8(entry.value.to_vec()) {
                Ok(holder) if !holder.is_empty() => Some(holder),
                _ => return Some(Err(untrusted("not an engine's name"))),
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        Some(Ok(LeaseEntry { consumer, holder, revision: entry.revision }))
    }
}

/// A consumer's subject on the ordered stream.
fn subject(consumer: Address) -> String {
    format!("coprocessor.ordered.{}", consumer_key(consumer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_key_round_trips_and_anything_else_is_no_consumer() {
        let consumer = Address::repeat_byte(0xc4);
        assert_eq!(parse_consumer_key(&consumer_key(consumer)), Some(consumer));
        assert_eq!(subject(consumer), format!("coprocessor.ordered.0x{}", "c4".repeat(20)));
        for bad in ["", "0x", "c4c4", &format!("0x{}", "c4".repeat(19)), &format!("0x{}", "zz".repeat(20))] {
            assert_eq!(parse_consumer_key(bad), None, "{bad:?}");
        }
    }
}
