//! The listener: turns the JobManager's `JobCreated` events into jobs and
//! its `JobCancelled` events into cancellations.
//!
//! It polls `eth_getLogs` from a block cursor kept in sled (`meta` tree),
//! reading only blocks at least `confirmations` deep, so a reorg within
//! that depth never reaches it. Intake is idempotent by job ID: a block
//! read twice (after a crash between the jobs' `Pending` records and the
//! cursor's update) adds nothing. The cursor moves only once every job of
//! the range is durable, so nothing read is lost either. An unreachable
//! node is retried with a growing backoff.
//!
//! A reorg deeper than `confirmations` is noticed: the listener keeps the
//! hash of the last block of each range it read (the newest
//! [`CHECKPOINTS`], in `meta`), and before it reads on, checks the newest
//! against the node. If that block is gone or has another hash, it walks
//! back to the newest checkpoint still on the chain and reads again from
//! the block after it, so a job that reappears in a block the cursor had
//! passed is not missed. (A job that vanished is the relayer's to notice:
//! it reads each job's onchain state before sending it, and dead-letters
//! one that stays gone; if its `JobCreated` is read again, the relayer
//! pushes it again.)

use crate::board::AdmitError;
use crate::chain::{Backoff, Chain, ChainError};
use crate::config;
use crate::intake::Intake;
use crate::job::{JobId, JobSpec, Settlement, Status};
use crate::metrics::{ActorMetrics, ActorName};
use crate::peers::PublishJob;
use crate::pool::Mailbox;
use crate::programs::Programs;
use crate::protocol::bindings::IJobManager::{JobCancelled, JobCreated};
use crate::relayer::FromListener;
use crate::store::Write;
use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The `meta` key of the next block to read.
pub(crate) const CURSOR_KEY: &str = "listener.next_block";

/// The `meta` key of the checkpoints: (block number, block hash) of the
/// last block of each range read, oldest first, 40 bytes each.
pub(crate) const CHECKPOINTS_KEY: &str = "listener.checkpoints";

/// How many checkpoints are kept: a reorg that replaces more ranges than
/// this is read again from the oldest one.
pub(crate) const CHECKPOINTS: usize = 64;

/// What the listener needs.
#[derive(Debug, Clone)]
pub(crate) struct ListenerSetup {
    /// The node.
    pub chain: Chain,
    /// The `[chain]` section.
    pub config: config::Chain,
    /// The job limits.
    pub limits: config::Limits,
    /// Registered programs.
    pub programs: Arc<Programs>,
    /// Where jobs go in.
    pub intake: Intake,
    /// Where cancellations of executed jobs, and dead-lettered jobs that
    /// reappeared after a reorg, go.
    pub relayer: Mailbox<FromListener>,
    /// Cluster mode: jobs go into the cluster's queue (every engine's
    /// listener queues each; the queue keeps one), not into this engine's
    /// intake.
    pub cluster: Option<Mailbox<PublishJob>>,
}

/// The listener actor.
#[derive(Debug)]
pub(crate) struct Listener {
    setup: ListenerSetup,
    actor: Arc<ActorMetrics>,
    next_block: u64,
    /// (number, hash) of the last block of each range read, oldest first.
    checkpoints: Vec<(u64, B256)>,
    in_round: bool,
    backoff: Backoff,
}

/// What a round read.
#[derive(Debug)]
enum Read {
    /// A range of blocks, the hash of its last block (read before the
    /// logs), and its logs in chain order.
    Batch { to: u64, to_hash: B256, logs: Vec<Log> },
    /// The newest checkpoint is no longer on the chain: keep this many
    /// checkpoints (the ones still on it) and read again from `resume`.
    Reorg { keep: usize, resume: u64, gone: u64 },
}

impl Listener {
    /// A listener that resumes from the stored cursor (or `start_block`).
    pub(crate) fn new(setup: ListenerSetup) -> Result<Listener, crate::store::StoreError> {
        let stored = setup.intake.store.meta(CURSOR_KEY)?;
        let next_block = stored
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map_or(setup.config.start_block, u64::from_be_bytes);
        let actor = Arc::clone(setup.intake.metrics.actor(ActorName::Listener));
        let backoff = Backoff::new(Duration::from_millis(setup.config.poll_interval_ms));
        let checkpoints = setup.intake.store.meta(CHECKPOINTS_KEY)?.map(|bytes| decode(&bytes)).unwrap_or_default();
        Ok(Listener { setup, actor, next_block, checkpoints, in_round: false, backoff })
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.in_round || self.backoff.paused() {
            return;
        }
        self.in_round = true;
        let (chain, config, from) = (self.setup.chain.clone(), self.setup.config.clone(), self.next_block);
        let checkpoints = self.checkpoints.clone();
        ctx.spawn(read(chain, config, from, checkpoints).into_actor(self).map(|result, this, ctx| match result {
            Ok(Some(Read::Batch { to, to_hash, logs })) => this.take(to, to_hash, logs, ctx),
            Ok(Some(Read::Reorg { keep, resume, gone })) => this.rewind(keep, resume, gone),
            Ok(None) => this.in_round = false,
            Err(err) => {
                this.in_round = false;
                this.actor.failed();
                let pause = this.backoff.failed();
                tracing::warn!(%err, retry_in_ms = pause.as_millis() as u64, "listener: node unreachable");
            }
        }));
    }

    /// A reorg replaced blocks the cursor had passed: back to the newest
    /// checkpoint still on the chain.
    fn rewind(&mut self, keep: usize, resume: u64, gone: u64) {
        self.backoff.succeeded();
        self.in_round = false;
        let resume = resume.min(self.next_block);
        tracing::warn!(
            block = gone,
            from_block = resume,
            "listener: a block it read was reorged away; reading again from the last block still on the chain"
        );
        let mut checkpoints = self.checkpoints.clone();
        checkpoints.truncate(keep);
        let store = &self.setup.intake.store;
        // The checkpoints first: a crash between the two re-reads more
        // blocks, never fewer.
        let saved = store
            .set_meta(CHECKPOINTS_KEY, &encode(&checkpoints))
            .and_then(|()| store.set_meta(CURSOR_KEY, &resume.to_be_bytes()));
        match saved {
            Ok(()) => {
                self.checkpoints = checkpoints;
                self.next_block = resume;
            }
            Err(err) => tracing::error!(%err, "listener: cursor not rewound; the check is made again"),
        }
    }

    /// Takes a batch in: jobs admitted, cancellations applied, and once all
    /// of it is durable, the cursor moves past it.
    fn take(&mut self, to: u64, to_hash: B256, logs: Vec<Log>, ctx: &mut Context<Self>) {
        self.backoff.succeeded();
        let mut durable = Vec::new();
        let mut resume = to + 1;
        for log in &logs {
            if log.removed {
                continue;
            }
            let outcome = match log.topic0() {
                Some(&JobCreated::SIGNATURE_HASH) => self.created(log),
                Some(&JobCancelled::SIGNATURE_HASH) => self.cancelled(log),
                _ => Ok(None),
            };
            match outcome {
                Ok(Some(receiver)) => durable.push(receiver),
                Ok(None) => {}
                Err(ReadAgain) => {
                    // Not dropped: the block is read again once there is room.
                    resume = log.block_number.unwrap_or(self.next_block);
                    break;
                }
            }
        }
        let store = self.setup.intake.store.clone();
        let wait = async move {
            for taken in durable {
                if !taken.await {
                    return false;
                }
            }
            true
        };
        ctx.spawn(wait.into_actor(self).map(move |all_durable, this, _| {
            this.in_round = false;
            if !all_durable {
                tracing::error!("listener: a job's record failed; the range is read again");
                return;
            }
            // The whole range was taken: its last block is a checkpoint.
            let mut checkpoints = this.checkpoints.clone();
            if resume == to + 1 {
                checkpoints.retain(|(number, _)| *number < to);
                checkpoints.push((to, to_hash));
                let excess = checkpoints.len().saturating_sub(CHECKPOINTS);
                checkpoints.drain(..excess);
            }
            let saved = store
                .set_meta(CHECKPOINTS_KEY, &encode(&checkpoints))
                .and_then(|()| store.set_meta(CURSOR_KEY, &resume.to_be_bytes()));
            match saved {
                Ok(()) => {
                    this.checkpoints = checkpoints;
                    this.next_block = resume;
                    this.setup.intake.metrics.engine.listener_block.store(resume.saturating_sub(1), Ordering::Relaxed);
                }
                Err(err) => tracing::error!(%err, "listener: cursor not saved; the range is read again"),
            }
        }));
    }

    fn created(&mut self, log: &Log) -> Result<Option<Receiver>, ReadAgain> {
        self.actor.received();
        let event = match log.log_decode::<JobCreated>() {
            Ok(event) => event.inner.data,
            Err(err) => {
                tracing::warn!(%err, "listener: undecodable JobCreated log skipped");
                self.actor.handled(Duration::ZERO, false);
                return Ok(None);
            }
        };
        let id = JobId::from(event.jobID);
        // Known already (a block read twice, or a failed job, whose nonce
        // the socket may reuse but an event must not): nothing to add.
        if self.known(&id)? {
            let same = self.same_as_stored(&id, &event);
            self.actor.handled(Duration::ZERO, same);
            return Ok(None);
        }
        let intake = &self.setup.intake;
        let spec = match self.spec(&event) {
            Ok(spec) => spec,
            Err(reason) => {
                tracing::warn!(job = %id, %reason, "listener: onchain job refused");
                intake.metrics.engine.rejected.fetch_add(1, Ordering::Relaxed);
                self.actor.handled(Duration::ZERO, false);
                return Ok(None);
            }
        };
        if let Some(cluster) = &self.setup.cluster {
            let (cluster, spec) = (cluster.clone(), Arc::new(spec));
            self.actor.handled(Duration::ZERO, true);
            return Ok(Some(Box::pin(async move {
                match cluster.send(PublishJob { spec }).await {
                    Ok(Ok(())) => true,
                    Ok(Err(err)) => {
                        tracing::warn!(job = %id, %err, "listener: onchain job not queued in the cluster");
                        false
                    }
                    Err(_) => false,
                }
            })));
        }
        match intake.admit(Arc::new(spec), false) {
            Ok(admitted) => {
                intake.metrics.engine.onchain_jobs.fetch_add(1, Ordering::Relaxed);
                self.actor.handled(Duration::ZERO, true);
                Ok(Some(durable(admitted.durable)))
            }
            Err(AdmitError::Busy { .. }) => Err(ReadAgain),
            Err(AdmitError::NonceUsed { .. }) => Ok(None),
            Err(AdmitError::Store(err)) => {
                tracing::error!(%err, "listener: store failed; the block is read again");
                Err(ReadAgain)
            }
        }
    }

    /// Whether a `JobCreated` for a known job ID is the job the engine has
    /// (true, too, when that cannot be told). If it is and the job is
    /// dead-lettered, it vanished in a reorg and came back: the relayer
    /// pushes it again. Not the same only after a reorg that gave the
    /// consumer's nonce to another request: the engine keeps one job per
    /// ID, the one it has, whose result the JobManager refuses (its input
    /// hash differs); said loudly here.
    fn same_as_stored(&self, id: &JobId, event: &JobCreated) -> bool {
        let store = &self.setup.intake.store;
        let Ok(Some(entry)) = store.job(id) else { return true };
        let Ok(Some(stored)) = store.spec(&entry) else { return true };
        let same = JobSpec::from_event(event, &self.setup.limits).is_ok_and(|new| {
            (new.consumer, new.nonce, new.program_id, new.max_cycles, &new.onchain_input)
                == (stored.consumer, stored.nonce, stored.program_id, stored.max_cycles, &stored.onchain_input)
        });
        if same && entry.status == Status::DeadLettered {
            // Dead-lettered while its `JobCreated` was gone (state 0 at
            // every attempt); it is back.
            self.setup.relayer.do_send(FromListener::Reappeared(*id));
        }
        if !same {
            tracing::error!(
                job = %id,
                "listener: a JobCreated gives a known job ID to a different request (a reorg gave the consumer's \
                 nonce to it); the engine keeps the job it has, which will not settle"
            );
        }
        same
    }

    /// Whether the engine has the job, in flight or in the store.
    fn known(&self, id: &JobId) -> Result<bool, ReadAgain> {
        let intake = &self.setup.intake;
        let stored = intake.store.contains_job(id).map_err(|err| {
            tracing::error!(%err, "listener: store failed; the block is read again");
            ReadAgain
        })?;
        Ok(stored || intake.board.contains(id))
    }

    /// The job of a `JobCreated` event, if its program is registered and it
    /// is within the limits (the same check as a socket request's).
    fn spec(&self, event: &JobCreated) -> Result<JobSpec, String> {
        let spec = JobSpec::from_event(event, &self.setup.limits).map_err(|err| err.to_string())?;
        if !self.setup.programs.contains(&spec.program_id) {
            return Err(format!("program {} is not registered", spec.program_id));
        }
        Ok(spec)
    }

    fn cancelled(&mut self, log: &Log) -> Result<Option<Receiver>, ReadAgain> {
        self.actor.received();
        let Ok(event) = log.log_decode::<JobCancelled>() else {
            self.actor.handled(Duration::ZERO, false);
            return Ok(None);
        };
        let id = JobId::from(event.inner.data.jobID);
        let intake = &self.setup.intake;
        if self.known(&id)? {
            let (tx, rx) = tokio::sync::oneshot::channel();
            intake.store.commit(vec![Write::settle(id, Settlement::Cancelled)], Box::new(move |r| drop(tx.send(r))));
            // A job not yet run never runs; an executed one is not submitted.
            intake.board.remove(&id);
            self.setup.relayer.do_send(FromListener::Cancelled(id));
            intake.metrics.engine.cancelled.fetch_add(1, Ordering::Relaxed);
            tracing::info!(job = %id, "job cancelled onchain");
            self.actor.handled(Duration::ZERO, true);
            return Ok(Some(durable(rx)));
        }
        self.actor.handled(Duration::ZERO, true);
        Ok(None)
    }
}

/// Resolves to whether what a log asked for was taken durably (recorded
/// here, or queued in the cluster).
type Receiver = std::pin::Pin<Box<dyn std::future::Future<Output = bool>>>;

/// A store commit as a [`Receiver`].
fn durable(commit: tokio::sync::oneshot::Receiver<Result<(), crate::store::CommitError>>) -> Receiver {
    Box::pin(async move { matches!(commit.await, Ok(Ok(()))) })
}

/// The queue is full or the store failed: stop the batch at this log's
/// block and read it again later.
#[derive(Debug)]
struct ReadAgain;

/// Reads the next range of confirmed blocks, if there is one, once the
/// newest checkpoint is found still on the chain.
async fn read(
    chain: Chain,
    config: config::Chain,
    from: u64,
    checkpoints: Vec<(u64, B256)>,
) -> Result<Option<Read>, ChainError> {
    let head = chain.head().await?;
    let Some(safe) = (head + 1).checked_sub(config.confirmations) else { return Ok(None) };
    if from > safe {
        return Ok(None);
    }
    if let Some(&(newest, _)) = checkpoints.last() {
        let mut keep = checkpoints.len();
        while let Some(&(number, hash)) = keep.checked_sub(1).and_then(|last| checkpoints.get(last)) {
            if block_hash(&chain, number).await? == Some(hash) {
                break;
            }
            keep -= 1;
        }
        if keep < checkpoints.len() {
            // Deeper than every checkpoint: from the oldest one's block.
            let resume = match keep.checked_sub(1).and_then(|last| checkpoints.get(last)) {
                Some(&(number, _)) => number + 1,
                None => checkpoints.first().map_or(config.start_block, |&(number, _)| number),
            };
            return Ok(Some(Read::Reorg { keep, resume, gone: newest }));
        }
    }
    let to = safe.min(from.saturating_add(config.max_log_range - 1));
    // The hash before the logs: if a reorg comes between the two, the
    // next round's check finds it and the range is read again.
    let Some(to_hash) = block_hash(&chain, to).await? else { return Ok(None) };
    let filter = Filter::new()
        .address(chain.job_manager())
        .event_signature(vec![JobCreated::SIGNATURE_HASH, JobCancelled::SIGNATURE_HASH])
        .from_block(from)
        .to_block(to);
    let logs = chain.rpc(chain.provider().get_logs(&filter)).await?;
    Ok(Some(Read::Batch { to, to_hash, logs }))
}

/// The hash of block `number`, if the node has it.
async fn block_hash(chain: &Chain, number: u64) -> Result<Option<B256>, ChainError> {
    let block = chain.rpc(chain.provider().get_block_by_number(BlockNumberOrTag::Number(number))).await?;
    Ok(block.map(|block| block.header.hash))
}

/// The checkpoints as stored: 8 bytes of number, 32 of hash, each.
fn encode(checkpoints: &[(u64, B256)]) -> Vec<u8> {
    checkpoints.iter().flat_map(|(number, hash)| number.to_be_bytes().into_iter().chain(hash.0)).collect()
}

/// The stored checkpoints; a partial trailing entry is ignored.
fn decode(bytes: &[u8]) -> Vec<(u64, B256)> {
    bytes
        .chunks_exact(40)
        .map(|entry| {
            let (number, hash) = entry.split_at(8);
            let mut be = [0u8; 8];
            be.copy_from_slice(number);
            (u64::from_be_bytes(be), B256::from_slice(hash))
        })
        .collect()
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(from_block = self.next_block, job_manager = %self.setup.chain.job_manager(), "listener started");
        let every = Duration::from_millis(self.setup.config.poll_interval_ms);
        ctx.run_interval(every, |this, ctx| this.round(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use alloy::primitives::B256;

    #[test]
    fn checkpoints_round_trip_and_a_torn_entry_is_ignored() {
        let checkpoints = vec![(7, B256::repeat_byte(1)), (u64::MAX, B256::repeat_byte(0xfe))];
        let bytes = encode(&checkpoints);
        assert_eq!(bytes.len(), 80);
        assert_eq!(decode(&bytes), checkpoints);
        assert_eq!(decode(&bytes[..79]), checkpoints[..1]);
        assert!(decode(&[]).is_empty());
    }
}
