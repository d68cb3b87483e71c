//! Holding consumers' leases for ordered relay (`cluster/leases.rs`): this
//! engine follows every lease, renews those it holds, takes over those
//! whose holder went quiet, and pulls the ordered results of each consumer
//! it holds into its relayer, whose lane settles them in nonce order.

use super::relaying::{relay, RelaySetup};
use crate::cluster::{ClusterError, Lease, LeaseEntry};
use alloy::primitives::Address;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Follows and holds leases for as long as the engine runs.
pub(crate) async fn hold_leases(setup: RelaySetup) {
    let mut leases = Leases::new(Arc::new(setup));
    let mut renew = tokio::time::interval(leases.ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match leases.setup.cluster.watch_leases().await {
            Ok(mut watch) => loop {
                tokio::select! {
                    entry = watch.next() => match entry {
                        Some(Ok(entry)) => leases.seen(entry).await,
                        Some(Err(err @ ClusterError::Untrusted { .. })) => tracing::warn!(%err, "a lease skipped"),
                        Some(Err(err)) => break tracing::warn!(%err, "watching the leases; watching again"),
                        None => break tracing::warn!("the cluster ended the watch of its leases; watching again"),
                    },
                    _ = renew.tick() => leases.renew().await,
                }
            },
            Err(err) => tracing::warn!(%err, "cannot watch the cluster's leases; trying again"),
        }
        // Held leases are renewed meanwhile.
        let retry = tokio::time::sleep(super::FOLLOW_RETRY);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                () = &mut retry => break,
                _ = renew.tick() => leases.renew().await,
            }
        }
    }
}

/// Every lease as this engine last saw it, and those it holds.
struct Leases {
    setup: Arc<RelaySetup>,
    /// A lease whose revision has not moved for this long is taken over.
    ttl: Duration,
    /// Each consumer's lease, and since when (this engine's clock) it has
    /// been at that revision.
    seen: HashMap<Address, (LeaseEntry, Instant)>,
    /// The leases held here, each with the task pulling its consumer's
    /// ordered results.
    held: HashMap<Address, (Lease, tokio::task::JoinHandle<()>)>,
}

impl Leases {
    fn new(setup: Arc<RelaySetup>) -> Leases {
        let ttl = setup.cluster.ack_wait();
        Leases { setup, ttl, seen: HashMap::new(), held: HashMap::new() }
    }

    fn is_mine(&self, entry: &LeaseEntry) -> bool {
        entry.holder.as_deref() == Some(self.setup.cluster.node())
    }

    /// A lease as the bucket has it now.
    async fn seen(&mut self, entry: LeaseEntry) {
        let consumer = entry.consumer;
        // Older than what this engine already knows (a watch behind its
        // own writes): nothing new.
        let known = self.seen.get(&consumer).map(|(seen, _)| seen.revision);
        let held = self.held.get(&consumer).map(|(lease, _)| lease.0);
        if known.max(held).is_some_and(|known| entry.revision <= known) {
            return;
        }
        self.seen.insert(consumer, (entry.clone(), Instant::now()));
        match (self.is_mine(&entry), self.held.contains_key(&consumer)) {
            // This engine created it (its first ordered result), or held it
            // before a restart.
            (true, false) => self.hold(consumer, Lease(entry.revision)),
            (true, true) => {}
            (false, true) => self.lose(consumer, &entry),
            // Given back: anyone may take it at once.
            (false, false) if entry.holder.is_none() => self.take(consumer, 0).await,
            (false, false) => {}
        }
    }

    /// Renews the leases held here, and takes over those gone quiet.
    async fn renew(&mut self) {
        let held: Vec<(Address, Lease)> = self.held.iter().map(|(consumer, (lease, _))| (*consumer, *lease)).collect();
        for (consumer, lease) in held {
            match self.setup.cluster.hold_lease(consumer, lease.0).await {
                Ok(Some(renewed)) => {
                    if let Some((held, _)) = self.held.get_mut(&consumer) {
                        *held = renewed;
                    }
                }
                Ok(None) => {
                    let entry = LeaseEntry { consumer, holder: None, revision: lease.0 };
                    self.lose(consumer, &entry);
                }
                // Not renewed: another engine may take it after the ttl,
                // and the next renewal finds out.
                Err(err) => tracing::warn!(%consumer, %err, "a lease was not renewed"),
            }
        }
        let quiet: Vec<(Address, u64)> = self
            .seen
            .iter()
            .filter(|(consumer, (entry, since))| {
                !self.held.contains_key(*consumer) && entry.holder.is_some() && since.elapsed() >= self.ttl
            })
            .map(|(consumer, (entry, _))| (*consumer, entry.revision))
            .collect();
        for (consumer, revision) in quiet {
            self.take(consumer, revision).await;
        }
    }

    /// Takes `consumer`'s lease over `revision` (0: given back).
    async fn take(&mut self, consumer: Address, revision: u64) {
        match self.setup.cluster.hold_lease(consumer, revision).await {
            Ok(Some(lease)) => {
                let from = self.seen.get(&consumer).and_then(|(entry, _)| entry.holder.clone());
                tracing::info!(%consumer, from = from.as_deref().unwrap_or("nobody"), "took over a consumer's ordered relay");
                self.hold(consumer, lease);
            }
            // Another engine was first; the watch says which.
            Ok(None) => {}
            Err(err) => tracing::warn!(%consumer, %err, "a quiet lease was not taken over"),
        }
    }

    /// Holds `consumer`'s lease: pulls its ordered results.
    fn hold(&mut self, consumer: Address, lease: Lease) {
        let setup = Arc::clone(&self.setup);
        let puller = actix_rt::spawn(async move {
            let what = format!("ordered results of consumer {consumer}");
            let open = || setup.cluster.ordered_feed(consumer, setup.in_flight);
            super::pull_forever(&what, setup.in_flight, open, |delivery| relay(&setup, delivery)).await;
        });
        if let Some((_, old)) = self.held.insert(consumer, (lease, puller)) {
            old.abort();
        }
        self.count();
    }

    /// `consumer`'s lease went to `entry`'s holder: its results pulled here
    /// and not yet acked go to that engine after the ack wait.
    fn lose(&mut self, consumer: Address, entry: &LeaseEntry) {
        if let Some((_, puller)) = self.held.remove(&consumer) {
            puller.abort();
            let to = entry.holder.as_deref().unwrap_or("another engine");
            tracing::warn!(%consumer, to, "lost a consumer's ordered relay");
        }
        self.count();
    }

    fn count(&self) {
        self.setup.engine.engine.cluster_leases_held.store(self.held.len() as u64, Ordering::Relaxed);
    }
}
