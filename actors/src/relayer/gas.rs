//! The gas a settlement needs, learned instead of estimated per result.
//!
//! The first result of a kind (onchain or offchain) is simulated once with
//! `eth_estimateGas` on its single-result function; from then on results'
//! gas is predicted from the figure of their consumer (or, for a consumer
//! not seen yet, the largest of their kind), scaled up for larger results
//! and with a margin (an eighth). A result that ran short in a batch (skipped with
//! "batch out of gas") raises its consumer's figure and goes alone with the
//! whole per-item share; a result settled alone teaches its consumer's
//! figure from the receipt. So the book corrects itself without a
//! simulation per result.

use alloy::primitives::Address;
use std::collections::HashMap;

/// What kind of settlement a result needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct GasKey {
    /// The consumer called back.
    pub(super) consumer: Address,
    /// `submitResultForOffchainJob` (creates the job, stores its inputs)
    /// rather than `submitResult`.
    pub(super) offchain: bool,
    /// Blobs its input is posted in (each hash is checked and stored).
    pub(super) blobs: usize,
}

/// The execution gas (beyond the transaction's intrinsic cost) of one
/// result of a kind, and the size of the result it was learned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Learned {
    exec: u64,
    bytes: usize,
}

/// What each kind of settlement costs.
#[derive(Debug, Clone, Default)]
pub(super) struct GasBook {
    learned: HashMap<GasKey, Learned>,
}

/// Gas of `submitResults` beyond its items: the call, the array's decoding
/// (the JobManager's documented allowance).
pub(super) const BATCH_BASE_GAS: u64 = 100_000;
/// Gas a batch keeps per item beyond the item's share: the loop, the call,
/// a skip's event (the JobManager's documented allowance).
pub(super) const BATCH_ITEM_GAS: u64 = 40_000;
/// Added to the largest predicted figure of a batch's items to make the
/// share each item runs with: an item's call inside a batch decodes its
/// item on top of what the single-result call does.
pub(super) const SHARE_MARGIN: u64 = 20_000;

/// The gas `submitResults` needs for `items` items running with `share`
/// gas each and `item_bytes` bytes of items in all, beyond the calldata's
/// intrinsic gas: the JobManager checks this much is left before each item.
pub(super) fn batch_exec(items: u64, share: u64, item_bytes: u64) -> u64 {
    let per_item = share.saturating_add(share / 63).saturating_add(BATCH_ITEM_GAS);
    BATCH_BASE_GAS.saturating_add(per_item.saturating_mul(items)).saturating_add(item_bytes.saturating_sub(10_000))
}

impl GasBook {
    /// Whether results of `key` have a figure yet (their consumer's, or
    /// one of their kind's).
    pub(super) fn knows(&self, key: &GasKey) -> bool {
        self.figure(key).is_some()
    }

    /// The consumer's figure, or the largest of its kind (onchain or
    /// offchain, with as many blobs: each blob's hash is checked and
    /// stored, so a result with blobs costs more than one without).
    fn figure(&self, key: &GasKey) -> Option<Learned> {
        self.learned.get(key).copied().or_else(|| {
            self.learned
                .iter()
                .filter(|(other, _)| other.offchain == key.offchain && other.blobs == key.blobs)
                .map(|(_, learned)| *learned)
                .max_by_key(|learned| per_byte(*learned))
        })
    }

    /// Records the node's estimate for one result of `key` sent alone with
    /// `calldata` (`item_bytes` long as a batch item). The larger figure
    /// (per byte of result) wins.
    pub(super) fn learn(&mut self, key: GasKey, estimate: u64, calldata: &[u8], item_bytes: usize) {
        let exec = estimate.saturating_sub(intrinsic(calldata)).max(1);
        let new = Learned { exec, bytes: item_bytes.max(1) };
        let entry = self.learned.entry(key).or_insert(new);
        if per_byte(new) > per_byte(*entry) || (new.bytes >= entry.bytes && new.exec > entry.exec) {
            *entry = new;
        }
    }

    /// An item of `key` ran short inside a batch: raise its figure by a
    /// quarter (its consumer gets a figure of its own).
    pub(super) fn raise(&mut self, key: &GasKey) {
        if let Some(mut learned) = self.figure(key) {
            learned.exec = learned.exec.saturating_add(learned.exec / 4);
            self.learned.insert(*key, learned);
        }
    }

    /// The execution gas to allow one result of `key` that is `bytes`
    /// long: the learned figure, scaled up (never down) for a larger
    /// result, plus an eighth.
    pub(super) fn exec_gas(&self, key: &GasKey, bytes: usize) -> Option<u64> {
        let learned = self.figure(key)?;
        let scaled = if bytes > learned.bytes {
            (u128::from(learned.exec) * bytes as u128 / learned.bytes as u128).min(u128::from(u64::MAX)) as u64
        } else {
            learned.exec
        };
        Some(scaled.saturating_add(scaled / 8))
    }
}

fn per_byte(learned: Learned) -> u128 {
    u128::from(learned.exec) * 1_000_000 / learned.bytes as u128
}

/// The intrinsic gas of a call with `calldata`: 21000, plus 16 per non-zero
/// byte and 4 per zero byte.
pub(super) fn intrinsic(calldata: &[u8]) -> u64 {
    let zeros = calldata.iter().filter(|&&byte| byte == 0).count() as u64;
    let nonzeros = calldata.len() as u64 - zeros;
    21_000 + 16 * nonzeros + 4 * zeros
}

/// The gas limit of a call with `calldata` that executes `exec`: at least
/// EIP-7623's calldata floor (21000 + 10 per zero byte, 40 per non-zero).
pub(super) fn gas_limit(calldata: &[u8], exec: u64) -> u64 {
    let zeros = calldata.iter().filter(|&&byte| byte == 0).count() as u64;
    let nonzeros = calldata.len() as u64 - zeros;
    let floor = 21_000 + 10 * zeros + 40 * nonzeros;
    intrinsic(calldata).saturating_add(exec).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: GasKey = GasKey { consumer: Address::repeat_byte(1), offchain: true, blobs: 0 };

    #[test]
    fn intrinsic_gas_counts_zero_and_non_zero_bytes() {
        assert_eq!(intrinsic(&[]), 21_000);
        assert_eq!(intrinsic(&[0, 0, 1]), 21_000 + 4 + 4 + 16);
        // A call that is nearly all calldata pays EIP-7623's floor.
        assert_eq!(gas_limit(&[1; 100], 0), 21_000 + 4_000);
        assert_eq!(gas_limit(&[1; 100], 100_000), 21_000 + 1_600 + 100_000);
    }

    #[test]
    fn a_learned_figure_gets_a_quarter_more_and_scales_with_the_result() {
        let mut book = GasBook::default();
        assert!(!book.knows(&KEY));
        assert_eq!(book.exec_gas(&KEY, 100), None);
        let calldata = [1u8; 100];
        book.learn(KEY, intrinsic(&calldata) + 200_000, &calldata, 500);
        assert!(book.knows(&KEY));
        assert_eq!(book.exec_gas(&KEY, 500), Some(225_000));
        assert_eq!(book.exec_gas(&KEY, 100), Some(225_000), "smaller results get no discount");
        assert_eq!(book.exec_gas(&KEY, 1000), Some(450_000));
    }

    #[test]
    fn a_new_consumer_starts_from_the_largest_figure_of_its_kind() {
        let mut book = GasBook::default();
        let other = GasKey { consumer: Address::repeat_byte(2), offchain: true, blobs: 0 };
        let onchain = GasKey { consumer: Address::repeat_byte(2), offchain: false, blobs: 0 };
        book.learn(KEY, 21_000 + 200_000, &[], 500);
        assert!(book.knows(&other));
        assert!(!book.knows(&onchain), "onchain results cost differently: learned apart");
        assert_eq!(book.exec_gas(&other, 500), Some(225_000));
        book.raise(&other);
        assert_eq!(book.exec_gas(&other, 500), Some(281_250));
        assert_eq!(book.exec_gas(&KEY, 500), Some(225_000), "raising one consumer leaves the others");
    }

    #[test]
    fn the_larger_figure_wins_and_a_short_batch_raises_it() {
        let mut book = GasBook::default();
        book.learn(KEY, 21_000 + 200_000, &[], 500);
        book.learn(KEY, 21_000 + 100_000, &[], 500);
        assert_eq!(book.exec_gas(&KEY, 500), Some(225_000));
        book.learn(KEY, 21_000 + 300_000, &[], 500);
        assert_eq!(book.exec_gas(&KEY, 500), Some(337_500));
        book.raise(&KEY);
        assert_eq!(book.exec_gas(&KEY, 500), Some(421_875));
    }

    #[test]
    fn a_result_with_blobs_is_never_priced_from_results_without() {
        let mut book = GasBook::default();
        book.learn(KEY, 300_000, &[1; 100], 500);
        let with_blob = GasKey { blobs: 1, ..KEY };
        let other_with_blob = GasKey { consumer: Address::repeat_byte(9), ..with_blob };
        assert!(book.knows(&KEY) && !book.knows(&with_blob));
        book.learn(with_blob, 350_000, &[1; 100], 500);
        // Another consumer's result with one blob is priced from it.
        assert_eq!(book.exec_gas(&other_with_blob, 500), book.exec_gas(&with_blob, 500));
        assert!(book.exec_gas(&with_blob, 500) > book.exec_gas(&KEY, 500));
    }
}
