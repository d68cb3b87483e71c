//! Results as settlement items, and items packed into transactions.
//!
//! With `max_batch_items > 1` a transaction is one `submitResults` call
//! (each item isolated onchain); with 1, each result goes alone through
//! InfinityVM's `submitResult` / `submitResultForOffchainJob`, so the
//! engine also settles on a JobManager without our additions.

use super::gas::{batch_exec, gas_limit, GasBook, GasKey, SHARE_MARGIN};
use crate::job::{JobId, JobSpec};
use crate::protocol::bindings::IBatchSettlement::{submitResultsCall, ResultItem};
use crate::protocol::bindings::IJobManager::{submitResultCall, submitResultForOffchainJobCall};
use crate::store::ResultRecord;
use alloy::eips::eip4844::BlobTransactionSidecar;
use alloy::primitives::{Bytes, B256, U256};
use alloy::sol_types::SolCall;
use std::sync::Arc;

/// One result, ready to settle.
#[derive(Debug, Clone)]
pub(super) struct Item {
    /// The job.
    pub(super) id: JobId,
    /// What kind of settlement it is.
    pub(super) key: GasKey,
    /// `abi.encode(ResultWithMetadata)` (or the offchain variant).
    result: Bytes,
    /// The operator's signature over `result`.
    signature: Bytes,
    /// The signed request of an offchain job (empty for an onchain one),
    /// as its signer signed it.
    request: Bytes,
    /// The request's signature (empty for an onchain job).
    request_signature: Bytes,
    /// The blobs that carry its offchain input, when it is posted: it goes
    /// alone, in a blob transaction.
    pub(super) blobs: Option<Arc<BlobTransactionSidecar>>,
}

impl Item {
    /// The item that settles `spec` with its recorded result.
    pub(super) fn new(spec: &JobSpec, result: &ResultRecord) -> Item {
        let (request, request_signature, offchain) = match spec.origin.offchain() {
            None => (Bytes::new(), Bytes::new(), false),
            Some(offchain) => {
                (Bytes::copy_from_slice(offchain.request), Bytes::copy_from_slice(offchain.signature), true)
            }
        };
        let blobs = sidecar(spec).map(Arc::new);
        Item {
            id: spec.id,
            key: GasKey { consumer: spec.consumer, offchain, blobs: spec.blob_hashes().len() },
            result: Bytes::copy_from_slice(&result.result_with_metadata),
            signature: Bytes::copy_from_slice(&result.signature),
            request,
            request_signature,
            blobs,
        }
    }

    /// The versioned hashes of its blobs (none when its input is not
    /// posted).
    pub(super) fn blob_hashes(&self) -> Vec<B256> {
        self.blobs.as_ref().map(|sidecar| sidecar.versioned_hashes().collect()).unwrap_or_default()
    }

    /// Whether only a relayer may settle it (`submitResult`).
    pub(super) fn onchain(&self) -> bool {
        !self.key.offchain
    }

    /// Its size as a batch item.
    pub(super) fn bytes(&self) -> usize {
        self.result.len() + self.signature.len() + self.request.len() + self.request_signature.len()
    }

    /// The InfinityVM call that settles it alone.
    pub(super) fn single_call(&self) -> Bytes {
        let calldata = if self.key.offchain {
            submitResultForOffchainJobCall {
                offchainResultWithMetadata: self.result.clone(),
                signatureOnResult: self.signature.clone(),
                jobRequest: self.request.clone(),
                signatureOnRequest: self.request_signature.clone(),
            }
            .abi_encode()
        } else {
            submitResultCall { resultWithMetadata: self.result.clone(), signature: self.signature.clone() }.abi_encode()
        };
        calldata.into()
    }

    fn batch_item(&self) -> ResultItem {
        ResultItem {
            resultWithMetadata: self.result.clone(),
            signature: self.signature.clone(),
            jobRequest: self.request.clone(),
            signatureOnRequest: self.request_signature.clone(),
        }
    }
}

/// The blobs of `spec`'s offchain input, built again from the input (the
/// operator signed their hashes at admission). `None` when it is not
/// posted, or when the blobs cannot be built as signed: then the
/// JobManager refuses the result, and the job is dead-lettered saying so.
fn sidecar(spec: &JobSpec) -> Option<BlobTransactionSidecar> {
    let signed = spec.blob_hashes();
    if signed.is_empty() {
        return None;
    }
    let limit = crate::protocol::blobs::MAX_BLOBS_PER_JOB;
    let built = crate::protocol::blobs::blob_data(&spec.offchain_input, limit)
        .and_then(|data| crate::protocol::blobs::sidecar(&data));
    match built {
        Ok(Some(sidecar)) if sidecar.versioned_hashes().map(|hash| hash.0).eq(signed.iter().copied()) => Some(sidecar),
        Ok(_) => {
            tracing::error!(job = %spec.id, "its input's blobs are not those signed");
            None
        }
        Err(err) => {
            tracing::error!(job = %spec.id, %err, "its input's blobs cannot be built");
            None
        }
    }
}

/// A settlement transaction's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    /// The jobs it settles, in order.
    pub(super) jobs: Vec<JobId>,
    /// The JobManager call.
    pub(super) calldata: Bytes,
    /// Its gas limit.
    pub(super) gas: u64,
    /// The gas each item runs with (`gasPerItem`; the gas limit for a
    /// single-result call).
    pub(super) share: u64,
    /// The kind and size of its result when it carries one (its receipt
    /// then teaches what that kind costs).
    pub(super) single: Option<(GasKey, usize)>,
    /// The blobs it carries (a result whose input is posted goes alone).
    pub(super) blobs: Option<Arc<BlobTransactionSidecar>>,
}

/// How transactions are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Packing {
    /// Items per transaction (1: InfinityVM's single-result calls).
    pub(super) max_items: usize,
    /// Gas per transaction.
    pub(super) max_gas: u64,
    /// The most gas one item may run with inside a batch.
    pub(super) gas_per_item: u64,
}

impl Packing {
    /// A transaction that settles `item` alone: through InfinityVM's call
    /// with the predicted gas, or (after it ran short in a batch) as a batch
    /// of one with the whole per-item share.
    pub(super) fn solo(&self, item: &Item, book: &GasBook) -> Batch {
        let single = Some((item.key, item.bytes()));
        if self.max_items == 1 {
            let calldata = item.single_call();
            let exec = book.exec_gas(&item.key, item.bytes()).unwrap_or(self.gas_per_item).min(self.gas_per_item);
            let (gas, blobs) = (gas_limit(&calldata, exec), item.blobs.clone());
            return Batch { jobs: vec![item.id], gas, share: exec, calldata, single, blobs };
        }
        let calldata = batch_call(&[item], self.gas_per_item);
        let exec = batch_exec(1, self.gas_per_item, item.bytes() as u64);
        let (gas, blobs) = (gas_limit(&calldata, exec), item.blobs.clone());
        Batch { jobs: vec![item.id], gas, share: self.gas_per_item, calldata, single, blobs }
    }

    /// The share an item needs inside a batch, if it fits one.
    fn share_of(&self, item: &Item, book: &GasBook) -> Option<u64> {
        let share = book.exec_gas(&item.key, item.bytes())?.saturating_add(SHARE_MARGIN);
        (share <= self.gas_per_item).then_some(share)
    }

    /// Packs `items` (in order, all with a figure in `book`) into
    /// transactions of at most `max_items` and `max_gas` each: every item
    /// of a batch runs with the largest share any of them needs. An item
    /// that needs more than `gas_per_item`, or does not fit an empty
    /// transaction, goes alone ([`Packing::solo`]).
    pub(super) fn pack(&self, items: &[&Item], book: &GasBook) -> Vec<Batch> {
        let mut batches = Vec::new();
        let mut current: Vec<&Item> = Vec::new();
        let mut share = 0;
        let mut bytes = 0u64;
        for &item in items {
            let Some(needs) = self.share_of(item, book).filter(|_| self.max_items > 1) else {
                batches.push(self.solo(item, book));
                continue;
            };
            let fits = |count: usize, share: u64, bytes: u64| {
                // An upper bound of the calldata's intrinsic gas: 16 per
                // byte, with the ABI's offsets and padding.
                let calldata = 21_000 + 16 * (bytes + 8 * 32 * count as u64 + 128);
                count <= self.max_items && calldata + batch_exec(count as u64, share, bytes) <= self.max_gas
            };
            let item_bytes = item.bytes() as u64;
            if !current.is_empty() && !fits(current.len() + 1, share.max(needs), bytes + item_bytes) {
                batches.push(self.seal(&current, share));
                current.clear();
                (share, bytes) = (0, 0);
            }
            if current.is_empty() && !fits(1, needs, item_bytes) {
                batches.push(self.solo(item, book));
                continue;
            }
            current.push(item);
            share = share.max(needs);
            bytes += item_bytes;
        }
        if !current.is_empty() {
            batches.push(self.seal(&current, share));
        }
        batches
    }

    fn seal(&self, items: &[&Item], share: u64) -> Batch {
        let calldata = batch_call(items, share);
        let bytes: u64 = items.iter().map(|item| item.bytes() as u64).sum();
        let exec = batch_exec(items.len() as u64, share, bytes);
        let single = match items {
            [item] => Some((item.key, item.bytes())),
            _ => None,
        };
        let jobs = items.iter().map(|item| item.id).collect();
        Batch { jobs, gas: gas_limit(&calldata, exec), share, calldata, single, blobs: None }
    }
}

/// `submitResults(items, gasPerItem)`.
fn batch_call(items: &[&Item], gas_per_item: u64) -> Bytes {
    let items = items.iter().map(|item| item.batch_item()).collect();
    submitResultsCall { items, gasPerItem: U256::from(gas_per_item) }.abi_encode().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    fn item(n: u8, offchain: bool) -> Item {
        Item {
            id: JobId([n; 32]),
            key: GasKey { consumer: Address::repeat_byte(n % 2), offchain, blobs: 0 },
            result: Bytes::from(vec![n; 300]),
            signature: Bytes::from(vec![1; 65]),
            request: if offchain { Bytes::from(vec![2; 200]) } else { Bytes::new() },
            request_signature: if offchain { Bytes::from(vec![3; 65]) } else { Bytes::new() },
            blobs: None,
        }
    }

    fn book(items: &[Item], exec: u64) -> GasBook {
        let mut book = GasBook::default();
        for item in items {
            book.learn(item.key, 21_000 + exec, &[], item.bytes());
        }
        book
    }

    const PACKING: Packing = Packing { max_items: 4, max_gas: 3_000_000, gas_per_item: 1_000_000 };

    #[test]
    fn items_are_packed_in_order_up_to_the_item_limit() {
        let items: Vec<Item> = (0..10).map(|n| item(n, n % 3 == 0)).collect();
        let book = book(&items, 100_000);
        let refs: Vec<&Item> = items.iter().collect();
        let batches = PACKING.pack(&refs, &book);
        let sizes: Vec<usize> = batches.iter().map(|batch| batch.jobs.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let order: Vec<JobId> = batches.iter().flat_map(|batch| batch.jobs.clone()).collect();
        assert_eq!(order, items.iter().map(|item| item.id).collect::<Vec<_>>());
        for batch in &batches {
            let call = submitResultsCall::abi_decode(&batch.calldata).unwrap();
            assert_eq!(call.items.len(), batch.jobs.len());
            // 100k learned, +12.5%, + the margin.
            assert_eq!(call.gasPerItem, U256::from(132_500u64));
            assert_eq!(batch.share, 132_500);
            assert!(batch.gas <= PACKING.max_gas, "{}", batch.gas);
        }
    }

    #[test]
    fn the_gas_limit_bounds_a_batch() {
        let items: Vec<Item> = (0..6).map(|n| item(n, true)).collect();
        let book = book(&items, 720_000);
        let refs: Vec<&Item> = items.iter().collect();
        let batches = PACKING.pack(&refs, &book);
        // A share of 830k (+1/63, +40k per item): three fit under 3M, not four.
        assert_eq!(batches.iter().map(|batch| batch.jobs.len()).collect::<Vec<_>>(), [3, 3]);
        assert!(batches.iter().all(|batch| batch.gas <= 3_000_000 && batch.gas > 2_800_000), "{batches:?}");
    }

    #[test]
    fn an_item_above_the_per_item_share_goes_alone() {
        let items: Vec<Item> = (0..3).map(|n| item(n, true)).collect();
        let book = book(&items, 880_000);
        let refs: Vec<&Item> = items.iter().collect();
        let batches = PACKING.pack(&refs, &book);
        assert_eq!(batches, refs.iter().map(|item| PACKING.solo(item, &book)).collect::<Vec<_>>());
        assert!(batches.iter().all(|batch| batch.share == 1_000_000));
    }

    #[test]
    fn one_item_per_transaction_uses_infinityvm_calls() {
        let items = [item(1, false), item(2, true)];
        let book = book(&items, 100_000);
        let single = Packing { max_items: 1, ..PACKING };
        let batches = single.pack(&[&items[0], &items[1]], &book);
        assert_eq!(batches.len(), 2);
        assert!(submitResultCall::abi_decode(&batches[0].calldata).is_ok());
        assert!(submitResultForOffchainJobCall::abi_decode(&batches[1].calldata).is_ok());
        assert_eq!(batches[0].gas, gas_limit(&batches[0].calldata, 112_500));
        assert_eq!(batches[0].share, 112_500);
    }

    #[test]
    fn an_item_that_ran_short_goes_alone_with_the_whole_share() {
        let items = [item(1, true)];
        let solo = PACKING.solo(&items[0], &GasBook::default());
        let call = submitResultsCall::abi_decode(&solo.calldata).unwrap();
        assert_eq!(call.items.len(), 1);
        assert_eq!(call.gasPerItem, U256::from(1_000_000u64));
        assert!(solo.gas > 1_000_000 + 1_000_000 / 63 + 140_000, "{}", solo.gas);
    }
}
