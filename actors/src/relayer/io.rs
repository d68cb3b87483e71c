//! One round of the relayer's chain I/O. The actor hands over a [`Plan`]
//! (copies of its senders and gas book: its own state never changes across
//! an `await`) and applies the [`Event`]s that come back, in order.
//!
//! A round, against the head block it reads first:
//! 1. the JobManager's `JobCompleted` and `ResultSkipped` events from the
//!    event cursor up to `confirmations` deep (one `eth_getLogs`);
//! 2. fees (`eth_feeHistory`) and each key's mined and pending counts and
//!    balance, once per new head;
//! 3. one receipt per mined transaction whose block the events now cover
//!    (fees paid, and a verdict for any job it did not settle);
//! 4. the onchain state of the jobs to send and of those awaiting a
//!    verdict, in one `getJobStatuses` call;
//! 5. a simulation only where one must be: the first result of a kind
//!    (to learn its gas) and a job whose transaction reverted (to learn
//!    why);
//! 6. the sends: dropped transactions again, stuck ones replaced with
//!    higher fees, then the new batches, on nonces assigned locally, each
//!    key's in nonce order. None waits for another to be mined.

use super::batch::{Batch, Item, Packing};
use super::fees::{FeeError, FeePolicy, Fees};
use super::gas::{GasBook, GasKey};
use super::senders::{Resend, Sender, Tx};
use crate::chain::{job_state, Chain, ChainError};
use crate::job::JobId;
use crate::protocol::bindings::{IBatchSettlement, IJobManager};
use alloy::eips::{BlockId, BlockNumberOrTag, Encodable2718};
use alloy::network::{Ethereum, NetworkTransactionBuilder, ReceiptResponse, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::SolEvent;
use std::collections::{HashMap, HashSet};

/// What a round should do.
#[derive(Debug)]
pub(super) struct Plan {
    /// The chain ID, once known.
    pub(super) chain_id: Option<u64>,
    /// The block gas limit, once known (with which keys settle onchain jobs).
    pub(super) block_gas_limit: Option<u64>,
    /// The next block whose events to read (`None`: start at the head).
    pub(super) cursor: Option<u64>,
    /// The head the last round read.
    pub(super) last_head: Option<u64>,
    /// The fees last read.
    pub(super) fees: Option<Result<Fees, FeeError>>,
    /// Whether fees and balances are due to be read again (on a new head,
    /// at most once a [`super::REFRESH_EVERY`]: a node that mines a block
    /// per transaction would otherwise spend a third of its time on them).
    pub(super) refresh: bool,
    /// Copies of the relayer's keys and their transactions.
    pub(super) senders: Vec<Sender>,
    /// Consumers whose ordered lane needs its first nonce.
    pub(super) start_lanes: Vec<Address>,
    /// Jobs awaiting a verdict: the state tells, or a simulation (`true`).
    pub(super) verdicts: Vec<(JobId, bool, Item)>,
    /// Jobs to send, in order.
    pub(super) ready: Vec<Item>,
    /// Of those, the ones that go alone with the whole per-item share.
    pub(super) solo: HashSet<JobId>,
    /// What settlements cost so far.
    pub(super) book: GasBook,
    /// Settings.
    pub(super) settings: Settings,
}

/// The `[chain]` settings a round needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) confirmations: u64,
    pub(super) max_log_range: u64,
    pub(super) max_in_flight: usize,
    pub(super) replace_after_blocks: u64,
    pub(super) max_batch_items: usize,
    pub(super) max_batch_gas: u64,
    pub(super) max_gas_per_result: u64,
    pub(super) policy: FeePolicy,
}

/// What a round found or did, for the actor to apply in order.
#[derive(Debug, Clone)]
pub(super) enum Event {
    /// The chain ID.
    ChainId(u64),
    /// The block gas limit, and which keys may settle onchain jobs.
    Setup { block_gas_limit: u64, onchain: Vec<bool> },
    /// The head block of this round.
    Head(u64),
    /// A job's result was accepted (`JobCompleted`) by transaction `tx`.
    Completed { id: JobId, tx: B256, block: u64 },
    /// A batch item was not settled (`ResultSkipped`).
    Skipped { id: JobId, tx: B256, reason: String },
    /// The events are read up to this block (exclusive).
    Cursor(u64),
    /// The fees to offer at this head.
    Fees(Result<Fees, FeeError>),
    /// A key's mined transaction count at `head` (and pending count, when
    /// read), whether the node knows its first unmined transaction, and its
    /// balance.
    Counts { sender: usize, head: u64, latest: u64, pending: Option<u64>, known: bool, balance: U256 },
    /// A mined transaction whose events are all read, with its receipt if
    /// it was `read` (`None`: no version of it is known to the node any
    /// more, e.g. after a reorg).
    Receipt { sender: usize, nonce: u64, read: bool, receipt: Option<Mined> },
    /// An ordered lane's first nonce.
    LaneStart(Address, u64),
    /// A job's onchain state ([`job_state`]).
    State { id: JobId, state: u8 },
    /// The node's estimate for one result of a kind sent alone.
    Learned { key: GasKey, estimate: u64, calldata: Bytes, item_bytes: usize },
    /// A submission or simulation was refused: counts towards dead-lettering.
    Failed { id: JobId, reason: String },
    /// A transaction (or a new version of one) went out.
    Sent { sender: usize, nonce: u64, tx: Tx, replaced: bool },
    /// The node refused a send; its jobs go back, nothing counted.
    SendRefused { sender: usize, jobs: Vec<JobId>, reason: String, nonce_too_low: bool },
    /// The base fee is above the ceiling: nothing can be replaced.
    AtCeiling { sender: usize, nonce: u64 },
    /// The node is unreachable: back off.
    Unreachable(String),
}

/// What a mined transaction's receipt says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mined {
    /// The version that was mined.
    pub(super) tx: B256,
    /// Whether it succeeded.
    pub(super) success: bool,
    /// Gas used.
    pub(super) gas_used: u64,
    /// Wei paid per gas.
    pub(super) price: u128,
}

/// Runs one round; an unreachable node ends it early with
/// [`Event::Unreachable`] (what was done so far is reported).
pub(super) async fn round(chain: Chain, mut plan: Plan) -> Vec<Event> {
    let mut events = Vec::new();
    if let Err(err) = run(&chain, &mut plan, &mut events).await {
        events.push(Event::Unreachable(err.to_string()));
    }
    events
}

async fn run(chain: &Chain, plan: &mut Plan, events: &mut Vec<Event>) -> Result<(), ChainError> {
    let provider = chain.provider();
    let chain_id = match plan.chain_id {
        Some(id) => id,
        None => {
            let id = chain.chain_id().await?;
            events.push(Event::ChainId(id));
            id
        }
    };
    let block_gas_limit = match plan.block_gas_limit {
        Some(limit) => limit,
        None => setup(chain, plan, events).await?,
    };
    let head = chain.head().await?;
    events.push(Event::Head(head));
    let new_head = plan.last_head != Some(head);

    let cursor = read_events(chain, plan, head, events).await?;

    let refresh = new_head && plan.refresh;
    if refresh || plan.fees.is_none() {
        let fees = fees(chain, &plan.settings.policy).await?;
        if let Err(err) = &fees {
            tracing::warn!(%err, "relayer: fees above the ceiling; results wait");
        }
        plan.fees = Some(fees.clone());
        events.push(Event::Fees(fees));
    }
    for (index, sender) in plan.senders.iter_mut().enumerate() {
        let latest = chain.rpc(provider.get_transaction_count(sender.address).number(head)).await?;
        let pending = match sender.needs_pending() {
            true => Some(chain.rpc(provider.get_transaction_count(sender.address).pending()).await?),
            false => None,
        };
        let balance = match (refresh, sender.balance) {
            (false, Some(balance)) => balance,
            _ => chain.rpc(provider.get_balance(sender.address).number(head)).await?,
        };
        // The first unmined transaction: does the node still have it?
        sender.observe(head, latest, pending, true);
        let known = match sender.head_of_line().and_then(|(_, tx)| tx.hashes.last().copied()) {
            Some(hash) => chain.rpc(provider.get_transaction_by_hash(hash)).await?.is_some(),
            None => true,
        };
        sender.observe(head, latest, pending, known);
        events.push(Event::Counts { sender: index, head, latest, pending, known, balance });
    }
    // Receipts only where one must be read: a mined transaction that left a
    // job of it without an event (its verdict), and one a round for the
    // fee and gas figures.
    let resolved: HashSet<JobId> = events
        .iter()
        .filter_map(|event| match event {
            Event::Completed { id, .. } | Event::Skipped { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let mut sampled = false;
    for (index, sender) in plan.senders.iter().enumerate() {
        for nonce in sender.finished(cursor) {
            let Some(tx) = sender.tx(nonce) else { continue };
            let open = tx.jobs.iter().any(|id| !resolved.contains(id));
            if !open && sampled {
                events.push(Event::Receipt { sender: index, nonce, read: false, receipt: None });
                continue;
            }
            sampled = true;
            let receipt = receipt(chain, &tx.hashes).await?;
            events.push(Event::Receipt { sender: index, nonce, read: true, receipt });
        }
    }
    for consumer in std::mem::take(&mut plan.start_lanes) {
        let next = match chain.next_nonce(consumer).await {
            Ok(next) => next,
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::warn!(%consumer, %err, "getNextNonce failed; ordered relay starts at 0");
                0
            }
        };
        events.push(Event::LaneStart(consumer, next));
    }

    let sendable = check_states(chain, plan, events).await?;
    let sendable = learn(chain, plan, sendable, events).await?;
    let Some(Ok(fees)) = plan.fees else { return Ok(()) };
    let packing = Packing {
        max_items: plan.settings.max_batch_items,
        max_gas: batch_gas(&plan.settings, block_gas_limit),
        gas_per_item: plan.settings.max_gas_per_result,
    };
    send_all(chain, plan, chain_id, head, fees, packing, sendable, events).await
}

/// The block gas limit, and which keys the JobManager takes results of
/// onchain jobs from (its `relayer`, or one it authorized).
async fn setup(chain: &Chain, plan: &Plan, events: &mut Vec<Event>) -> Result<u64, ChainError> {
    let provider = chain.provider();
    let block = chain.rpc(provider.get_block_by_number(BlockNumberOrTag::Latest)).await?;
    let block_gas_limit = block.map(|block| block.header.gas_limit).unwrap_or(30_000_000);
    let manager = IJobManager::new(chain.job_manager(), provider);
    let relayer = chain.contract(manager.getRelayer().call()).await?;
    let batch = IBatchSettlement::new(chain.job_manager(), provider);
    let mut onchain = Vec::new();
    for sender in &plan.senders {
        let allowed = sender.address == relayer
            || match chain.contract(batch.isRelayer(sender.address).call()).await {
                Ok(allowed) => allowed,
                Err(err) if err.is_transient() => return Err(err),
                // A JobManager without our additions has one relayer.
                Err(_) => false,
            };
        if !allowed {
            tracing::warn!(key = %sender.address, %relayer, "relayer key not authorized onchain: it settles offchain jobs only");
        }
        onchain.push(allowed);
    }
    if !onchain.contains(&true) {
        // Nobody may settle onchain jobs: the first key sends them anyway,
        // so that each fails with the JobManager's reason and is
        // dead-lettered where an operator sees it, rather than waiting
        // silently.
        tracing::error!(%relayer, "no relayer key is the JobManager's relayer or authorized: onchain jobs will fail");
        if let Some(first) = onchain.first_mut() {
            *first = true;
        }
    }
    events.push(Event::Setup { block_gas_limit, onchain });
    Ok(block_gas_limit)
}

/// `JobCompleted` and `ResultSkipped` from the cursor to `confirmations`
/// deep; returns the new cursor.
async fn read_events(chain: &Chain, plan: &Plan, head: u64, events: &mut Vec<Event>) -> Result<u64, ChainError> {
    let deep = (head + 1).checked_sub(plan.settings.confirmations);
    let Some(cursor) = plan.cursor else {
        let start = deep.map_or(0, |deep| deep + 1);
        events.push(Event::Cursor(start));
        return Ok(start);
    };
    let Some(deep) = deep.filter(|deep| *deep >= cursor) else { return Ok(cursor) };
    let to = deep.min(cursor + plan.settings.max_log_range - 1);
    let filter = Filter::new()
        .address(chain.job_manager())
        .event_signature(vec![
            IJobManager::JobCompleted::SIGNATURE_HASH,
            IBatchSettlement::ResultSkipped::SIGNATURE_HASH,
        ])
        .from_block(cursor)
        .to_block(to);
    let logs = chain.rpc(chain.provider().get_logs(&filter)).await?;
    for log in logs {
        let (Some(tx), Some(block)) = (log.transaction_hash, log.block_number) else { continue };
        if let Ok(completed) = log.log_decode::<IJobManager::JobCompleted>() {
            events.push(Event::Completed { id: JobId(completed.inner.data.jobID.0), tx, block });
        } else if let Ok(skipped) = log.log_decode::<IBatchSettlement::ResultSkipped>() {
            let data = &skipped.inner.data;
            events.push(Event::Skipped { id: JobId(data.jobID.0), tx, reason: data.reason.clone() });
        }
    }
    events.push(Event::Cursor(to + 1));
    Ok(to + 1)
}

/// The fees to offer for the next block.
async fn fees(chain: &Chain, policy: &FeePolicy) -> Result<Result<Fees, FeeError>, ChainError> {
    let provider = chain.provider();
    let history = chain.rpc(provider.get_fee_history(5, BlockNumberOrTag::Latest, &[policy.percentile])).await?;
    let next_base_fee = history.base_fee_per_gas.last().copied().unwrap_or(0);
    let tips: Vec<u128> = history.reward.unwrap_or_default().iter().filter_map(|row| row.first().copied()).collect();
    let gas_price = if next_base_fee == 0 { chain.rpc(provider.get_gas_price()).await? } else { 0 };
    Ok(policy.fees(next_base_fee, &tips, gas_price))
}

/// The receipt of whichever version of a transaction was mined.
async fn receipt(chain: &Chain, hashes: &[B256]) -> Result<Option<Mined>, ChainError> {
    for hash in hashes.iter().rev() {
        if let Some(receipt) = chain.rpc(chain.provider().get_transaction_receipt(*hash)).await? {
            return Ok(Some(Mined {
                tx: *hash,
                success: receipt.status(),
                gas_used: receipt.gas_used(),
                price: receipt.effective_gas_price(),
            }));
        }
    }
    Ok(None)
}

/// Reads the state of the jobs to send and of those awaiting a verdict;
/// returns the jobs still to send: an offchain job unknown onchain, an
/// onchain one still pending.
async fn check_states(chain: &Chain, plan: &mut Plan, events: &mut Vec<Event>) -> Result<Vec<Item>, ChainError> {
    let ids: Vec<JobId> =
        plan.verdicts.iter().map(|(id, _, _)| *id).chain(plan.ready.iter().map(|item| item.id)).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let states = job_states(chain, &ids).await?;
    for (id, state) in ids.iter().zip(&states) {
        events.push(Event::State { id: *id, state: *state });
    }
    let states: HashMap<JobId, u8> = ids.into_iter().zip(states).collect();
    // A reverted transaction's job that is still open: simulate it alone
    // to learn why (the node's revert reason).
    for (id, simulate, item) in std::mem::take(&mut plan.verdicts) {
        let open = matches!(states.get(&id), Some(&job_state::NONE | &job_state::PENDING));
        if simulate && open {
            let from = plan.senders.iter().find(|sender| sender.onchain || !item.onchain()).map(|s| s.address);
            let reason = match simulate_alone(chain, &item, from).await {
                Ok(_) => "the result transaction reverted (a simulation now succeeds)".to_owned(),
                Err(ChainError::Refused(reason)) => reason,
                Err(err) => return Err(err),
            };
            events.push(Event::Failed { id, reason });
        }
    }
    Ok(std::mem::take(&mut plan.ready)
        .into_iter()
        .filter(|item| {
            let want = if item.onchain() { job_state::PENDING } else { job_state::NONE };
            states.get(&item.id) == Some(&want)
        })
        .collect())
}

/// Job states in one call (`getJobStatuses`), or one `getJobMetadata` each
/// on a JobManager without it.
async fn job_states(chain: &Chain, ids: &[JobId]) -> Result<Vec<u8>, ChainError> {
    let batch = IBatchSettlement::new(chain.job_manager(), chain.provider());
    let all: Vec<B256> = ids.iter().map(|id| id.to_b256()).collect();
    let mut states = Vec::with_capacity(ids.len());
    for chunk in all.chunks(1024) {
        match chain.contract(batch.getJobStatuses(chunk.to_vec()).call()).await {
            Ok(answer) if answer.len() == chunk.len() => states.extend(answer),
            Err(err) if err.is_transient() => return Err(err),
            _ => {
                for id in chunk {
                    states.push(chain.job_state(*id).await?);
                }
            }
        }
    }
    Ok(states)
}

/// `eth_estimateGas` of one result through its single-result call.
async fn simulate_alone(chain: &Chain, item: &Item, from: Option<Address>) -> Result<u64, ChainError> {
    let mut request = TransactionRequest::default().with_to(chain.job_manager()).with_input(item.single_call());
    if let Some(from) = from {
        request = request.with_from(from);
    }
    // Against `latest`: the pending block makes some nodes re-run their
    // whole mempool for each estimate.
    chain.rpc(chain.provider().estimate_gas(request).block(BlockId::latest())).await
}

/// Learns the gas of each kind of result not seen yet, by simulating one of
/// it; returns the jobs that can be sent now.
async fn learn(
    chain: &Chain,
    plan: &mut Plan,
    sendable: Vec<Item>,
    events: &mut Vec<Event>,
) -> Result<Vec<Item>, ChainError> {
    let mut tried: HashSet<GasKey> = HashSet::new();
    let mut ready = Vec::with_capacity(sendable.len());
    for item in sendable {
        if plan.book.knows(&item.key) {
            ready.push(item);
            continue;
        }
        if !tried.insert(item.key) {
            continue; // the next round, once its kind is learned
        }
        let from = plan.senders.iter().find(|sender| sender.onchain || !item.onchain()).map(|s| s.address);
        match simulate_alone(chain, &item, from).await {
            Ok(estimate) => {
                let calldata = item.single_call();
                plan.book.learn(item.key, estimate, &calldata, item.bytes());
                events.push(Event::Learned { key: item.key, estimate, calldata, item_bytes: item.bytes() });
                ready.push(item);
            }
            Err(ChainError::Refused(reason)) => events.push(Event::Failed { id: item.id, reason }),
            Err(err) => return Err(err),
        }
    }
    Ok(ready)
}

/// The gas one transaction may use.
pub(super) fn batch_gas(settings: &Settings, block_gas_limit: u64) -> u64 {
    let cap = block_gas_limit / 2;
    match settings.max_batch_gas {
        0 => (block_gas_limit / 10).max(settings.max_gas_per_result * 2).min(cap),
        configured => configured.min(cap),
    }
}

/// Resends, replacements, then new batches, each key's in nonce order.
#[allow(clippy::too_many_arguments)]
async fn send_all(
    chain: &Chain,
    plan: &Plan,
    chain_id: u64,
    head: u64,
    fees: Fees,
    packing: Packing,
    items: Vec<Item>,
    events: &mut Vec<Event>,
) -> Result<(), ChainError> {
    let mut outgoing: Vec<Vec<Outgoing>> = plan.senders.iter().map(|_| Vec::new()).collect();
    for (index, sender) in plan.senders.iter().enumerate() {
        for resend in sender.resends(head, plan.settings.replace_after_blocks) {
            let (nonce, bump) = match resend {
                Resend::Dropped(nonce) => (nonce, false),
                Resend::Stuck(nonce) => (nonce, true),
            };
            let Some(tx) = sender.tx(nonce) else { continue };
            let fees = if bump {
                match plan.settings.policy.bump(tx.fees, fees) {
                    Some(bumped) => bumped,
                    None => {
                        events.push(Event::AtCeiling { sender: index, nonce });
                        continue;
                    }
                }
            } else {
                tx.fees
            };
            let batch = Batch {
                jobs: tx.jobs.clone(),
                calldata: tx.calldata.clone(),
                gas: tx.gas,
                share: tx.share,
                single: tx.single,
            };
            let raw = (!bump).then(|| tx.raw.clone());
            outgoing[index].push(Outgoing { nonce, batch, fees, replaced: bump, raw });
        }
    }
    // New batches: onchain results only from keys the JobManager takes them
    // from; each batch to the key with the most room.
    let (solo, packed): (Vec<&Item>, Vec<&Item>) = items.iter().partition(|item| plan.solo.contains(&item.id));
    let mixed_ok = plan.senders.iter().all(|sender| sender.onchain);
    let mut batches: Vec<(bool, Batch)> =
        solo.iter().map(|item| (item.onchain(), packing.solo(item, &plan.book))).collect();
    if mixed_ok {
        let any_onchain = |batch: &Batch| batch.jobs.iter().any(|id| items.iter().any(|i| i.id == *id && i.onchain()));
        batches.extend(packing.pack(&packed, &plan.book).into_iter().map(|batch| (any_onchain(&batch), batch)));
    } else {
        let (onchain, offchain): (Vec<&Item>, Vec<&Item>) = packed.iter().partition(|item| item.onchain());
        batches.extend(packing.pack(&onchain, &plan.book).into_iter().map(|batch| (true, batch)));
        batches.extend(packing.pack(&offchain, &plan.book).into_iter().map(|batch| (false, batch)));
    }
    let mut room: Vec<usize> = plan
        .senders
        .iter()
        .zip(&outgoing)
        .map(|(sender, out)| {
            let replacing = out.iter().filter(|o| sender.tx(o.nonce).is_some()).count();
            plan.settings.max_in_flight.saturating_sub(sender.in_flight().max(replacing))
        })
        .collect();
    let mut assigned: Vec<Vec<Batch>> = plan.senders.iter().map(|_| Vec::new()).collect();
    for (onchain, batch) in batches {
        let best = (0..plan.senders.len())
            .filter(|&index| {
                plan.senders[index].ready() && room[index] > 0 && (!onchain || plan.senders[index].onchain)
            })
            .max_by_key(|&index| room[index]);
        let Some(index) = best else { continue };
        room[index] -= 1;
        assigned[index].push(batch);
    }
    for (index, batches) in assigned.into_iter().enumerate() {
        let nonces = plan.senders[index].free_nonces(batches.len());
        for (nonce, batch) in nonces.into_iter().zip(batches) {
            outgoing[index].push(Outgoing { nonce, batch, fees, replaced: false, raw: None });
        }
        outgoing[index].sort_by_key(|out| out.nonce);
    }
    for (index, (sender, out)) in plan.senders.iter().zip(outgoing).enumerate() {
        let (sent, err) = send_in_order(chain, sender, index, chain_id, head, out).await;
        events.extend(sent);
        if let Some(err) = err {
            return Err(err);
        }
    }
    Ok(())
}

/// A transaction to send.
struct Outgoing {
    nonce: u64,
    batch: Batch,
    fees: Fees,
    replaced: bool,
    /// The signed bytes to send again as they are (a dropped transaction).
    raw: Option<Bytes>,
}

/// Signs and sends one key's transactions in nonce order; stops at the
/// first refusal (a later nonce would wait behind the gap).
async fn send_in_order(
    chain: &Chain,
    sender: &Sender,
    index: usize,
    chain_id: u64,
    head: u64,
    outgoing: Vec<Outgoing>,
) -> (Vec<Event>, Option<ChainError>) {
    let mut events = Vec::new();
    for out in outgoing {
        let (hash, raw) = match out.raw {
            Some(raw) => (sender.tx(out.nonce).and_then(|tx| tx.hashes.last().copied()).unwrap_or_default(), raw),
            None => match sign(chain, sender, chain_id, &out).await {
                Ok(signed) => signed,
                Err(reason) => {
                    events.push(Event::SendRefused {
                        sender: index,
                        jobs: out.batch.jobs,
                        reason,
                        nonce_too_low: false,
                    });
                    break;
                }
            },
        };
        let tx = Tx {
            carried: out.batch.jobs.len(),
            jobs: out.batch.jobs.clone(),
            single: out.batch.single,
            share: out.batch.share,
            calldata: out.batch.calldata,
            gas: out.batch.gas,
            fees: out.fees,
            hashes: vec![hash],
            raw: raw.clone(),
            sent_head: head,
            mined_at: None,
        };
        match chain.rpc(chain.provider().send_raw_transaction(&raw)).await {
            Ok(_) => events.push(Event::Sent { sender: index, nonce: out.nonce, tx, replaced: out.replaced }),
            Err(ChainError::Refused(reason)) if is_known(&reason) => {
                events.push(Event::Sent { sender: index, nonce: out.nonce, tx, replaced: out.replaced });
            }
            Err(ChainError::Refused(reason)) => {
                let nonce_too_low = reason.to_lowercase().contains("nonce too low");
                tracing::warn!(key = %sender.address, nonce = out.nonce, %reason, "settlement transaction refused");
                let jobs = if sender.tx(out.nonce).is_some() { Vec::new() } else { out.batch.jobs };
                events.push(Event::SendRefused { sender: index, jobs, reason, nonce_too_low });
                break;
            }
            Err(err) => {
                // The node may have taken it: track it; a gap shows if not.
                events.push(Event::Sent { sender: index, nonce: out.nonce, tx, replaced: out.replaced });
                return (events, Some(err));
            }
        }
    }
    (events, None)
}

/// A node's answer for a transaction it already has.
fn is_known(reason: &str) -> bool {
    let reason = reason.to_lowercase();
    reason.contains("already known") || reason.contains("known transaction") || reason.contains("already imported")
}

/// Signs `out` with the key: EIP-1559, or legacy without a base fee.
async fn sign(chain: &Chain, sender: &Sender, chain_id: u64, out: &Outgoing) -> Result<(B256, Bytes), String> {
    let request = TransactionRequest::default()
        .with_from(sender.address)
        .with_to(chain.job_manager())
        .with_input(out.batch.calldata.clone())
        .with_nonce(out.nonce)
        .with_chain_id(chain_id)
        .with_gas_limit(out.batch.gas);
    let request = match out.fees {
        Fees::Eip1559 { max_fee, priority } => {
            request.with_max_fee_per_gas(max_fee).with_max_priority_fee_per_gas(priority)
        }
        Fees::Legacy { gas_price } => request.with_gas_price(gas_price),
    };
    let envelope = <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(request, &sender.wallet)
        .await
        .map_err(|err| format!("signing the transaction: {err}"))?;
    Ok((*envelope.tx_hash(), envelope.encoded_2718().into()))
}
