//! One round of the relayer's chain I/O. The actor hands over a [`Plan`]
//! (copies of its senders and gas book: its own state never changes across
//! an `await`) and applies the [`Event`]s that come back, in order.
//!
//! A round, against the head block it reads first:
//! 1. the JobManager's `JobCompleted` and `ResultSkipped` events from the
//!    event cursor up to `confirmations` deep (one `eth_getLogs`);
//! 2. each key's mined count at that block and whether the node still
//!    knows its first unmined transaction; fees (`eth_feeHistory`) and
//!    balances on a new head, at most once a second;
//! 3. receipts only where one must be read: a mined transaction that left
//!    a job without an event (its verdict), and one a round as the fee and
//!    gas sample;
//! 4. the onchain state of the jobs to send and of those awaiting a
//!    verdict, in one `getJobStatuses` call;
//! 5. a simulation only where one must be: the first result of a kind
//!    (to learn its gas) and a job whose transaction reverted (to learn
//!    why);
//! 6. the sends ([`super::send`]).

use super::batch::{Item, Packing};
use super::fees::{FeeError, FeePolicy, Fees};
use super::gas::GasKey;
use super::plan::{Event, Mined, Plan};
use super::senders::Sender;
use crate::chain::{job_state, Chain, ChainError};
use crate::config;
use crate::job::JobId;
use crate::protocol::bindings::{IBatchSettlement, IJobManager};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::{ReceiptResponse, TransactionBuilder};
use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::SolEvent;
use std::collections::{HashMap, HashSet};

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
        let fees = fees(chain, &FeePolicy::new(&plan.config)).await?;
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
        let known = match sender.head_of_line_at(latest).and_then(|(_, tx)| tx.hashes.last().copied()) {
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
    // The blob fee, read only when there are blobs to send or out.
    let blob_fee = match sendable.iter().any(|item| item.blobs.is_some())
        || plan.senders.iter().any(|sender| sender.carries_blobs())
    {
        true => {
            let base = chain.rpc(provider.get_blob_base_fee()).await?;
            let fee = super::fees::blob_fee(base, u128::from(plan.config.max_fee_per_blob_gas_wei));
            events.push(Event::BlobFee(fee.clone()));
            Some(fee)
        }
        false => None,
    };
    let packing = Packing {
        max_items: plan.config.max_batch_items,
        max_gas: batch_gas(&plan.config, block_gas_limit),
        gas_per_item: plan.config.max_gas_per_result,
    };
    super::send::send_all(chain, plan, chain_id, head, fees, blob_fee, packing, sendable, events).await
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
    let deep = (head + 1).checked_sub(plan.config.confirmations);
    let Some(cursor) = plan.cursor else {
        let start = deep.map_or(0, |deep| deep + 1);
        events.push(Event::Cursor(start));
        return Ok(start);
    };
    let Some(deep) = deep.filter(|deep| *deep >= cursor) else { return Ok(cursor) };
    let to = deep.min(cursor + plan.config.max_log_range - 1);
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
    let states = chain.job_states(&ids.iter().map(|id| id.to_b256()).collect::<Vec<_>>()).await?;
    for (id, state) in ids.iter().zip(&states) {
        events.push(Event::State { id: *id, state: *state });
    }
    let states: HashMap<JobId, u8> = ids.into_iter().zip(states).collect();
    // A reverted transaction's job that is still open: simulate it alone
    // to learn why (the node's revert reason).
    for (id, simulate, item) in std::mem::take(&mut plan.verdicts) {
        let open = matches!(states.get(&id), Some(&job_state::NONE | &job_state::PENDING));
        if simulate && open {
            let reason = match simulate_alone(chain, &plan.senders, &item).await {
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

/// `eth_estimateGas` of one result through its single-result call, from a
/// key that may send it.
async fn simulate_alone(chain: &Chain, senders: &[Sender], item: &Item) -> Result<u64, ChainError> {
    let mut request = TransactionRequest::default().with_to(chain.job_manager()).with_input(item.single_call());
    // The blobs' hashes, which `blobhash(i)` answers with in the call.
    let hashes = item.blob_hashes();
    if !hashes.is_empty() {
        request.blob_versioned_hashes = Some(hashes);
    }
    if let Some(sender) = senders.iter().find(|sender| sender.onchain || !item.onchain()) {
        request = request.with_from(sender.address);
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
        // A result with blobs is not simulated: nodes do not all answer
        // `blobhash` in a call (hardhat's is 0), so its check would fail.
        // It goes alone with the whole per-result gas, and its receipt
        // teaches what its kind costs.
        if plan.book.knows(&item.key) || item.blobs.is_some() {
            ready.push(item);
            continue;
        }
        if !tried.insert(item.key) {
            continue; // the next round, once its kind is learned
        }
        match simulate_alone(chain, &plan.senders, &item).await {
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
pub(super) fn batch_gas(config: &config::Chain, block_gas_limit: u64) -> u64 {
    let cap = block_gas_limit / 2;
    match config.max_batch_gas {
        0 => (block_gas_limit / 10).max(config.max_gas_per_result * 2).min(cap),
        configured => configured.min(cap),
    }
}
