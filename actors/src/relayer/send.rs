//! One round of chain I/O for the relayer: check the transactions in
//! flight, then send the ones planned. The actor plans a round and applies
//! its [`Event`]s; this module only talks to the node, so the actor's
//! state never changes across an `await`.

use crate::chain::{job_state, Chain, ChainError};
use crate::job::JobId;
use alloy::eips::Encodable2718;
use alloy::network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;

/// What a round should do.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The chain ID, once known.
    pub(super) chain_id: Option<u64>,
    /// The relayer account's next nonce, if the actor trusts its count.
    pub(super) nonce: Option<u64>,
    /// Consumers whose ordered lane needs its first nonce.
    pub(super) start_lanes: Vec<Address>,
    /// Transactions in flight: the job, its transaction, and whether it
    /// is past the drop timeout.
    pub(super) check: Vec<(JobId, B256, bool)>,
    /// Jobs to send, with their calldata.
    pub(super) send: Vec<(JobId, Bytes)>,
}

/// How a job left the relay for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// Its result is onchain, `confirmations` deep. The hash is zero when
    /// the chain says the job is completed but not by a transaction this
    /// round knows of (it landed before a crash, say).
    Confirmed { tx: B256, block: u64 },
    /// The chain says the job was cancelled.
    Cancelled,
}

/// What a round found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// The chain ID.
    ChainId(u64),
    /// The relayer's next nonce (`None`: re-read it before sending).
    Nonce(Option<u64>),
    /// An ordered lane's first nonce.
    LaneStart(Address, u64),
    /// A result transaction went out.
    Sent { id: JobId, tx: B256 },
    /// A job settled.
    Settled { id: JobId, how: Settled },
    /// A submission failed (counts towards the dead-letter limit).
    Failed { id: JobId, reason: String },
    /// Not sent, or dropped by the node: send again, nothing counted.
    Again { id: JobId },
    /// The node is unreachable: back off.
    Unreachable(String),
}

/// The relayer's account and where results go.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) chain: Chain,
    pub(super) wallet: EthereumWallet,
    pub(super) address: Address,
    pub(super) confirmations: u64,
}

/// Runs one round. Every planned send ends in exactly one event about it.
pub(super) async fn round(account: Account, plan: Plan) -> Vec<Event> {
    let mut events = Vec::new();
    let mut sent = 0;
    if let Err(err) = run(&account, &plan, &mut events, &mut sent).await {
        events.push(Event::Unreachable(err.to_string()));
    }
    for (id, _) in &plan.send[sent..] {
        events.push(Event::Again { id: *id });
    }
    events
}

async fn run(account: &Account, plan: &Plan, events: &mut Vec<Event>, sent: &mut usize) -> Result<(), ChainError> {
    let chain = &account.chain;
    let chain_id = match plan.chain_id {
        Some(id) => id,
        None => {
            let id = chain.chain_id().await?;
            events.push(Event::ChainId(id));
            id
        }
    };
    for consumer in &plan.start_lanes {
        let next = match chain.next_nonce(*consumer).await {
            Ok(next) => next,
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                tracing::warn!(consumer = %*consumer, %err, "getNextNonce failed; ordered relay starts at 0");
                0
            }
        };
        events.push(Event::LaneStart(*consumer, next));
    }
    if !plan.check.is_empty() {
        check(account, plan, events).await?;
    }
    if !plan.send.is_empty() {
        send(account, plan, chain_id, events, sent).await?;
    }
    Ok(())
}

async fn check(account: &Account, plan: &Plan, events: &mut Vec<Event>) -> Result<(), ChainError> {
    let chain = &account.chain;
    let head = chain.head().await?;
    for &(id, tx, overdue) in &plan.check {
        match chain.rpc(chain.provider().get_transaction_receipt(tx)).await? {
            Some(receipt) if receipt.status() => {
                let block = receipt.block_number.unwrap_or(head);
                if head + 1 >= block + account.confirmations {
                    events.push(Event::Settled { id, how: Settled::Confirmed { tx, block } });
                }
            }
            Some(_) => events.push(after_refusal(chain, id, "result transaction reverted".into()).await?),
            None => {
                let known = chain.rpc(chain.provider().get_transaction_by_hash(tx)).await?.is_some();
                if !known || overdue {
                    tracing::warn!(job = %id, %tx, known, "result transaction dropped; sending again");
                    events.push(Event::Nonce(None));
                    events.push(Event::Again { id });
                }
            }
        }
    }
    Ok(())
}

async fn send(
    account: &Account,
    plan: &Plan,
    chain_id: u64,
    events: &mut Vec<Event>,
    sent: &mut usize,
) -> Result<(), ChainError> {
    let chain = &account.chain;
    let provider = chain.provider();
    let mut nonce = match plan.nonce {
        Some(nonce) => nonce,
        None => chain.rpc(provider.get_transaction_count(account.address).pending()).await?,
    };
    // Twice the node's price: a result should not wait for a cheaper block.
    let gas_price = chain.rpc(provider.get_gas_price()).await?.saturating_mul(2);
    for (id, calldata) in &plan.send {
        let request = TransactionRequest::default()
            .with_from(account.address)
            .with_to(chain.job_manager())
            .with_input(calldata.clone());
        // Estimating first turns a revert into an answer, not a paid failure.
        // Against `latest`: the pending block makes the node re-run its whole
        // mempool for each estimate (10 ms at 400 pending on hardhat).
        let estimate = provider.estimate_gas(request.clone()).block(alloy::eips::BlockId::latest());
        let gas = match chain.rpc(estimate).await {
            Ok(gas) => gas,
            Err(ChainError::Refused(reason)) => {
                events.push(after_refusal(chain, *id, reason).await?);
                *sent += 1;
                continue;
            }
            Err(err) => return Err(err),
        };
        let request = request
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_gas_limit(gas.saturating_mul(6) / 5 + 10_000)
            .with_gas_price(gas_price);
        let envelope =
            match <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(request, &account.wallet).await {
                Ok(envelope) => envelope,
                Err(err) => {
                    events.push(Event::Failed { id: *id, reason: format!("signing the transaction: {err}") });
                    *sent += 1;
                    continue;
                }
            };
        let tx = *envelope.tx_hash();
        match chain.rpc(provider.send_raw_transaction(&envelope.encoded_2718())).await {
            Ok(_) => {
                events.push(Event::Sent { id: *id, tx });
                nonce += 1;
                *sent += 1;
            }
            Err(ChainError::Refused(reason)) if reason.to_lowercase().contains("nonce") => {
                tracing::warn!(%reason, "relayer nonce out of step; re-reading it");
                events.push(Event::Nonce(None));
                return Ok(());
            }
            Err(ChainError::Refused(reason)) => {
                events.push(Event::Failed { id: *id, reason });
                *sent += 1;
            }
            Err(err) => {
                // The node may have taken it: track the hash, re-read the nonce.
                events.push(Event::Sent { id: *id, tx });
                events.push(Event::Nonce(None));
                *sent += 1;
                return Err(err);
            }
        }
    }
    events.push(Event::Nonce(Some(nonce)));
    Ok(())
}

/// The node refused a job's submission: the chain's view of the job
/// decides whether that settles it or counts as a failure.
async fn after_refusal(chain: &Chain, id: JobId, reason: String) -> Result<Event, ChainError> {
    Ok(match chain.job_state(id.to_b256()).await? {
        job_state::COMPLETED => Event::Settled { id, how: Settled::Confirmed { tx: B256::ZERO, block: 0 } },
        job_state::CANCELLED => Event::Settled { id, how: Settled::Cancelled },
        _ => Event::Failed { id, reason },
    })
}
