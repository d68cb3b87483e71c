//! The cluster's job changes as they happen: each result recorded and
//! each settlement ended, by any engine, so that every engine can push them
//! to its subscribers.

use super::jobs::{decode_result, RESULTS_BUCKET};
use super::relays::{SharedSettlement, SETTLED_BUCKET};
use super::{Cluster, ClusterError, SharedResult};
use crate::job::JobId;
use async_nats::jetstream::kv;
use futures_util::StreamExt;

/// A change some engine made.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A job's result was recorded.
    Recorded(Box<SharedResult>),
    /// A job's settlement ended.
    Settled(JobId, SharedSettlement),
}

/// The changes from now on.
pub(crate) struct Changes {
    results: kv::Watch,
    settled: kv::Watch,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Watches the results and the settlements recorded from now on.
    pub(crate) async fn changes(&self) -> Result<Changes, ClusterError> {
        let results = self.deadline(&format!("watch {RESULTS_BUCKET}"), self.results.watch_all()).await?;
        let settled = self.deadline(&format!("watch {SETTLED_BUCKET}"), self.settled.watch_all()).await?;
        Ok(Changes { results, settled })
    }
}

impl Changes {
    /// The next change; `None` once a watch ends (watch again), an `Err`
    /// for one that cannot be used (another engine wrote it; skip it).
    pub(crate) async fn next(&mut self) -> Option<Result<Change, ClusterError>> {
        let (bucket, entry) = tokio::select! {
            entry = self.results.next() => (RESULTS_BUCKET, entry?),
            entry = self.settled.next() => (SETTLED_BUCKET, entry?),
        };
        let entry = match entry {
            Ok(entry) if entry.operation == kv::Operation::Put => entry,
            Ok(_) => return Some(Err(untrusted("a deletion", bucket, "not a change".to_owned()))),
            Err(err) => {
                return Some(Err(ClusterError::JetStream { what: format!("watch {bucket}"), reason: err.to_string() }))
            }
        };
        let id = match parse_key(&entry.key) {
            Some(id) => id,
            None => return Some(Err(untrusted(&format!("key {:?}", entry.key), bucket, "not a job ID".to_owned()))),
        };
        Some(if bucket == RESULTS_BUCKET {
            decode_result(&id, &entry.value).map(|result| Change::Recorded(Box::new(result)))
        } else {
            SharedSettlement::decode(&id, &entry.value).map(|settled| Change::Settled(id, settled))
        })
    }
}

fn untrusted(name: &str, bucket: &'static str, reason: String) -> ClusterError {
    ClusterError::Untrusted { name: name.to_owned(), bucket, reason }
}

/// A job ID from its key: `0x` and 64 hex digits.
fn parse_key(key: &str) -> Option<JobId> {
    let bytes = hex::decode(key.strip_prefix("0x")?).ok()?;
    JobId::try_from(bytes.as_slice()).ok()
}
