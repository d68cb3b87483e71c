//! The sends of a relay round: dropped transactions again as they were,
//! a stuck line replaced with higher fees, then new batches on locally
//! assigned nonces, each key's in nonce order; none waits for another to
//! be mined.

use super::batch::{Batch, Item, Packing};
use super::fees::{bump_blob_fee, FeeError, FeePolicy, Fees};
use super::plan::{Event, Plan};
use super::senders::{Resend, Sender, Tx};
use crate::chain::{Chain, ChainError};
use crate::job::JobId;
use alloy::eips::Encodable2718;
use alloy::network::{Ethereum, NetworkTransactionBuilder, TransactionBuilder, TransactionBuilder4844};
use alloy::primitives::{Bytes, B256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use std::collections::HashSet;

/// Resends, replacements, then new batches, each key's in nonce order.
/// `blob_fee` is what a blob transaction offers per blob gas this round
/// (`None`: no blobs to send; an error: results with blobs wait).
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_all(
    chain: &Chain,
    plan: &Plan,
    chain_id: u64,
    head: u64,
    fees: Fees,
    blob_fee: Option<Result<u128, FeeError>>,
    packing: Packing,
    items: Vec<Item>,
    events: &mut Vec<Event>,
) -> Result<(), ChainError> {
    let blob_ceiling = u128::from(plan.config.max_fee_per_blob_gas_wei);
    let blob_now = blob_fee.as_ref().and_then(|fee| fee.as_ref().ok().copied());
    let mut outgoing: Vec<Vec<Outgoing>> = plan.senders.iter().map(|_| Vec::new()).collect();
    for (index, sender) in plan.senders.iter().enumerate() {
        for resend in sender.resends(head, plan.config.replace_after_blocks) {
            let (nonce, bump) = match resend {
                Resend::Dropped(nonce) => (nonce, false),
                Resend::Stuck(nonce) => (nonce, true),
            };
            let Some(tx) = sender.tx(nonce) else { continue };
            let old_blob_fee = tx.blobs.as_ref().map(|(_, fee)| *fee);
            let (fees, blob_fee) = if bump {
                let bumped = FeePolicy::new(&plan.config).bump(tx.fees, fees);
                let blob_bumped = match old_blob_fee {
                    Some(old) => bump_blob_fee(old, blob_now.unwrap_or(0), blob_ceiling).map(Some),
                    None => Some(None),
                };
                match bumped.zip(blob_bumped) {
                    Some(bumped) => bumped,
                    None => {
                        events.push(Event::AtCeiling { sender: index, nonce });
                        continue;
                    }
                }
            } else {
                (tx.fees, old_blob_fee)
            };
            let batch = Batch {
                jobs: tx.jobs.clone(),
                calldata: tx.calldata.clone(),
                gas: tx.gas,
                share: tx.share,
                single: tx.single,
                blobs: tx.blobs.as_ref().map(|(sidecar, _)| std::sync::Arc::clone(sidecar)),
            };
            let raw = (!bump).then(|| tx.raw.clone());
            outgoing[index].push(Outgoing { nonce, batch, fees, blob_fee, replaced: bump, raw });
        }
    }
    // New batches: onchain results only from keys the JobManager takes them
    // from; each batch to the key with the most room.
    // A result whose input goes in blobs goes alone (the JobManager checks
    // an item's blobs from the transaction's first); it waits while the
    // blob fee is above its ceiling.
    let (blobs, items): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|item| item.blobs.is_some());
    let blob_batches: Vec<(bool, Batch)> = match blob_now {
        Some(_) => blobs.iter().map(|item| (item.onchain(), packing.solo(item, &plan.book))).collect(),
        None => Vec::new(),
    };
    let (solo, packed): (Vec<&Item>, Vec<&Item>) = items.iter().partition(|item| plan.solo.contains(&item.id));
    let mixed_ok = plan.senders.iter().all(|sender| sender.onchain);
    let mut batches: Vec<(bool, Batch)> = blob_batches;
    batches.extend(solo.iter().map(|item| (item.onchain(), packing.solo(item, &plan.book))));
    if mixed_ok {
        let onchain: HashSet<JobId> = items.iter().filter(|item| item.onchain()).map(|item| item.id).collect();
        let any_onchain = |batch: &Batch| batch.jobs.iter().any(|id| onchain.contains(id));
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
            plan.config.max_in_flight.saturating_sub(sender.in_flight().max(replacing))
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
            let blob_fee = batch.blobs.as_ref().and(blob_now);
            outgoing[index].push(Outgoing { nonce, batch, fees, blob_fee, replaced: false, raw: None });
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
    /// Wei per blob gas, for a batch with blobs.
    blob_fee: Option<u128>,
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
        let tx = Box::new(Tx {
            carried: out.batch.jobs.len(),
            jobs: out.batch.jobs.clone(),
            single: out.batch.single,
            share: out.batch.share,
            calldata: out.batch.calldata,
            gas: out.batch.gas,
            fees: out.fees,
            hashes: vec![hash],
            raw: raw.clone(),
            blobs: out.batch.blobs.clone().zip(out.blob_fee),
            sent_head: head,
            mined_at: None,
        });
        match chain.rpc(chain.provider().send_raw_transaction(&raw)).await {
            Ok(_) => events.push(Event::Sent { sender: index, nonce: out.nonce, tx, replaced: out.replaced }),
            Err(ChainError::Refused(reason)) if is_known(&reason) => {
                events.push(Event::Sent { sender: index, nonce: out.nonce, tx, replaced: out.replaced });
            }
            Err(ChainError::Refused(reason)) => {
                let nonce_too_low = reason.to_lowercase().contains("nonce too low");
                tracing::warn!(key = %sender.address, nonce = out.nonce, %reason, "settlement transaction refused");
                let mut jobs = if sender.tx(out.nonce).is_some() { Vec::new() } else { out.batch.jobs };
                // A node that mines as it receives (hardhat's automine)
                // answers a transaction that reverted with an error, after
                // mining it: each of its jobs counts a failed attempt, so a
                // result that always reverts is dead-lettered, not sent again
                // and again.
                if ran_and_reverted(&reason) {
                    let reverted = format!("the node ran its transaction, which reverted: {reason}");
                    events.extend(jobs.drain(..).map(|id| Event::Failed { id, reason: reverted.clone() }));
                }
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

/// A send refused with what only running the transaction tells: a revert
/// (hardhat's reasonless "Transaction reverted ...", or a reason decoded
/// from revert data, `revert: ...` / `panic: ...`). A node that checks a
/// transaction before taking it (geth and its kin) never answers so.
fn ran_and_reverted(reason: &str) -> bool {
    let reason = reason.to_lowercase();
    reason.contains("transaction reverted") || reason.starts_with("revert: ") || reason.starts_with("panic: ")
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
    // EIP-4844: the blobs travel with the transaction, their hashes in it.
    let request = match (&out.batch.blobs, out.blob_fee) {
        (Some(sidecar), Some(blob_fee)) => {
            request.with_blob_sidecar_4844(sidecar.as_ref().clone()).with_max_fee_per_blob_gas(blob_fee)
        }
        _ => request,
    };
    let envelope = <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(request, &sender.wallet)
        .await
        .map_err(|err| format!("signing the transaction: {err}"))?;
    Ok((*envelope.tx_hash(), envelope.encoded_2718().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_refused_with_a_revert_is_told_from_one_refused_before_running() {
        for reverted in [
            "Transaction reverted without a reason",
            "revert: JobManager.submitResult: caller is not the relayer",
            "panic: arithmetic underflow or overflow (0x11)",
        ] {
            assert!(ran_and_reverted(reverted), "{reverted}");
        }
        for refused in ["nonce too low", "insufficient funds for gas * price + value", "already known", ""] {
            assert!(!ran_and_reverted(refused), "{refused}");
        }
    }
}
