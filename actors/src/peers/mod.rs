//! Peers: what this engine shares with the other engines of its cluster
//! (cluster mode, `[cluster]`).
//!
//! - Programs: one registered here is put in the cluster's object store
//!   before its client hears it was registered, and every program another
//!   engine shares is registered here, validated by this engine's own
//!   registry like any other.
//! - Jobs: one accepted here is claimed and queued in the cluster
//!   ([`PublishJob`]) before its client hears so; this engine pulls jobs
//!   from the cluster's queue and runs them (`execution.rs`); a job's result
//!   is read from the cluster when it ran elsewhere ([`FetchResult`]).
//! - Settlement (with `[chain]`): this engine's relayer settles the results
//!   it pulls from the cluster's relay queue, whoever ran them
//!   (`relaying.rs`), and the ordered results of the consumers whose
//!   leases it holds (`leasing.rs`).

mod execution;
mod leasing;
mod relaying;

pub(crate) use execution::{execute_jobs, sample_queue, ExecutionSetup};
pub(crate) use leasing::hold_leases;
pub(crate) use relaying::{relay_results, RelaySetup};

use crate::cluster::{Change, Claim, Cluster, ClusterError, SharedProgram, SharedResult, SharedSettlement};
use crate::job::{JobId, JobSpec, Origin};
use crate::metrics::ActorMetrics;
use crate::pool::Mailbox;
use crate::program::ProgramId;
use crate::programs::Programs;
use crate::registry::SubmitProgram;
use actix::{Actor, Context, Handler, Message, ResponseFuture};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long following the cluster's programs or changes, or pulling from
/// one of its queues, waits before trying again after the cluster failed it.
const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// Share a program registered here with the other engines.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ClusterError>")]
pub(crate) struct ShareProgram {
    /// Its ID.
    pub(crate) id: ProgramId,
    /// The ELF.
    pub(crate) elf: Vec<u8>,
    /// Its name (empty: none).
    pub(crate) name: String,
}

/// Claim and queue a job accepted here (or read onchain here).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PublishError>")]
pub(crate) struct PublishJob {
    /// The job.
    pub(crate) spec: Arc<JobSpec>,
}

/// Why a job was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// Another request with the job's ID (its consumer and nonce) entered
    /// the cluster first.
    #[error("nonce {nonce} already used by consumer 0x{}", hex::encode(.consumer))]
    Taken {
        /// The nonce.
        nonce: u64,
        /// The consumer.
        consumer: alloy::primitives::Address,
    },
    /// The cluster did not take it.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What the cluster knows of a job.
#[derive(Debug)]
pub(crate) enum ClusterJob {
    /// Its recorded result.
    Recorded(Box<SharedResult>),
    /// Claimed by an engine, no result yet.
    Queued,
    /// Never entered the cluster.
    Unknown,
}

/// A job's result as the cluster recorded it.
#[derive(Debug, Message)]
#[rtype(result = "Result<ClusterJob, ClusterError>")]
pub(crate) struct FetchResult {
    /// The job.
    pub(crate) id: JobId,
    /// Wait until some engine records it (always `Recorded` then).
    pub(crate) wait: bool,
}

/// How a job's settlement ended, as the cluster recorded it (`None`: it has
/// not, or the job is not to be settled).
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<SharedSettlement>, ClusterError>")]
pub(crate) struct FetchSettlement {
    /// The job.
    pub(crate) id: JobId,
}

/// One past the highest nonce of `consumer` the cluster took in (0: none).
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, ClusterError>")]
pub(crate) struct FetchNextNonce {
    /// The consumer.
    pub(crate) consumer: alloy::primitives::Address,
}

/// Record how the settlement of a dead-lettered job retried here ends this
/// time, for the other engines (the relay queue, which records the first
/// end, let go of the job when it was dead-lettered).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct FollowRetry {
    /// The job.
    pub(crate) id: JobId,
    /// Its consumer.
    pub(crate) consumer: alloy::primitives::Address,
    /// Told by the relayer when the settlement ends.
    pub(crate) ended: tokio::sync::oneshot::Receiver<crate::job::Settlement>,
}

/// The mailboxes of the peers actor, for the api.
#[derive(Debug, Clone)]
pub(crate) struct PeersAccess {
    /// Programs registered here.
    pub(crate) share: Mailbox<ShareProgram>,
    /// Jobs accepted here.
    pub(crate) publish: Mailbox<PublishJob>,
    /// Results recorded by any engine.
    pub(crate) fetch: Mailbox<FetchResult>,
    /// Settlements ended by any engine.
    pub(crate) settled: Mailbox<FetchSettlement>,
    /// Consumers' next nonces, counting every engine's jobs.
    pub(crate) next_nonce: Mailbox<FetchNextNonce>,
    /// Dead-lettered jobs retried here.
    pub(crate) retried: Mailbox<FollowRetry>,
    /// Every result recorded and settlement ended by any engine, as they
    /// happen ([`follow_changes`]); subscriptions take theirs from it.
    pub(crate) changes: tokio::sync::broadcast::Sender<Change>,
}

/// How many cluster changes a subscription may fall behind before it is
/// dropped (as the store's own channel of job events).
pub(crate) const CHANGES_CAPACITY: usize = 16_384;

/// The peers actor.
#[derive(Debug)]
pub(crate) struct Peers {
    cluster: Cluster,
    metrics: Arc<ActorMetrics>,
    /// The cluster's changes ([`follow_changes`]): a result waited for
    /// arrives on it.
    changes: tokio::sync::broadcast::Sender<Change>,
}

impl Peers {
    /// The actor over a connected cluster.
    pub(crate) fn new(
        cluster: Cluster,
        metrics: Arc<ActorMetrics>,
        changes: tokio::sync::broadcast::Sender<Change>,
    ) -> Peers {
        Peers { cluster, metrics, changes }
    }
}

/// How often a result waited for is read again, in case its change was
/// missed (the watch of changes was being opened again).
const WAIT_RECHECK: Duration = Duration::from_secs(1);

/// Job `id`'s result once some engine records it (at once if one has),
/// from the changes every engine already watches: a wait costs the cluster
/// a read now and then, not a watch of its own.
async fn wait_result(
    cluster: &Cluster,
    mut changes: tokio::sync::broadcast::Receiver<Change>,
    id: JobId,
) -> Result<SharedResult, ClusterError> {
    loop {
        if let Some(result) = cluster.result(&id).await? {
            return Ok(result);
        }
        let recheck = tokio::time::sleep(WAIT_RECHECK);
        tokio::pin!(recheck);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(Change::Recorded(result)) if result.spec.id == id => return Ok(*result),
                    Ok(_) => {}
                    // Behind, or the channel closed: read the bucket.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        recheck.as_mut().await;
                        break;
                    }
                },
                () = &mut recheck => break,
            }
        }
    }
}

impl Actor for Peers {
    type Context = Context<Self>;
}

impl Handler<ShareProgram> for Peers {
    type Result = ResponseFuture<Result<(), ClusterError>>;

    fn handle(&mut self, msg: ShareProgram, _: &mut Context<Self>) -> Self::Result {
        let (cluster, metrics) = (self.cluster.clone(), Arc::clone(&self.metrics));
        Box::pin(async move {
            let started = Instant::now();
            let shared = cluster.share_program(&msg.id, &msg.elf, &msg.name).await;
            metrics.handled(started.elapsed(), shared.is_ok());
            if let Err(err) = &shared {
                tracing::error!(program = %msg.id, %err, "cannot share the program with the cluster");
            }
            shared
        })
    }
}

impl Handler<PublishJob> for Peers {
    type Result = ResponseFuture<Result<(), PublishError>>;

    fn handle(&mut self, msg: PublishJob, _: &mut Context<Self>) -> Self::Result {
        let (cluster, metrics) = (self.cluster.clone(), Arc::clone(&self.metrics));
        Box::pin(async move {
            let started = Instant::now();
            let published = publish(&cluster, &msg.spec).await;
            metrics.handled(started.elapsed(), !matches!(published, Err(PublishError::Cluster(_))));
            published
        })
    }
}

/// The claim, then the queue (and, meanwhile, the consumer's next nonce);
/// a claim whose job could not be queued is given back, so that the
/// client's retry can enter. An onchain job is not claimed: every engine's
/// listener queues it, the queue's duplicate window makes that one
/// message, and a claim its engine died holding would lose it.
async fn publish(cluster: &Cluster, spec: &JobSpec) -> Result<(), PublishError> {
    if matches!(spec.origin, Origin::Onchain) {
        cluster.note_claim(&spec.id).await?;
        return Ok(cluster.publish_job(spec).await?);
    }
    match cluster.claim(&spec.id).await? {
        Claim::Taken => return Err(PublishError::Taken { nonce: spec.nonce, consumer: spec.consumer }),
        Claim::Won => {}
    }
    let raised = cluster.raise_next_nonce(spec.consumer, spec.nonce.saturating_add(1));
    let (published, raised) = tokio::join!(cluster.publish_job(spec), raised);
    if let Err(err) = published {
        cluster.release(&spec.id).await;
        return Err(err.into());
    }
    // The job is in: its nonce's claim is what keeps it from being used
    // again. Until a later job raises the mark, other engines may offer
    // this nonce as the next one, and a job sent with it is refused.
    if let Err(err) = raised {
        tracing::warn!(job = %spec.id, %err, "the cluster's next nonce of the job's consumer was not raised");
    }
    Ok(())
}

impl Handler<FollowRetry> for Peers {
    type Result = ();

    fn handle(&mut self, msg: FollowRetry, _: &mut Context<Self>) {
        let cluster = self.cluster.clone();
        let FollowRetry { id, consumer, ended } = msg;
        actix::spawn(async move {
            // A relayer that stopped first (the engine is shutting down)
            // leaves the last word as it was: dead-lettered here.
            let Ok(step) = ended.await else { return };
            if let Err(err) = cluster.record_settlement(&id, consumer, &step).await {
                tracing::warn!(job = %id, %err, "how a retried job's settlement ended is not recorded in the cluster");
            }
        });
    }
}

impl Handler<FetchNextNonce> for Peers {
    type Result = ResponseFuture<Result<u64, ClusterError>>;

    fn handle(&mut self, msg: FetchNextNonce, _: &mut Context<Self>) -> Self::Result {
        let cluster = self.cluster.clone();
        Box::pin(async move { cluster.next_nonce(msg.consumer).await })
    }
}

impl Handler<FetchResult> for Peers {
    type Result = ResponseFuture<Result<ClusterJob, ClusterError>>;

    fn handle(&mut self, msg: FetchResult, _: &mut Context<Self>) -> Self::Result {
        let cluster = self.cluster.clone();
        // Subscribed before the first read: a result recorded in between
        // is on the channel.
        let changes = self.changes.subscribe();
        Box::pin(async move {
            if msg.wait {
                return Ok(ClusterJob::Recorded(Box::new(wait_result(&cluster, changes, msg.id).await?)));
            }
            Ok(match cluster.result(&msg.id).await? {
                Some(result) => ClusterJob::Recorded(Box::new(result)),
                None if cluster.claimed(&msg.id).await? => ClusterJob::Queued,
                None => ClusterJob::Unknown,
            })
        })
    }
}

impl Handler<FetchSettlement> for Peers {
    type Result = ResponseFuture<Result<Option<SharedSettlement>, ClusterError>>;

    fn handle(&mut self, msg: FetchSettlement, _: &mut Context<Self>) -> Self::Result {
        let cluster = self.cluster.clone();
        Box::pin(async move { cluster.settlement(&msg.id).await })
    }
}

/// Puts every result and settlement any engine records from now on on
/// `changes`, for as long as the engine runs; a watch that ends is watched
/// again (what was recorded in between is read by `coproc_getResult`).
pub(crate) async fn follow_changes(cluster: Cluster, changes: tokio::sync::broadcast::Sender<Change>) {
    loop {
        match cluster.changes().await {
            Ok(mut watch) => loop {
                match watch.next().await {
                    Some(Ok(change)) => drop(changes.send(change)),
                    Some(Err(err @ ClusterError::Untrusted { .. })) => tracing::warn!(%err, "a cluster change skipped"),
                    Some(Err(err)) => break tracing::warn!(%err, "watching the cluster's changes; watching again"),
                    None => break tracing::warn!("the cluster ended the watch of its changes; watching again"),
                }
            },
            Err(err) => tracing::warn!(%err, "cannot watch the cluster's changes; trying again"),
        }
        tokio::time::sleep(FOLLOW_RETRY).await;
    }
}

/// Handles the deliveries of one of the cluster's work queues for as long
/// as the engine runs, `in_flight` at once: a feed the cluster fails to
/// open, or ends, is opened again after [`FOLLOW_RETRY`]. `what` names the
/// queue's messages in the log ("jobs", "results to settle").
async fn pull_forever<Open, Opened, Handle, Handled>(what: &str, in_flight: usize, open: Open, handle: Handle)
where
    Open: Fn() -> Opened,
    Opened: std::future::Future<Output = Result<crate::cluster::Feed, ClusterError>>,
    Handle: Fn(crate::cluster::Delivery) -> Handled,
    Handled: std::future::Future<Output = ()>,
{
    use futures_util::StreamExt;
    loop {
        match open().await {
            Ok(feed) => {
                feed.into_stream()
                    .for_each_concurrent(in_flight, |delivery| async {
                        match delivery {
                            Ok(delivery) => handle(delivery).await,
                            Err(err) => tracing::warn!(%err, "pulling the cluster's {what}"),
                        }
                    })
                    .await;
                tracing::warn!("the cluster's feed of {what} ended; pulling again");
            }
            Err(err) => tracing::warn!(%err, "cannot pull the cluster's {what}; trying again"),
        }
        tokio::time::sleep(FOLLOW_RETRY).await;
    }
}

/// Registers here every program the cluster holds and each one shared
/// later, for as long as the engine runs: the cluster's failures are
/// retried, a program that cannot be one is logged and skipped.
pub(crate) async fn follow_programs(
    cluster: Cluster,
    registry: Mailbox<SubmitProgram>,
    programs: Arc<Programs>,
    max_bytes: usize,
    metrics: Arc<ActorMetrics>,
) {
    loop {
        match cluster.watch_programs(max_bytes).await {
            Ok(mut watch) => loop {
                match watch.next(|id| programs.contains(id)).await {
                    // A program whose bytes the servers could not give yet (a
                    // replica behind its object's metadata, say) is read again
                    // from the bucket's history.
                    Ok(Some(Err(err))) if !matches!(err, ClusterError::Untrusted { .. }) => {
                        break tracing::warn!(%err, "reading a shared program; watching again");
                    }
                    Ok(Some(shared)) => register(&registry, &programs, &metrics, shared).await,
                    Ok(None) => break tracing::warn!("the cluster ended the watch of its programs; watching again"),
                    Err(err) => break tracing::warn!(%err, "following the cluster's programs; watching again"),
                }
            },
            Err(err) => tracing::warn!(%err, "cannot follow the cluster's programs; trying again"),
        }
        tokio::time::sleep(FOLLOW_RETRY).await;
    }
}

async fn register(
    registry: &Mailbox<SubmitProgram>,
    programs: &Programs,
    metrics: &ActorMetrics,
    shared: Result<SharedProgram, ClusterError>,
) {
    metrics.received();
    let started = Instant::now();
    let shared = match shared {
        Ok(shared) => shared,
        Err(err) => {
            metrics.handled(started.elapsed(), false);
            return tracing::error!(%err, "refused a program another engine shared");
        }
    };
    if programs.contains(&shared.id) {
        return metrics.handled(started.elapsed(), true);
    }
    let id = shared.id;
    let registered = registry.send(SubmitProgram { elf: shared.elf, name: shared.name }).await;
    match registered {
        Ok(Ok(_)) => {
            metrics.handled(started.elapsed(), true);
            tracing::info!(program = %id, "registered a program another engine shared");
        }
        Ok(Err(err)) => {
            metrics.handled(started.elapsed(), false);
            tracing::error!(program = %id, %err, "refused a program another engine shared");
        }
        Err(err) => {
            metrics.handled(started.elapsed(), false);
            tracing::error!(program = %id, %err, "the registry did not answer for a shared program");
        }
    }
}
