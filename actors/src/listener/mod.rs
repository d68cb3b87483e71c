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

use crate::board::AdmitError;
use crate::chain::{Backoff, Chain, ChainError};
use crate::config;
use crate::intake::Intake;
use crate::job::{JobId, JobSpec, Settlement};
use crate::metrics::{ActorMetrics, ActorName};
use crate::pool::Mailbox;
use crate::programs::Programs;
use crate::protocol::bindings::IJobManager::{JobCancelled, JobCreated};
use crate::relayer::CancelRelay;
use crate::store::Write;
use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The `meta` key of the next block to read.
pub(crate) const CURSOR_KEY: &str = "listener.next_block";

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
    /// Where cancellations of executed jobs go.
    pub relayer: Mailbox<CancelRelay>,
}

/// The listener actor.
#[derive(Debug)]
pub(crate) struct Listener {
    setup: ListenerSetup,
    actor: Arc<ActorMetrics>,
    next_block: u64,
    in_round: bool,
    backoff: Backoff,
}

/// A range of blocks read, and its logs in chain order.
#[derive(Debug)]
struct Batch {
    to: u64,
    logs: Vec<Log>,
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
        Ok(Listener { setup, actor, next_block, in_round: false, backoff })
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.in_round || self.backoff.paused() {
            return;
        }
        self.in_round = true;
        let (chain, config, from) = (self.setup.chain.clone(), self.setup.config.clone(), self.next_block);
        ctx.spawn(read(chain, config, from).into_actor(self).map(|result, this, ctx| match result {
            Ok(Some(batch)) => this.take(batch, ctx),
            Ok(None) => this.in_round = false,
            Err(err) => {
                this.in_round = false;
                this.actor.failed();
                let pause = this.backoff.failed();
                tracing::warn!(%err, retry_in_ms = pause.as_millis() as u64, "listener: node unreachable");
            }
        }));
    }

    /// Takes a batch in: jobs admitted, cancellations applied, and once all
    /// of it is durable, the cursor moves past it.
    fn take(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        self.backoff.succeeded();
        let mut durable = Vec::new();
        let mut resume = batch.to + 1;
        for log in &batch.logs {
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
            for receiver in durable {
                if !matches!(receiver.await, Ok(Ok(()))) {
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
            match store.set_meta(CURSOR_KEY, &resume.to_be_bytes()) {
                Ok(()) => {
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
            self.actor.handled(Duration::ZERO, true);
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
        match intake.admit(Arc::new(spec), false) {
            Ok(admitted) => {
                intake.metrics.engine.onchain_jobs.fetch_add(1, Ordering::Relaxed);
                self.actor.handled(Duration::ZERO, true);
                Ok(Some(admitted.durable))
            }
            Err(AdmitError::Busy { .. }) => Err(ReadAgain),
            Err(AdmitError::NonceUsed { .. }) => Ok(None),
            Err(AdmitError::Store(err)) => {
                tracing::error!(%err, "listener: store failed; the block is read again");
                Err(ReadAgain)
            }
        }
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
            self.setup.relayer.do_send(CancelRelay { id });
            intake.metrics.engine.cancelled.fetch_add(1, Ordering::Relaxed);
            tracing::info!(job = %id, "job cancelled onchain");
            self.actor.handled(Duration::ZERO, true);
            return Ok(Some(rx));
        }
        self.actor.handled(Duration::ZERO, true);
        Ok(None)
    }
}

type Receiver = tokio::sync::oneshot::Receiver<Result<(), crate::store::CommitError>>;

/// The queue is full or the store failed: stop the batch at this log's
/// block and read it again later.
#[derive(Debug)]
struct ReadAgain;

/// Reads the next range of confirmed blocks, if there is one.
async fn read(chain: Chain, config: config::Chain, from: u64) -> Result<Option<Batch>, ChainError> {
    let head = chain.head().await?;
    let Some(safe) = (head + 1).checked_sub(config.confirmations) else { return Ok(None) };
    if from > safe {
        return Ok(None);
    }
    let to = safe.min(from.saturating_add(config.max_log_range - 1));
    let filter = Filter::new()
        .address(chain.job_manager())
        .event_signature(vec![JobCreated::SIGNATURE_HASH, JobCancelled::SIGNATURE_HASH])
        .from_block(from)
        .to_block(to);
    let logs = chain.rpc(chain.provider().get_logs(&filter)).await?;
    Ok(Some(Batch { to, logs }))
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(from_block = self.next_block, job_manager = %self.setup.chain.job_manager(), "listener started");
        let every = Duration::from_millis(self.setup.config.poll_interval_ms);
        ctx.run_interval(every, |this, ctx| this.round(ctx));
    }
}
