//! The relayer: settles results onchain. It sends each successful
//! result to the JobManager (`submitResult` for onchain jobs,
//! `submitResultForOffchainJob` for offchain ones), from one relayer
//! account whose nonce it manages itself, and waits `confirmations`.
//!
//! - Every round ([`send::round`]) first checks the transactions in
//!   flight, then sends what is ready, up to `max_in_flight`.
//! - An unreachable node pauses the relayer with a growing backoff (up to
//!   5 s) and nothing is counted; a revert or a refusal counts as a failed
//!   attempt, and after `max_relay_attempts` the job is dead-lettered
//!   (`coprocessor job retry` brings it back).
//! - Before a job is counted as failed, the chain is asked about it: a job
//!   already completed onchain (our own transaction from before a crash,
//!   say) is confirmed, never sent again; a cancelled one is cancelled.
//! - Ordered jobs go through [`lanes`], one nonce at a time per consumer.
//!
//! Each step is logged (`Submitted`, `Confirmed`, `Cancelled`,
//! `DeadLettered`, `Retried`); at start-up the supervisor hands back every
//! job that is `Done` or `Submitted`.

mod lanes;
mod send;

use crate::chain::{Backoff, Chain};
use crate::config;
use crate::job::{DeadLetter, JobId, JobSpec, Origin, Settlement, Status};
use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::Handle;
use crate::protocol::eip191::Signer;
use crate::store::{ResultRecord, Store, StoreError, Write};
use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, B256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use lanes::Lanes;
use send::{Account, Event, Plan, Settled};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use lanes::LaneView;

/// An executed job whose signed result should go onchain.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Relay {
    /// The job.
    pub(crate) spec: Arc<JobSpec>,
    /// Its recorded result: `abi.encode(ResultWithMetadata)` (or the
    /// offchain variant) and the operator's signature over it.
    pub(crate) result: Arc<ResultRecord>,
}

/// A job was cancelled onchain: drop it unless its transaction is out.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct CancelRelay {
    /// The job.
    pub id: JobId,
}

/// Push a dead-lettered job again.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RetryError>")]
pub(crate) struct Retry {
    /// The job.
    pub id: JobId,
}

/// Why a job could not be retried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RetryError {
    /// No such job.
    #[error("no job {0}")]
    Unknown(JobId),
    /// The job is not dead-lettered.
    #[error("job {id} is {status}, not dead-lettered")]
    NotDeadLettered {
        /// The job.
        id: JobId,
        /// Its status.
        status: Status,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A consumer's ordered-relay lane.
#[derive(Debug, Message)]
#[rtype(result = "LaneView")]
pub(crate) struct LaneQuery {
    /// The consumer.
    pub consumer: Address,
}

#[derive(Debug)]
enum Phase {
    /// In an ordered lane, waiting for its turn.
    Waiting,
    /// To be sent, not before the instant.
    Ready(Instant),
    /// Its transaction is out.
    InFlight { tx: B256, sent: Instant },
}

#[derive(Debug)]
struct Job {
    spec: Arc<JobSpec>,
    calldata: Bytes,
    attempts: u32,
    phase: Phase,
}

/// What the relayer needs.
#[derive(Debug, Clone)]
pub(crate) struct RelayerSetup {
    /// The node.
    pub chain: Chain,
    /// The `[chain]` section.
    pub config: config::Chain,
    /// The relayer account's key (it pays gas).
    pub key: Signer,
    /// Where settlement steps are logged.
    pub store: Store,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// The relayer actor.
#[derive(Debug)]
pub(crate) struct Relayer {
    account: Account,
    setup: RelayerSetup,
    actor: Arc<ActorMetrics>,
    jobs: HashMap<JobId, Job>,
    queue: VecDeque<JobId>,
    lanes: Lanes,
    chain_id: Option<u64>,
    nonce: Option<u64>,
    backoff: Backoff,
    in_round: bool,
}

impl Relayer {
    /// Starts the relayer on `arbiter` (the chain thread).
    pub(crate) fn start(
        setup: RelayerSetup,
        arbiter: &actix::ArbiterHandle,
    ) -> Result<Handle<Relayer>, crate::chain::ChainError> {
        let relayer = Relayer::new(setup)?;
        let counters = Arc::clone(&relayer.actor);
        Ok(Handle::new(Relayer::start_in_arbiter(arbiter, |_| relayer), counters))
    }

    /// A relayer for `setup` (it starts working once started as an actor).
    fn new(setup: RelayerSetup) -> Result<Relayer, crate::chain::ChainError> {
        let signer = PrivateKeySigner::from_bytes(&B256::from(setup.key.secret_bytes()))
            .map_err(|err| crate::chain::ChainError::Config(format!("relayer key: {err}")))?;
        let account = Account {
            chain: setup.chain.clone(),
            address: signer.address(),
            wallet: EthereumWallet::from(signer),
            confirmations: setup.config.confirmations,
        };
        let actor = Arc::clone(setup.metrics.actor(ActorName::Relayer));
        Ok(Relayer {
            account,
            actor,
            jobs: HashMap::new(),
            queue: VecDeque::new(),
            lanes: Lanes::default(),
            chain_id: None,
            nonce: None,
            backoff: Backoff::new(poll_interval(&setup.config)),
            in_round: false,
            setup,
        })
    }

    fn add(&mut self, spec: Arc<JobSpec>, result: &ResultRecord) {
        if self.jobs.contains_key(&spec.id) {
            return;
        }
        let calldata = calldata(&spec, result);
        let mut job = Job { spec, calldata, attempts: 0, phase: Phase::Ready(Instant::now()) };
        let id = job.spec.id;
        if job.spec.is_ordered() {
            job.phase = Phase::Waiting;
            self.lanes.add(job.spec.consumer, job.spec.nonce, id);
        } else {
            self.queue.push_back(id);
        }
        self.jobs.insert(id, job);
    }

    /// Plans a round: releases ordered jobs, lists the transactions to
    /// check, and takes ready jobs up to the in-flight limit.
    fn plan(&mut self) -> Plan {
        let now = Instant::now();
        for id in self.lanes.release() {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.phase = Phase::Ready(now);
                self.queue.push_back(id);
            }
        }
        let drop_timeout = Duration::from_millis(self.setup.config.drop_timeout_ms);
        let check: Vec<_> = self
            .jobs
            .iter()
            .filter_map(|(id, job)| match job.phase {
                Phase::InFlight { tx, sent } => Some((*id, tx, now.duration_since(sent) > drop_timeout)),
                _ => None,
            })
            .collect();
        let room = self.setup.config.max_in_flight.saturating_sub(check.len());
        let mut send = Vec::new();
        let mut later = VecDeque::new();
        while let Some(id) = self.queue.pop_front() {
            let Some(job) = self.jobs.get(&id) else { continue };
            match job.phase {
                Phase::Ready(at) if at <= now && send.len() < room => send.push((id, job.calldata.clone())),
                Phase::Ready(_) => later.push_back(id),
                _ => {}
            }
        }
        self.queue = later;
        Plan { chain_id: self.chain_id, nonce: self.nonce, start_lanes: self.lanes.unstarted(), check, send }
    }

    fn apply(&mut self, events: Vec<Event>) {
        let mut reachable = true;
        for event in events {
            match event {
                Event::ChainId(id) => self.chain_id = Some(id),
                Event::Nonce(nonce) => self.nonce = nonce,
                Event::LaneStart(consumer, next) => self.lanes.start(consumer, next),
                Event::Sent { id, tx } => {
                    if let Some(job) = self.jobs.get_mut(&id) {
                        job.phase = Phase::InFlight { tx, sent: Instant::now() };
                        self.log(id, Settlement::Submitted { tx_hash: tx.0 });
                    }
                }
                Event::Settled { id, how } => self.settled(id, how),
                Event::Failed { id, reason } => self.failed(id, reason),
                Event::Again { id } => {
                    if let Some(job) = self.jobs.get_mut(&id) {
                        job.phase = Phase::Ready(Instant::now());
                        self.queue.push_back(id);
                    }
                }
                Event::Unreachable(reason) => {
                    reachable = false;
                    self.actor.failed();
                    let pause = self.backoff.failed();
                    tracing::warn!(%reason, retry_in_ms = pause.as_millis() as u64, "relayer: node unreachable");
                }
            }
        }
        if reachable {
            self.backoff.succeeded();
        }
        let engine = &self.setup.metrics.engine;
        let in_flight = self.jobs.values().filter(|job| matches!(job.phase, Phase::InFlight { .. })).count();
        engine.relay_in_flight.store(in_flight as u64, Ordering::Relaxed);
        engine.relay_blocked_consumers.store(self.lanes.blocked() as u64, Ordering::Relaxed);
    }

    fn settled(&mut self, id: JobId, how: Settled) {
        let Some(job) = self.jobs.remove(&id) else { return };
        let engine = &self.setup.metrics.engine;
        match how {
            Settled::Confirmed { tx, block } => {
                engine.relayed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(job = %id, %tx, block, "result confirmed onchain");
                self.log(id, Settlement::Confirmed { tx_hash: tx.0, block });
            }
            Settled::Cancelled => {
                engine.cancelled.fetch_add(1, Ordering::Relaxed);
                self.log(id, Settlement::Cancelled);
            }
        }
        if job.spec.is_ordered() {
            self.lanes.settled(job.spec.consumer, job.spec.nonce);
        }
    }

    fn failed(&mut self, id: JobId, reason: String) {
        let engine = &self.setup.metrics.engine;
        engine.relay_failures.fetch_add(1, Ordering::Relaxed);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.attempts += 1;
        tracing::warn!(job = %id, attempt = job.attempts, %reason, "result submission failed");
        if job.attempts < self.setup.config.max_relay_attempts {
            // 1 s, 2 s, 4 s … between attempts, at most 30 s.
            let wait = Duration::from_secs(1 << job.attempts.min(5).saturating_sub(1)).min(Duration::from_secs(30));
            job.phase = Phase::Ready(Instant::now() + wait);
            self.queue.push_back(id);
            return;
        }
        let attempts = job.attempts;
        let Some(job) = self.jobs.remove(&id) else { return };
        engine.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.actor.failed();
        tracing::error!(job = %id, attempts, %reason, "dead-lettered; `coprocessor job retry` pushes it again");
        self.log(id, Settlement::DeadLettered(DeadLetter { attempts, reason }));
        if job.spec.is_ordered() {
            self.lanes.stalled(job.spec.consumer, job.spec.nonce);
        }
    }

    /// Logs a settlement step. Losing one to a store failure is safe: the
    /// job stays `Done`/`Submitted` and the next start-up asks the chain.
    fn log(&self, id: JobId, step: Settlement) {
        self.setup.store.commit(
            vec![Write::settle(id, step)],
            Box::new(move |result| {
                if let Err(err) = result {
                    tracing::error!(job = %id, %err, "settlement step not recorded");
                }
            }),
        );
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.in_round || self.backoff.paused() {
            return;
        }
        let plan = self.plan();
        if plan.check.is_empty() && plan.send.is_empty() && plan.start_lanes.is_empty() {
            return;
        }
        self.in_round = true;
        let account = self.account.clone();
        ctx.spawn(send::round(account, plan).into_actor(self).map(|events, this, _| {
            this.in_round = false;
            this.apply(events);
        }));
    }

    fn retry(&mut self, id: JobId) -> Result<(), RetryError> {
        let store = &self.setup.store;
        let entry = store.job(&id)?.ok_or(RetryError::Unknown(id))?;
        if entry.status != Status::DeadLettered {
            return Err(RetryError::NotDeadLettered { id, status: entry.status });
        }
        let (spec, result) = store.executed(&entry)?.ok_or(RetryError::Unknown(id))?;
        self.log(id, Settlement::Retried);
        tracing::info!(job = %id, "retrying a dead-lettered job");
        self.add(Arc::new(spec), &result);
        Ok(())
    }
}

fn poll_interval(config: &config::Chain) -> Duration {
    Duration::from_millis(config.poll_interval_ms)
}

/// The JobManager call that settles a job. An offchain job settles with
/// the request bytes its consumer's signer signed, exactly as received.
fn calldata(spec: &JobSpec, result: &ResultRecord) -> Bytes {
    use crate::protocol::bindings::IJobManager::{submitResultCall, submitResultForOffchainJobCall};
    let result_with_metadata = Bytes::copy_from_slice(&result.result_with_metadata);
    let signature = Bytes::copy_from_slice(&result.signature);
    let calldata = match &spec.origin {
        Origin::Onchain => submitResultCall { resultWithMetadata: result_with_metadata, signature }.abi_encode(),
        Origin::Offchain { request, signature: request_signature, .. } => submitResultForOffchainJobCall {
            offchainResultWithMetadata: result_with_metadata,
            signatureOnResult: signature,
            jobRequest: Bytes::copy_from_slice(request),
            signatureOnRequest: Bytes::copy_from_slice(request_signature),
        }
        .abi_encode(),
    };
    calldata.into()
}

impl Actor for Relayer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(relayer = %self.account.address, job_manager = %self.account.chain.job_manager(), "relayer started");
        ctx.run_interval(poll_interval(&self.setup.config), |this, ctx| this.round(ctx));
    }
}

impl Handler<Relay> for Relayer {
    type Result = ();

    fn handle(&mut self, msg: Relay, ctx: &mut Context<Self>) {
        let start = Instant::now();
        self.add(msg.spec, &msg.result);
        self.round(ctx);
        self.actor.handled(start.elapsed(), true);
    }
}

impl Handler<CancelRelay> for Relayer {
    type Result = ();

    fn handle(&mut self, msg: CancelRelay, _: &mut Context<Self>) {
        self.actor.handled(Duration::ZERO, true);
        let Some(job) = self.jobs.get(&msg.id) else { return };
        if matches!(job.phase, Phase::InFlight { .. }) {
            // Its receipt tells: a revert on a cancelled job settles it as such.
            return;
        }
        if let Some(job) = self.jobs.remove(&msg.id) {
            if job.spec.is_ordered() {
                self.lanes.settled(job.spec.consumer, job.spec.nonce);
            }
        }
    }
}

impl Handler<Retry> for Relayer {
    type Result = Result<(), RetryError>;

    fn handle(&mut self, msg: Retry, ctx: &mut Context<Self>) -> Self::Result {
        let start = Instant::now();
        let retried = self.retry(msg.id);
        self.actor.handled(start.elapsed(), retried.is_ok());
        retried?;
        self.round(ctx);
        Ok(())
    }
}

impl Handler<LaneQuery> for Relayer {
    type Result = actix::MessageResult<LaneQuery>;

    fn handle(&mut self, msg: LaneQuery, _: &mut Context<Self>) -> Self::Result {
        self.actor.handled(Duration::ZERO, true);
        actix::MessageResult(self.lanes.view(&msg.consumer))
    }
}
