//! What the chain said about the jobs in flight, applied: `JobCompleted`
//! and `ResultSkipped` events, receipts, and onchain states. Each leaves a
//! job confirmed, already settled, cancelled, queued again (nothing
//! counted) or awaiting a verdict that counts as a failed attempt.

use super::plan::Mined;
use super::{gwei, Phase, Relayer, BATCH_OUT_OF_GAS, ITEM_OUT_OF_GAS};
use crate::chain::job_state;
use crate::job::{JobId, Settlement};
use alloy::primitives::{B256, U256};
use std::sync::atomic::Ordering;

impl Relayer {
    /// `JobCompleted`: by one of our transactions, or someone else's.
    pub(super) fn completed(&mut self, id: JobId, tx: B256, block: u64) {
        let Some(job) = self.jobs.get(&id) else { return };
        let step = if job.hashes.contains(&tx) {
            Settlement::Confirmed { tx_hash: tx.0, block }
        } else {
            Settlement::AlreadySettled { tx_hash: tx.0, block }
        };
        self.finish(id, step);
    }

    /// `ResultSkipped` in one of our batches.
    pub(super) fn skipped(&mut self, id: JobId, tx: B256, reason: String) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        if !job.hashes.contains(&tx) {
            return; // another engine's batch
        }
        let mut share = None;
        if let Phase::InFlight { sender, nonce } = job.phase {
            share = self.senders[sender].tx(nonce).map(|tx| tx.share);
            self.senders[sender].resolve(nonce, id);
        }
        // Our gas figure was short (the batch's limit, or a share below the
        // whole `max_gas_per_result`): not the job's fault. It goes alone
        // with the whole share, nothing counted.
        let short_share = share.is_some_and(|share| share < self.config.max_gas_per_result);
        if reason == BATCH_OUT_OF_GAS || (reason == ITEM_OUT_OF_GAS && short_share) {
            self.book.raise(&job.item.key);
            job.solo = true;
            self.again(id);
            return;
        }
        job.phase = Phase::Verdict { reason, simulate: false };
    }

    /// A mined transaction's receipt: fees, and a verdict for each job it
    /// did not settle.
    pub(super) fn receipt(&mut self, sender: usize, nonce: u64, read: bool, receipt: Option<Mined>) {
        let Some(tx) = self.senders.get_mut(sender).and_then(|lane| lane.remove(nonce)) else { return };
        self.warned_at_ceiling.remove(&(sender, nonce));
        let engine = &self.setup.metrics.engine;
        // Not read: each of its jobs had its event, so none is left (if one
        // were, it goes again: the chain is checked before it is sent).
        let Some(mined) = receipt.filter(|_| read) else {
            if read {
                tracing::warn!(
                    nonce,
                    "no version of a mined settlement transaction is known to the node (a reorg?); its jobs go again"
                );
            }
            for id in tx.jobs {
                self.again(id);
            }
            return;
        };
        let fee = u128::from(mined.gas_used).saturating_mul(mined.price);
        engine.relay_fee_gwei.fetch_add(gwei(U256::from(fee)), Ordering::Relaxed);
        engine.relay_gas_used.fetch_add(mined.gas_used, Ordering::Relaxed);
        engine.relay_sampled_results.fetch_add(tx.carried as u64, Ordering::Relaxed);
        let single = self.config.max_batch_items == 1;
        let out_of_gas = !mined.success && mined.gas_used >= tx.gas.saturating_sub(tx.gas / 50);
        if let (Some((key, bytes)), true, true) = (tx.single, mined.success, single) {
            // A result settled alone through InfinityVM's call teaches what
            // its kind costs (a batch of one carries the batch's overhead).
            self.book.learn(key, mined.gas_used, &tx.calldata, bytes);
        }
        for id in tx.jobs {
            let Some(job) = self.jobs.get_mut(&id) else { continue };
            if single && out_of_gas && tx.gas < self.config.max_gas_per_result {
                // Our gas figure was short: raise it, nothing counted.
                self.book.raise(&job.item.key);
                self.again(id);
                continue;
            }
            let (reason, simulate) = if mined.success {
                (format!("transaction {} succeeded but did not settle the job", mined.tx), false)
            } else if out_of_gas {
                (format!("transaction {} ran out of gas ({} gas)", mined.tx, mined.gas_used), false)
            } else {
                (format!("transaction {} reverted", mined.tx), true)
            };
            job.phase = Phase::Verdict { reason, simulate };
        }
    }

    /// A job's onchain state, read before sending it or for a verdict.
    pub(super) fn state(&mut self, id: JobId, state: u8) {
        let Some(job) = self.jobs.get(&id) else { return };
        let open = if job.item.onchain() { job_state::PENDING } else { job_state::NONE };
        match state {
            job_state::COMPLETED => {
                // Settled by a transaction whose event was not seen: one of
                // an earlier run's (a resumed job), or someone else's.
                let step = match job.resumed {
                    Some(resumed) => Settlement::Confirmed { tx_hash: resumed.tx.unwrap_or_default().0, block: 0 },
                    None => Settlement::AlreadySettled { tx_hash: [0; 32], block: 0 },
                };
                self.finish(id, step);
            }
            job_state::CANCELLED => self.finish(id, Settlement::Cancelled),
            state if state == open => {
                if let Phase::Verdict { reason, simulate: false } = &job.phase {
                    let reason = reason.clone();
                    self.failed(id, reason);
                }
            }
            state => {
                let reason = format!(
                    "the job's onchain state is {state}, expected {open} for an {} job",
                    if job.item.onchain() { "onchain" } else { "offchain" }
                );
                self.failed(id, reason);
            }
        }
    }
}
