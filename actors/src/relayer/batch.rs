//! Results as settlement items, and items packed into transactions.
//!
//! With `max_batch_items > 1` a transaction is one `submitResults` call
//! (each item isolated onchain); with 1, each result goes alone through
//! InfinityVM's `submitResult` / `submitResultForOffchainJob`, so the
//! engine also settles on a JobManager without our additions.

use super::gas::{gas_limit, GasBook, GasKey, BATCH_BASE_GAS, BATCH_ITEM_GAS};
use crate::job::{JobId, JobSpec, Origin};
use crate::protocol::bindings::IBatchSettlement::{submitResultsCall, ResultItem};
use crate::protocol::bindings::IJobManager::{submitResultCall, submitResultForOffchainJobCall};
use crate::store::ResultRecord;
use alloy::primitives::{Bytes, U256};
use alloy::sol_types::SolCall;

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
}

impl Item {
    /// The item that settles `spec` with its recorded result.
    pub(super) fn new(spec: &JobSpec, result: &ResultRecord) -> Item {
        let (request, request_signature, offchain) = match &spec.origin {
            Origin::Onchain => (Bytes::new(), Bytes::new(), false),
            Origin::Offchain { request, signature, .. } => {
                (Bytes::copy_from_slice(request), Bytes::copy_from_slice(signature), true)
            }
        };
        Item {
            id: spec.id,
            key: GasKey { consumer: spec.consumer, offchain },
            result: Bytes::copy_from_slice(&result.result_with_metadata),
            signature: Bytes::copy_from_slice(&result.signature),
            request,
            request_signature,
        }
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

/// A settlement transaction's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    /// The jobs it settles, in order.
    pub(super) jobs: Vec<JobId>,
    /// The JobManager call.
    pub(super) calldata: Bytes,
    /// Its gas limit.
    pub(super) gas: u64,
}

/// How transactions are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Packing {
    /// Items per transaction (1: InfinityVM's single-result calls).
    pub(super) max_items: usize,
    /// Gas per transaction.
    pub(super) max_gas: u64,
    /// Gas each item may use inside a batch.
    pub(super) gas_per_item: u64,
}

impl Packing {
    /// A transaction that settles `item` alone with the whole per-item
    /// share (after it ran short in a batch), or through InfinityVM's call.
    pub(super) fn solo(&self, item: &Item, book: &GasBook) -> Batch {
        if self.max_items == 1 {
            let calldata = item.single_call();
            let exec = book.exec_gas(&item.key, item.bytes()).unwrap_or(self.gas_per_item);
            return Batch { jobs: vec![item.id], gas: gas_limit(&calldata, exec), calldata };
        }
        let calldata = batch_call(&[item], self.gas_per_item);
        let exec = BATCH_BASE_GAS + BATCH_ITEM_GAS + self.gas_per_item + self.gas_per_item / 63;
        Batch { jobs: vec![item.id], gas: gas_limit(&calldata, exec), calldata }
    }

    /// Packs `items` (in order, all with a learned figure in `book`) into
    /// transactions of at most `max_items` and `max_gas` each. An item
    /// that does not fit an empty transaction goes alone ([`Packing::solo`]).
    pub(super) fn pack(&self, items: &[&Item], book: &GasBook) -> Vec<Batch> {
        let mut batches = Vec::new();
        let mut current: Vec<&Item> = Vec::new();
        let mut exec = BATCH_BASE_GAS;
        // An upper bound of the calldata's intrinsic gas: 16 per byte, with
        // the ABI's offsets and padding (at most 8 words per item).
        let mut calldata_gas = 21_000 + 16 * 4 * 32;
        for &item in items {
            let item_exec = book.exec_gas(&item.key, item.bytes()).unwrap_or(self.gas_per_item) + BATCH_ITEM_GAS;
            let item_calldata = 16 * (item.bytes() as u64 + 8 * 32);
            if self.max_items == 1 || item_exec > self.gas_per_item {
                batches.push(self.solo(item, book));
                continue;
            }
            let fits =
                current.len() < self.max_items && exec + item_exec + calldata_gas + item_calldata <= self.max_gas;
            if !fits && !current.is_empty() {
                batches.push(self.seal(&current, book));
                current.clear();
                exec = BATCH_BASE_GAS;
                calldata_gas = 21_000 + 16 * 4 * 32;
            }
            current.push(item);
            exec += item_exec;
            calldata_gas += item_calldata;
        }
        if !current.is_empty() {
            batches.push(self.seal(&current, book));
        }
        batches
    }

    fn seal(&self, items: &[&Item], book: &GasBook) -> Batch {
        let calldata = batch_call(items, self.gas_per_item);
        let exec: u64 = BATCH_BASE_GAS
            + items
                .iter()
                .map(|item| book.exec_gas(&item.key, item.bytes()).unwrap_or(self.gas_per_item) + BATCH_ITEM_GAS)
                .sum::<u64>();
        Batch { jobs: items.iter().map(|item| item.id).collect(), gas: gas_limit(&calldata, exec), calldata }
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
            key: GasKey { consumer: Address::repeat_byte(n % 2), offchain },
            result: Bytes::from(vec![n; 300]),
            signature: Bytes::from(vec![1; 65]),
            request: if offchain { Bytes::from(vec![2; 200]) } else { Bytes::new() },
            request_signature: if offchain { Bytes::from(vec![3; 65]) } else { Bytes::new() },
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
            assert_eq!(call.gasPerItem, U256::from(1_000_000u64));
            assert!(batch.gas <= PACKING.max_gas, "{}", batch.gas);
        }
    }

    #[test]
    fn the_gas_limit_bounds_a_batch() {
        let items: Vec<Item> = (0..6).map(|n| item(n, true)).collect();
        let book = book(&items, 800_000);
        let refs: Vec<&Item> = items.iter().collect();
        let batches = Packing { gas_per_item: 2_000_000, ..PACKING }.pack(&refs, &book);
        // 800k x 1.25 + 15k per item: two fit under 3M, not three.
        assert_eq!(batches.iter().map(|batch| batch.jobs.len()).collect::<Vec<_>>(), [2, 2, 2]);
        assert!(batches.iter().all(|batch| batch.gas <= 3_000_000 && batch.gas > 2_000_000));
    }

    #[test]
    fn an_item_above_the_per_item_share_goes_alone() {
        let items: Vec<Item> = (0..3).map(|n| item(n, true)).collect();
        let book = book(&items, 900_000);
        let refs: Vec<&Item> = items.iter().collect();
        let batches = PACKING.pack(&refs, &book);
        assert_eq!(batches, refs.iter().map(|item| PACKING.solo(item, &book)).collect::<Vec<_>>());
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
        assert_eq!(batches[0].gas, gas_limit(&batches[0].calldata, 125_000));
    }

    #[test]
    fn an_item_that_ran_short_goes_alone_with_the_whole_share() {
        let items = [item(1, true)];
        let solo = PACKING.solo(&items[0], &GasBook::default());
        let call = submitResultsCall::abi_decode(&solo.calldata).unwrap();
        assert_eq!(call.items.len(), 1);
        assert!(solo.gas > 1_000_000 + 1_000_000 / 63, "{}", solo.gas);
    }
}
