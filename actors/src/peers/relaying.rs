//! Settling the cluster's results: pull them from the relay queue, hand
//! each to this engine's relayer, and ack it once the relayer is done with
//! it. A job another engine ran is taken into this engine's store first
//! (its `Pending` and `Executed` records), so that its settlement steps are
//! logged, served and retried here like those of a job run here.

use crate::cluster::{Cluster, Delivery, SharedResult};
use crate::job::{JobId, JobSpec, Settlement, Status};
use crate::metrics::{ActorMetrics, Metrics};
use crate::pool::Mailbox;
use crate::relayer::{Relay, Resumed};
use crate::store::{ResultRecord, Store, Write};
use alloy::primitives::{Address, B256};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a result cannot be taken now (it is still running here, its
/// record is not readable yet), it is offered again after this long.
const LATER: Duration = Duration::from_secs(1);
/// A job's result is recorded before its job ID is queued to be settled,
/// so one whose result stays unreadable (a replica behind, at first) this
/// many offers (about as many seconds) was never recorded: the message is
/// dropped.
const UNRECORDED_OFFERS: u64 = 60;

/// What settling the cluster's results needs.
#[derive(Debug, Clone)]
pub(crate) struct RelaySetup {
    /// The cluster.
    pub(crate) cluster: Cluster,
    /// This engine's store.
    pub(crate) store: Store,
    /// This engine's relayer.
    pub(crate) relayer: Mailbox<Relay>,
    /// The operator every engine of the cluster signs as: a shared result
    /// signed by anyone else is not relayed.
    pub(crate) operator: Address,
    /// Results held at once.
    pub(crate) in_flight: usize,
    /// The peers actor's counters.
    pub(crate) metrics: Arc<ActorMetrics>,
    /// The engine's metrics (the cluster counters).
    pub(crate) engine: Arc<Metrics>,
}

/// Pulls and settles the cluster's results for as long as the engine runs.
pub(crate) async fn relay_results(setup: RelaySetup) {
    let open = || setup.cluster.relay_feed(setup.in_flight);
    super::pull_forever("results to settle", setup.in_flight, open, |delivery| relay(&setup, delivery)).await;
}

/// Settles one delivered result (of the relay queue, or of a consumer's
/// ordered results).
pub(super) async fn relay(setup: &RelaySetup, delivery: Delivery) {
    setup.metrics.received();
    let started = Instant::now();
    // Counted while held, also when its puller is stopped (a lease lost).
    let _held = Held::count(&setup.engine.engine.cluster_relays_held);
    let relayed = settle(setup, &delivery).await;
    if let Err(err) = &relayed {
        tracing::warn!(%err, attempt = delivery.attempt(), "a cluster result to settle");
    }
    setup.metrics.handled(started.elapsed(), relayed.is_ok());
}

/// One held result in a gauge, for as long as it lives.
struct Held<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Held<'a> {
    fn count(gauge: &'a std::sync::atomic::AtomicU64) -> Held<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Held(gauge)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What this engine's store says of a job to settle.
enum Here {
    /// Its settlement is over (how, if it was to be settled): nothing to do
    /// but say so.
    Ended(Option<(Address, Settlement)>),
    /// Not executed here yet (this engine is running it): later.
    Running,
    /// Executed, to settle (`tx`: the transaction last logged for it).
    Unsettled(Box<(JobSpec, ResultRecord)>, Option<B256>),
    /// Unknown here.
    Unknown,
}

async fn settle(setup: &RelaySetup, delivery: &Delivery) -> Result<(), String> {
    let id = match delivery.job_id() {
        Ok(id) => id,
        Err(err) => {
            delivery.discard().await;
            return Err(format!("refused: {err}"));
        }
    };
    let (spec, result, tx) = match here(&setup.store, &id)? {
        Here::Ended(ended) => {
            if let Some((consumer, step)) = ended {
                // Said before, unless that failed; said again, it is the same.
                if let Err(err) = setup.cluster.record_settlement(&id, consumer, &step).await {
                    delivery.later(LATER).await;
                    return Err(format!("job {id}: {err}"));
                }
            }
            return delivery.ack().await.map_err(|err| err.to_string());
        }
        Here::Running => {
            delivery.later(LATER).await;
            return Err(format!("job {id}: still running here"));
        }
        Here::Unsettled(executed, tx) => (executed.0, executed.1, tx),
        Here::Unknown => match take_in(setup, &id).await {
            Ok(Some((spec, result))) => (spec, result, None),
            Ok(None) => return delivery.ack().await.map_err(|err| err.to_string()),
            Err(Refused::Never(err)) => {
                delivery.discard().await;
                return Err(format!("refused: job {id}: {err}"));
            }
            Err(Refused::NotNow(err)) => {
                delivery.later(LATER).await;
                return Err(format!("job {id}: {err}"));
            }
            Err(Refused::Unrecorded) if delivery.attempt() >= UNRECORDED_OFFERS => {
                delivery.discard().await;
                return Err(format!("refused: job {id}: no result recorded in {UNRECORDED_OFFERS} offers"));
            }
            Err(Refused::Unrecorded) => {
                delivery.later(LATER).await;
                return Err(format!("job {id}: no result recorded yet"));
            }
        },
    };
    let consumer = spec.consumer;
    let (ended, mut end) = tokio::sync::oneshot::channel();
    let resumed = tx.map(|tx| Resumed { tx: Some(tx) });
    setup.relayer.do_send(Relay { spec: Arc::new(spec), result: Arc::new(result), resumed, ended: Some(ended) });
    let step = loop {
        tokio::select! {
            step = &mut end => break step,
            // Well inside the consumer's ack wait.
            () = tokio::time::sleep(setup.cluster.ack_wait() / 3) => delivery.in_progress().await,
        }
    };
    // A relayer that stopped (the engine is shutting down) leaves it
    // unacked: another engine, or this one after its restart, takes it.
    let step = step.map_err(|_| format!("job {id}: the relayer stopped before it was settled"))?;
    setup.engine.engine.cluster_relays_ended.fetch_add(1, Ordering::Relaxed);
    // Every engine can tell from now on; if this fails, the message is
    // offered again and the next relayer finds the job's end here or
    // onchain.
    if let Err(err) = setup.cluster.record_settlement(&id, consumer, &step).await {
        delivery.later(LATER).await;
        return Err(format!("job {id}: {err}"));
    }
    if let Settlement::DeadLettered(letter) = &step {
        tracing::warn!(job = %id, reason = %letter.reason, "a cluster result was dead-lettered here; `coprocessor job retry` on this engine pushes it again");
    }
    delivery.ack().await.map_err(|err| format!("job {id}: {err}"))
}

fn here(store: &Store, id: &JobId) -> Result<Here, String> {
    let Some(entry) = store.job(id).map_err(|err| format!("job {id}: {err}"))? else { return Ok(Here::Unknown) };
    let tx_hash = entry.tx_hash.unwrap_or_default();
    let ended = |step| Ok(Here::Ended(Some((entry.consumer, step))));
    let tx = match entry.status {
        Status::Pending | Status::Running => return Ok(Here::Running),
        Status::Done => None,
        Status::Submitted => entry.tx_hash.map(B256::from),
        Status::Failed => return Ok(Here::Ended(None)),
        Status::Confirmed => return ended(Settlement::Confirmed { tx_hash, block: 0 }),
        Status::AlreadySettled => return ended(Settlement::AlreadySettled { tx_hash, block: 0 }),
        Status::Cancelled => return ended(Settlement::Cancelled),
        Status::DeadLettered => {
            let letter = store.dead_letter(id).map_err(|err| format!("job {id}: {err}"))?;
            let letter = letter.unwrap_or(crate::job::DeadLetter { attempts: 0, reason: String::new() });
            return ended(Settlement::DeadLettered(letter));
        }
    };
    match store.executed(&entry).map_err(|err| format!("job {id}: {err}"))? {
        Some(executed) => Ok(Here::Unsettled(Box::new(executed), tx)),
        // Pruned: long settled.
        None => Ok(Here::Ended(None)),
    }
}

/// Why a shared result is not taken in.
enum Refused {
    /// It cannot be relayed by any engine.
    Never(String),
    /// Not yet (the cluster or the store failed).
    NotNow(String),
    /// The cluster has no result for it (yet).
    Unrecorded,
}

/// The recorded result of job `id` from the cluster, checked and logged
/// here; `None` if it is not to be settled (a failed job).
async fn take_in(setup: &RelaySetup, id: &JobId) -> Result<Option<(JobSpec, ResultRecord)>, Refused> {
    let shared = match setup.cluster.result(id).await {
        Ok(Some(shared)) => shared,
        Ok(None) => return Err(Refused::Unrecorded),
        Err(err @ crate::cluster::ClusterError::Untrusted { .. }) => return Err(Refused::Never(err.to_string())),
        Err(err) => return Err(Refused::NotNow(err.to_string())),
    };
    let SharedResult { spec, execution, node } = shared;
    let result = ResultRecord::rebuild(&spec, execution);
    if result.failure.is_some() {
        return Ok(None);
    }
    // Only a result this cluster's operator signed is worth a transaction:
    // anything else the JobManager refuses.
    let signer = crate::protocol::eip191::recover(&result.result_with_metadata, &result.signature)
        .map_err(|err| Refused::Never(format!("its signature (recorded by {node:?}): {err}")))?;
    if signer != setup.operator {
        return Err(Refused::Never(format!(
            "signed by {signer}, not by the operator {} (recorded by {node:?})",
            setup.operator
        )));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    setup.store.commit(Write::taken_in(&spec, &result), Box::new(move |written| drop(tx.send(written))));
    match rx.await {
        Ok(Ok(())) => Ok(Some((spec, result))),
        Ok(Err(err)) => Err(Refused::NotNow(format!("its records: {err}"))),
        Err(_) => Err(Refused::NotNow("the store writer stopped".to_owned())),
    }
}
