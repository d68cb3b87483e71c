//! Consumers' next nonces across the cluster: `coproc_nextNonce` on any
//! engine counts the offchain jobs every engine took in.
//!
//! The bucket `coprocessor-nonces` maps a consumer (`0x…`, lower case) to
//! one past the highest nonce the cluster took in for it. An engine raises
//! it by compare-and-set as it takes a job in, alongside queueing the job,
//! so that a client that has heard "accepted" from one engine gets a
//! later nonce from any other. Within an engine, raises of one consumer go
//! one at a time and each carries the highest nonce waiting, so a burst of
//! jobs costs a few updates, not one each.
//!
//! The mark only helps a client pick a fresh nonce: what keeps a nonce
//! from being used twice is the claim on the job ID (`jobs.rs`). A value
//! read from the bucket is untrusted like everything else there: one that
//! does not parse counts as absent.

use super::{consumer_key, Cluster, ClusterError};
use alloy::primitives::Address;
use async_nats::jetstream::kv;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Consumer → one past the highest nonce the cluster took in.
pub(crate) const NONCES_BUCKET: &str = "coprocessor-nonces";
/// Compare-and-set rounds lost to other engines before a raise gives up.
const MAX_CONFLICTS: usize = 32;

/// This engine's raises in progress, per consumer.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    consumers: Mutex<HashMap<Address, Arc<Mark>>>,
}

/// One consumer's raises.
#[derive(Debug, Default)]
struct Mark {
    /// The highest value a raise of this engine asked for.
    wanted: AtomicU64,
    /// The value this engine last saw in the bucket: a raise to no more
    /// than it is done. Held while a raise talks to the bucket.
    known: tokio::sync::Mutex<u64>,
}

impl Marks {
    fn of(&self, consumer: Address) -> Arc<Mark> {
        let mut consumers = self.consumers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(consumers.entry(consumer).or_default())
    }
}

impl Cluster {
    /// Raises `consumer`'s next nonce in the cluster to at least `next`.
    pub(crate) async fn raise_next_nonce(&self, consumer: Address, next: u64) -> Result<(), ClusterError> {
        let mark = self.marks.of(consumer);
        mark.wanted.fetch_max(next, Ordering::Relaxed);
        let mut known = mark.known.lock().await;
        if *known >= next {
            return Ok(());
        }
        // Everything asked for so far, this one included: the raises
        // queued behind this one find it done.
        let target = mark.wanted.load(Ordering::Relaxed);
        let what = format!("raise the next nonce of consumer {consumer} to {target} in {NONCES_BUCKET}");
        for _ in 0..MAX_CONFLICTS {
            let entry = self.deadline(&what, self.nonces.entry(consumer_key(consumer))).await?;
            let (stored, revision) = match &entry {
                Some(entry) if entry.operation == kv::Operation::Put => (parse(&entry.value), entry.revision),
                Some(entry) => (None, entry.revision),
                None => (None, 0),
            };
            if let Some(stored) = stored.filter(|stored| *stored >= target) {
                *known = stored;
                return Ok(());
            }
            let value = target.to_string().into_bytes().into();
            match self.within_raw(self.nonces.update(consumer_key(consumer), value, revision)).await {
                Ok(Ok(_)) => {
                    *known = target;
                    return Ok(());
                }
                // Another engine raised it in between: read it again.
                Ok(Err(err)) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Ok(Err(err)) => return Err(ClusterError::JetStream { what, reason: err.to_string() }),
                Err(()) => return Err(self.timed_out(&what)),
            }
        }
        Err(ClusterError::JetStream { what, reason: format!("lost {MAX_CONFLICTS} compare-and-set rounds in a row") })
    }

    /// `consumer`'s next nonce as the cluster took its jobs in (0: none).
    pub(crate) async fn next_nonce(&self, consumer: Address) -> Result<u64, ClusterError> {
        let what = format!("read the next nonce of consumer {consumer} in {NONCES_BUCKET}");
        let entry = self.deadline(&what, self.nonces.entry(consumer_key(consumer))).await?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .and_then(|entry| parse(&entry.value))
            .unwrap_or(0))
    }
}

/// A stored mark: a decimal number, or nothing usable.
fn parse(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_a_decimal_number_and_anything_else_is_absent() {
        assert_eq!(parse(b"1000001"), Some(1_000_001));
        assert_eq!(parse(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b""[..], b"-1", b"0x10", b"18446744073709551616", b"1 ", &[0xff, 0x31]] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
