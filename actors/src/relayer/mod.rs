//! The relayer: settles results onchain as fast as the chain takes them.
//!
//! - **Pipelined**: each relayer key (`relayer_key`, plus any
//!   `relayer_keys`) is a nonce lane ([`senders`]); nonces are assigned
//!   locally and up to `max_in_flight` transactions are out per key, none
//!   waiting for another to be mined.
//! - **Batched**: results are packed into `submitResults` calls
//!   ([`batch`]), each item isolated onchain; with `max_batch_items = 1`
//!   each goes alone through InfinityVM's single-result functions.
//! - **Gas without a simulation per result**: [`gas`] learns each kind of
//!   settlement from one `eth_estimateGas`, then predicts.
//! - **Fees**: EIP-1559 from `eth_feeHistory` under a ceiling ([`fees`]);
//!   a transaction unmined after `replace_after_blocks` is replaced with
//!   higher fees, a dropped one (a nonce gap) sent again.
//! - **Confirmed from events**: `JobCompleted` and `ResultSkipped`,
//!   `confirmations` deep, say what settled; one receipt per mined
//!   transaction gives the fee paid and a verdict for any job it did not
//!   settle (a transaction that succeeded without settling is not counted).
//! - **Several engines on one JobManager**: a job is checked onchain before
//!   it is sent; one completed by someone else is `already-settled`.
//! - **Failures**: a refusal or a skipped item counts as a failed attempt
//!   (with the reason); at `max_relay_attempts` the job is dead-lettered
//!   until `coprocessor job retry`. An unreachable node pauses the relayer
//!   (backoff up to 5 s) and counts nothing.
//! - Ordered jobs go through [`lanes`], one nonce at a time per consumer.
//!
//! The I/O of a round is in [`io`] (its sends in [`send`]); this actor
//! plans rounds and applies what they found ([`verdicts`]), so its state
//! never changes across an `await`. Its messages are in [`messages`].

mod batch;
mod fees;
mod gas;
mod io;
mod lanes;
mod messages;
mod plan;
mod send;
mod senders;
mod verdicts;

use crate::chain::{Backoff, Chain};
use crate::config;
use crate::job::{DeadLetter, JobId, JobSpec, Settlement, Status};
use crate::metrics::{ActorMetrics, ActorName, Metrics};
use crate::pool::Handle;
use crate::protocol::eip191::Signer;
use crate::store::{ResultRecord, Store, Write};
use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use batch::Item;
use fees::{FeeError, Fees};
use gas::GasBook;
use lanes::Lanes;
use plan::{Event, Plan};
use senders::{Sender, Tx};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use lanes::LaneView;
pub(crate) use messages::{Ended, FromListener, LaneQuery, Relay, Resumed, Retry, RetryError, Waiting};

#[derive(Debug)]
enum Phase {
    /// In an ordered lane, waiting for its turn.
    Waiting,
    /// Handed back at start-up with a transaction out: held while the
    /// node still has our unmined transactions from before the stop (for
    /// `replace_after_blocks` blocks at most).
    Held,
    /// To be sent, not before the instant.
    Ready(Instant),
    /// Carried by the transaction with this nonce from this key.
    InFlight { sender: usize, nonce: u64 },
    /// Its transaction did not settle it: its onchain state decides
    /// (completed, cancelled, or a failed attempt with the reason); with
    /// `simulate`, a simulation finds the reason first.
    Verdict { reason: String, simulate: bool },
}

#[derive(Debug)]
struct Job {
    spec: Arc<JobSpec>,
    item: Item,
    attempts: u32,
    phase: Phase,
    /// When it last joined the queue (it waits up to `batch_wait_ms` from
    /// then for others to share its transaction).
    queued_at: Instant,
    /// Every transaction that carried it in this run.
    hashes: Vec<B256>,
    /// Handed back at start-up (its settlement may be an earlier run's).
    resumed: Option<Resumed>,
    /// Send it alone with the whole per-item gas share (it ran short in a
    /// batch).
    solo: bool,
    /// Who waits for it to leave the relayer (cluster mode's relay queue).
    ended: Option<Ended>,
}

/// What the relayer needs.
#[derive(Debug, Clone)]
pub(crate) struct RelayerSetup {
    /// The node.
    pub chain: Chain,
    /// The `[chain]` section.
    pub config: config::Chain,
    /// The relayer keys (they pay gas); the first is `relayer_key`.
    pub keys: Vec<Signer>,
    /// Where settlement steps are logged.
    pub store: Store,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// What the chain looked like at the last round.
#[derive(Debug, Default)]
struct View {
    chain_id: Option<u64>,
    block_gas_limit: Option<u64>,
    head: Option<u64>,
    cursor: Option<u64>,
    fees: Option<Result<Fees, FeeError>>,
    /// Why results whose inputs go in blobs wait (the blob fee is above its
    /// ceiling), as of the last round that had blobs to send.
    blob_hold: Option<FeeError>,
    /// Heads seen since start-up (resumed jobs are held for a few).
    heads_seen: u64,
    /// When the block gas limit and the keys' onchain rights were read
    /// (they are read again every [`SETUP_EVERY`]: an owner may authorize
    /// a key while the engine runs).
    setup_at: Option<Instant>,
    /// When fees (and balances) were last read.
    refreshed_at: Option<Instant>,
}

/// Fees and balances are read on a new head, at most this often.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// How often the block gas limit and the keys' rights are read again.
const SETUP_EVERY: Duration = Duration::from_secs(600);

/// The relayer actor.
#[derive(Debug)]
pub(crate) struct Relayer {
    setup: RelayerSetup,
    /// `setup.config`, shared with each round.
    config: Arc<config::Chain>,
    actor: Arc<ActorMetrics>,
    senders: Vec<Sender>,
    jobs: HashMap<JobId, Job>,
    queue: VecDeque<JobId>,
    lanes: Lanes,
    book: GasBook,
    view: View,
    backoff: Backoff,
    in_round: bool,
    warned_low_balance: bool,
    /// Stuck transactions already reported at the fee ceiling.
    warned_at_ceiling: HashSet<(usize, u64)>,
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
        let mut senders = Vec::new();
        let mut seen = HashSet::new();
        for key in &setup.keys {
            let signer = PrivateKeySigner::from_bytes(&B256::from(key.secret_bytes()))
                .map_err(|err| crate::chain::ChainError::Config(format!("relayer key: {err}")))?;
            if !seen.insert(signer.address()) {
                return Err(crate::chain::ChainError::Config(format!(
                    "relayer key {} is listed twice: two nonce lanes on one account would collide",
                    signer.address()
                )));
            }
            senders.push(Sender::new(signer.address(), EthereumWallet::from(signer)));
        }
        if senders.is_empty() {
            return Err(crate::chain::ChainError::Config("no relayer key".into()));
        }
        let actor = Arc::clone(setup.metrics.actor(ActorName::Relayer));
        Ok(Relayer {
            config: Arc::new(setup.config.clone()),
            senders,
            actor,
            jobs: HashMap::new(),
            queue: VecDeque::new(),
            lanes: Lanes::default(),
            book: GasBook::default(),
            view: View::default(),
            backoff: Backoff::new(poll_interval(&setup.config)),
            in_round: false,
            warned_low_balance: false,
            warned_at_ceiling: HashSet::new(),
            setup,
        })
    }

    fn add(&mut self, spec: Arc<JobSpec>, result: &ResultRecord, resumed: Option<Resumed>, ended: Option<Ended>) {
        if let Some(job) = self.jobs.get_mut(&spec.id) {
            if ended.is_some() {
                job.ended = ended;
            }
            return;
        }
        let item = Item::new(&spec, result);
        let id = spec.id;
        let phase = if spec.is_ordered() {
            self.lanes.add(spec.consumer, spec.nonce, id);
            Phase::Waiting
        } else if resumed.is_some_and(|resumed| resumed.tx.is_some()) {
            Phase::Held
        } else {
            self.queue.push_back(id);
            Phase::Ready(Instant::now())
        };
        let hashes = resumed.and_then(|resumed| resumed.tx).into_iter().collect();
        let queued_at = Instant::now();
        self.jobs.insert(id, Job { spec, item, attempts: 0, phase, queued_at, hashes, resumed, solo: false, ended });
    }

    /// Plans a round: releases ordered and held jobs, and lists the jobs to
    /// send and those awaiting a verdict. Jobs stay `Ready` during the
    /// round; the events move them.
    fn plan(&mut self) -> Plan {
        let now = Instant::now();
        for id in self.lanes.release() {
            self.enqueue(id, now);
        }
        // Transactions from before a restart are left to be mined (or to
        // fail) before their jobs are sent again, for a few blocks at most;
        // each job is checked onchain before it goes.
        let drained = self.senders.iter().all(Sender::drained);
        if drained || self.view.heads_seen > self.config.replace_after_blocks {
            let held: Vec<JobId> =
                self.jobs.iter().filter(|(_, job)| matches!(job.phase, Phase::Held)).map(|(id, _)| *id).collect();
            for id in held {
                self.enqueue(id, now);
            }
        }
        // No more than the keys have room for: each job taken is checked
        // onchain this round.
        let room: usize = self
            .senders
            .iter()
            .map(|sender| self.config.max_in_flight.saturating_sub(sender.in_flight()))
            .sum::<usize>()
            .saturating_mul(self.config.max_batch_items);
        let mut ready = Vec::new();
        let mut solo = HashSet::new();
        let mut later = VecDeque::new();
        let mut seen = HashSet::new();
        while let Some(id) = self.queue.pop_front() {
            let Some(job) = self.jobs.get(&id) else { continue };
            match job.phase {
                Phase::Ready(at) if at <= now && ready.len() < room && seen.insert(id) => {
                    if job.solo {
                        solo.insert(id);
                    }
                    ready.push(job.item.clone());
                    later.push_back(id);
                }
                Phase::Ready(_) if !seen.contains(&id) => {
                    seen.insert(id);
                    later.push_back(id);
                }
                _ => {}
            }
        }
        self.queue = later;
        // A result waits up to `batch_wait_ms` for others to share its
        // transaction, unless a full batch is ready.
        let wait = Duration::from_millis(self.config.batch_wait_ms);
        let oldest = ready.iter().filter_map(|item| self.jobs.get(&item.id)).map(|job| job.queued_at).min();
        if oldest.is_some_and(|oldest| oldest + wait > now) && ready.len() < self.config.max_batch_items {
            ready.clear();
            solo.clear();
        }
        let verdicts = self
            .jobs
            .iter()
            .filter_map(|(id, job)| match &job.phase {
                Phase::Verdict { simulate, .. } => Some((*id, *simulate, job.item.clone())),
                _ => None,
            })
            .collect();
        let setup_due = self.view.setup_at.is_none_or(|at| at.elapsed() >= SETUP_EVERY);
        // A stuck line is replaced at the fees of the moment.
        let after = self.config.replace_after_blocks;
        let replacing =
            self.view.head.is_some_and(|head| self.senders.iter().any(|s| !s.resends(head + 1, after).is_empty()));
        Plan {
            chain_id: self.view.chain_id,
            block_gas_limit: self.view.block_gas_limit.filter(|_| !setup_due),
            cursor: self.view.cursor,
            last_head: self.view.head,
            fees: self.view.fees.clone(),
            refresh: self.view.refreshed_at.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) || replacing,
            senders: self.senders.clone(),
            start_lanes: self.lanes.unstarted(),
            verdicts,
            ready,
            solo,
            book: self.book.clone(),
            config: Arc::clone(&self.config),
        }
    }

    fn apply(&mut self, events: Vec<Event>) {
        let mut reachable = true;
        for event in events {
            match event {
                Event::ChainId(id) => self.view.chain_id = Some(id),
                Event::Setup { block_gas_limit, onchain } => {
                    self.view.block_gas_limit = Some(block_gas_limit);
                    self.view.setup_at = Some(Instant::now());
                    for (sender, onchain) in self.senders.iter_mut().zip(onchain) {
                        sender.onchain = onchain;
                    }
                }
                Event::Head(head) => {
                    if self.view.head != Some(head) {
                        self.view.heads_seen += 1;
                    }
                    self.view.head = Some(head);
                }
                Event::Cursor(cursor) => self.view.cursor = Some(cursor),
                Event::Fees(fees) => {
                    self.view.fees = Some(fees);
                    self.view.refreshed_at = Some(Instant::now());
                }
                Event::BlobFee(fee) => {
                    let hold = fee.err();
                    if let (Some(err), None) = (&hold, &self.view.blob_hold) {
                        tracing::warn!(%err, "relayer: results whose inputs go in blobs wait");
                    }
                    self.view.blob_hold = hold;
                }
                Event::Completed { id, tx, block } => self.completed(id, tx, block),
                Event::Skipped { id, tx, reason } => self.skipped(id, tx, reason),
                Event::Counts { sender, head, latest, pending, known, balance } => {
                    if let Some(lane) = self.senders.get_mut(sender) {
                        lane.observe(head, latest, pending, known);
                        lane.balance = Some(balance);
                    }
                }
                Event::Receipt { sender, nonce, read, receipt } => self.receipt(sender, nonce, read, receipt),
                Event::LaneStart(consumer, next) => self.lanes.start(consumer, next),
                Event::State { id, state } => self.state(id, state),
                Event::Learned { key, estimate, calldata, item_bytes } => {
                    self.book.learn(key, estimate, &calldata, item_bytes);
                }
                Event::Failed { id, reason } => self.failed(id, reason),
                Event::Sent { sender, nonce, tx, replaced } => self.sent(sender, nonce, *tx, replaced),
                Event::SendRefused { sender, jobs, reason, nonce_too_low } => {
                    if nonce_too_low {
                        if let Some(lane) = self.senders.get_mut(sender) {
                            lane.resync();
                        }
                    } else if !jobs.is_empty() {
                        // Out of funds, say: an operator's problem, not the
                        // jobs'; they wait, nothing is counted.
                        self.backoff.failed();
                    }
                    tracing::warn!(jobs = jobs.len(), %reason, "relayer: the node refused a settlement transaction");
                }
                Event::AtCeiling { sender, nonce } => {
                    if self.warned_at_ceiling.insert((sender, nonce)) {
                        tracing::warn!(sender, nonce, "relayer: a stuck transaction is at the fee ceiling (chain.max_fee_per_gas_wei); not replaced");
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
        self.gauges();
    }

    fn gauges(&mut self) {
        let engine = &self.setup.metrics.engine;
        let in_flight: usize = self.senders.iter().map(Sender::in_flight).sum();
        engine.relay_in_flight.store(in_flight as u64, Ordering::Relaxed);
        engine.relay_backlog.store(self.jobs.len() as u64, Ordering::Relaxed);
        engine.relay_blocked_consumers.store(self.lanes.blocked() as u64, Ordering::Relaxed);
        let lowest = self.senders.iter().filter_map(|sender| sender.balance).min();
        if let Some(lowest) = lowest {
            engine.relay_balance_gwei.store(gwei(lowest), Ordering::Relaxed);
            // A full batch at the current fees.
            let batch_gas = io::batch_gas(&self.config, self.view.block_gas_limit.unwrap_or(30_000_000));
            let per_batch = match self.view.fees {
                Some(Ok(fees)) => fees.max_cost(batch_gas),
                _ => 0,
            };
            let needed = U256::from(per_batch) * U256::from(self.config.low_balance_batches);
            let low = per_batch > 0 && lowest < needed;
            engine.relay_low_balance.store(u64::from(low), Ordering::Relaxed);
            if low && !self.warned_low_balance {
                tracing::warn!(balance_wei = %lowest, needed_wei = %needed, "relayer balance covers fewer than chain.low_balance_batches batches; fund it");
            }
            self.warned_low_balance = low;
        }
    }

    /// A transaction (or a new version of one) is out.
    fn sent(&mut self, sender: usize, nonce: u64, tx: Tx, replaced: bool) {
        let engine = &self.setup.metrics.engine;
        let hash = tx.hashes.last().copied().unwrap_or_default();
        let jobs = match self.senders[sender].tx(nonce) {
            Some(out) => out.jobs.clone(),
            None => tx.jobs.clone(),
        };
        if replaced {
            engine.relay_replacements.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%hash, nonce, jobs = jobs.len(), "replaced a stuck settlement transaction with higher fees");
        } else if self.senders[sender].tx(nonce).is_none() {
            engine.relay_transactions.fetch_add(1, Ordering::Relaxed);
            engine.relay_batched_results.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        }
        self.senders[sender].sent(nonce, tx);
        for id in jobs {
            let Some(job) = self.jobs.get_mut(&id) else { continue };
            if !job.hashes.contains(&hash) {
                job.hashes.push(hash);
            }
            if !matches!(job.phase, Phase::InFlight { .. }) {
                job.phase = Phase::InFlight { sender, nonce };
                job.solo = false;
                self.log(id, Settlement::Submitted { tx_hash: hash.0 });
            }
        }
    }

    /// The job leaves the relayer, settled: `step` is `Confirmed`,
    /// `AlreadySettled` or `Cancelled`.
    fn finish(&mut self, id: JobId, step: Settlement) {
        let Some(job) = self.jobs.remove(&id) else { return };
        if let Phase::InFlight { sender, nonce } = job.phase {
            self.senders[sender].resolve(nonce, id);
        }
        let engine = &self.setup.metrics.engine;
        let counter = match &step {
            Settlement::Confirmed { .. } => &engine.relayed,
            Settlement::AlreadySettled { .. } => &engine.already_settled,
            _ => &engine.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(job = %id, ?step, "settled");
        if let Some(ended) = job.ended {
            let _ = ended.send(step.clone());
        }
        self.log(id, step);
        if job.spec.is_ordered() {
            self.lanes.settled(job.spec.consumer, job.spec.nonce);
        }
    }

    /// Back to the queue, nothing counted.
    fn again(&mut self, id: JobId) {
        self.enqueue(id, Instant::now());
    }

    /// Queues a job to be sent, not before `not_before`.
    fn enqueue(&mut self, id: JobId, not_before: Instant) {
        if let Some(job) = self.jobs.get_mut(&id) {
            job.phase = Phase::Ready(not_before);
            job.queued_at = Instant::now();
            self.queue.push_back(id);
        }
    }

    fn failed(&mut self, id: JobId, reason: String) {
        let engine = &self.setup.metrics.engine;
        engine.relay_failures.fetch_add(1, Ordering::Relaxed);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        if let Phase::InFlight { sender, nonce } = job.phase {
            self.senders[sender].resolve(nonce, id);
        }
        job.attempts += 1;
        tracing::warn!(job = %id, attempt = job.attempts, %reason, "result submission failed");
        if job.attempts < self.config.max_relay_attempts {
            // 1 s, 2 s, 4 s … between attempts, at most 30 s.
            let wait = Duration::from_secs(1 << job.attempts.min(5).saturating_sub(1)).min(Duration::from_secs(30));
            self.enqueue(id, Instant::now() + wait);
            return;
        }
        let attempts = job.attempts;
        let Some(job) = self.jobs.remove(&id) else { return };
        engine.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.actor.failed();
        tracing::error!(job = %id, attempts, %reason, "dead-lettered; `coprocessor job retry` pushes it again");
        let step = Settlement::DeadLettered(DeadLetter { attempts, reason });
        if let Some(ended) = job.ended {
            let _ = ended.send(step.clone());
        }
        self.log(id, step);
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
        let idle = self.jobs.is_empty() && self.senders.iter().all(|sender| sender.in_flight() == 0);
        if idle && self.view.head.is_some() {
            return;
        }
        let plan = self.plan();
        self.in_round = true;
        let chain = self.setup.chain.clone();
        ctx.spawn(io::round(chain, plan).into_actor(self).map(|events, this, _| {
            this.in_round = false;
            this.apply(events);
        }));
    }

    /// Why job `id`, held here and not sent, waits on a fee ceiling.
    fn waiting(&self, id: &JobId) -> Option<String> {
        let job = self.jobs.get(id)?;
        if !matches!(job.phase, Phase::Ready(_)) {
            return None;
        }
        let blob_hold = job.item.blobs.as_ref().and(self.view.blob_hold.as_ref());
        match (blob_hold, &self.view.fees) {
            (Some(err), _) | (None, Some(Err(err))) => Some(err.to_string()),
            _ => None,
        }
    }

    fn retry(&mut self, id: JobId, ended: Option<Ended>) -> Result<(), RetryError> {
        let store = &self.setup.store;
        let entry = store.job(&id)?.ok_or(RetryError::Unknown(id))?;
        if entry.status != Status::DeadLettered {
            return Err(RetryError::NotDeadLettered { id, status: entry.status });
        }
        let (spec, result) = store.executed(&entry)?.ok_or(RetryError::Unknown(id))?;
        self.log(id, Settlement::Retried);
        tracing::info!(job = %id, "retrying a dead-lettered job");
        self.add(Arc::new(spec), &result, None, ended);
        Ok(())
    }
}

/// The reason `submitResults` gives an item it had no gas left for.
const BATCH_OUT_OF_GAS: &str = "JobManager.submitResults: batch out of gas";
/// The reason `submitResults` gives an item that used up its share.
const ITEM_OUT_OF_GAS: &str = "JobManager.submitResults: item ran out of gas";

fn gwei(wei: U256) -> u64 {
    u64::try_from(wei / U256::from(1_000_000_000u64)).unwrap_or(u64::MAX)
}

fn poll_interval(config: &config::Chain) -> Duration {
    Duration::from_millis(config.poll_interval_ms)
}

impl Actor for Relayer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let keys: Vec<Address> = self.senders.iter().map(|sender| sender.address).collect();
        tracing::info!(relayers = ?keys, job_manager = %self.setup.chain.job_manager(), "relayer started");
        ctx.run_interval(poll_interval(&self.config), |this, ctx| this.round(ctx));
    }
}
