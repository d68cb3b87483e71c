//! What the relayer offers per gas: EIP-1559 fees read from
//! `eth_feeHistory` (a legacy gas price on a chain without a base fee),
//! never above the configured ceiling, and the bump that replaces a stuck
//! transaction.

use crate::config;

/// Fees of one transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fees {
    /// EIP-1559: the most it pays per gas, and the tip within that.
    Eip1559 {
        /// `maxFeePerGas`.
        max_fee: u128,
        /// `maxPriorityFeePerGas`.
        priority: u128,
    },
    /// A chain without a base fee.
    Legacy {
        /// `gasPrice`.
        gas_price: u128,
    },
}

/// Why nothing can be sent at the moment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FeeError {
    /// The next block's base fee (or the node's gas price) is above the
    /// ceiling: a transaction at the ceiling would not be mined.
    #[error(
        "the next base fee, {base_fee} wei, is above the fee ceiling of {ceiling} wei (chain.max_fee_per_gas_wei)"
    )]
    AboveCeiling {
        /// The next block's base fee (or gas price).
        base_fee: u128,
        /// `chain.max_fee_per_gas_wei`.
        ceiling: u128,
    },
    /// The blob base fee is above the blob fee ceiling: results whose
    /// inputs go in blobs wait.
    #[error(
        "the blob base fee, {blob_base_fee} wei, is above the blob fee ceiling of {ceiling} wei \
         (chain.max_fee_per_blob_gas_wei)"
    )]
    BlobAboveCeiling {
        /// `eth_blobBaseFee`.
        blob_base_fee: u128,
        /// `chain.max_fee_per_blob_gas_wei`.
        ceiling: u128,
    },
}

/// What a blob transaction offers per blob gas at `blob_base_fee`: twice
/// it (room for the next blocks), at most `ceiling`; refused above it.
pub(super) fn blob_fee(blob_base_fee: u128, ceiling: u128) -> Result<u128, FeeError> {
    if blob_base_fee > ceiling {
        return Err(FeeError::BlobAboveCeiling { blob_base_fee, ceiling });
    }
    Ok(blob_base_fee.saturating_mul(2).max(1).min(ceiling))
}

/// The blob fee that replaces `old`: twice it (what nodes ask of a blob
/// transaction's replacement), at least `now`, at most `ceiling`.
pub(super) fn bump_blob_fee(old: u128, now: u128, ceiling: u128) -> Option<u128> {
    let bumped = old.saturating_mul(2).max(now);
    (bumped <= ceiling).then_some(bumped)
}

/// The fee settings of `[chain]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FeePolicy {
    /// No fee above this.
    pub(super) ceiling: u128,
    /// The lowest tip.
    pub(super) min_priority: u128,
    /// The percentile of recent tips to offer (what `eth_feeHistory` is
    /// asked for).
    pub(super) percentile: f64,
}

/// Replacement must raise both fees by at least this (in 1/1000): nodes
/// refuse a replacement below +10% (geth) or +12.5% (some clients).
const BUMP_PER_MILLE: u128 = 125;

impl FeePolicy {
    /// The policy of `[chain]`.
    pub(super) fn new(config: &config::Chain) -> FeePolicy {
        FeePolicy {
            ceiling: u128::from(config.max_fee_per_gas_wei),
            min_priority: u128::from(config.min_priority_fee_wei),
            percentile: f64::from(config.priority_fee_percentile),
        }
    }

    /// The fees to offer now. `next_base_fee` is the base fee of the next
    /// block (the last entry of `eth_feeHistory`'s `baseFeePerGas`, zero
    /// on a chain without one), `tips` the recent blocks' tips at the
    /// policy's percentile, `gas_price` the node's legacy price (used only
    /// without a base fee).
    pub(super) fn fees(&self, next_base_fee: u128, tips: &[u128], gas_price: u128) -> Result<Fees, FeeError> {
        if next_base_fee == 0 {
            if gas_price > self.ceiling {
                return Err(FeeError::AboveCeiling { base_fee: gas_price, ceiling: self.ceiling });
            }
            return Ok(Fees::Legacy { gas_price: gas_price.max(self.min_priority).min(self.ceiling) });
        }
        if next_base_fee >= self.ceiling {
            return Err(FeeError::AboveCeiling { base_fee: next_base_fee, ceiling: self.ceiling });
        }
        let priority = median(tips).max(self.min_priority).min(self.ceiling - next_base_fee);
        // Twice the base fee: the offer stays good through six full blocks
        // of base-fee rises (+12.5% each).
        let max_fee = next_base_fee.saturating_mul(2).saturating_add(priority).min(self.ceiling);
        Ok(Fees::Eip1559 { max_fee, priority })
    }

    /// The fees that replace `old`: at least +12.5% on each, at least what
    /// `now` offers, at most the ceiling. `None` when the ceiling leaves no
    /// room for a bump that nodes accept.
    pub(super) fn bump(&self, old: Fees, now: Fees) -> Option<Fees> {
        let raise = |fee: u128| fee.saturating_mul(1000 + BUMP_PER_MILLE).div_ceil(1000).max(fee + 1);
        let bumped = match (old, now) {
            (Fees::Eip1559 { max_fee, priority }, now) => {
                let (now_max, now_priority) = now.eip1559();
                let priority = raise(priority).max(now_priority);
                let max_fee = raise(max_fee).max(now_max).max(priority);
                Fees::Eip1559 { max_fee, priority }
            }
            (Fees::Legacy { gas_price }, now) => Fees::Legacy { gas_price: raise(gas_price).max(now.eip1559().0) },
        };
        (bumped.eip1559().0 <= self.ceiling).then_some(bumped)
    }
}

impl Fees {
    /// `(maxFeePerGas, maxPriorityFeePerGas)`; a legacy price is both.
    pub(super) fn eip1559(self) -> (u128, u128) {
        match self {
            Fees::Eip1559 { max_fee, priority } => (max_fee, priority),
            Fees::Legacy { gas_price } => (gas_price, gas_price),
        }
    }

    /// The most a transaction of `gas` can cost.
    pub(super) fn max_cost(self, gas: u64) -> u128 {
        self.eip1559().0.saturating_mul(u128::from(gas))
    }
}

/// The middle of the recent tips (0 when there are none: empty blocks).
fn median(tips: &[u128]) -> u128 {
    let mut sorted: Vec<u128> = tips.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_transaction_offers_twice_the_blob_base_fee_under_the_ceiling_and_waits_above_it() {
        assert_eq!(blob_fee(1, 1_000), Ok(2));
        assert_eq!(blob_fee(0, 1_000), Ok(1));
        assert_eq!(blob_fee(600, 1_000), Ok(1_000));
        assert_eq!(blob_fee(1_000, 1_000), Ok(1_000));
        let held = blob_fee(1_001, 1_000).unwrap_err();
        assert_eq!(
            held.to_string(),
            "the blob base fee, 1001 wei, is above the blob fee ceiling of 1000 wei (chain.max_fee_per_blob_gas_wei)"
        );
        // A replacement doubles it, or offers what the chain asks now.
        assert_eq!(bump_blob_fee(100, 50, 1_000), Some(200));
        assert_eq!(bump_blob_fee(100, 300, 1_000), Some(300));
        assert_eq!(bump_blob_fee(600, 50, 1_000), None);
    }

    const GWEI: u128 = 1_000_000_000;

    fn policy() -> FeePolicy {
        FeePolicy { ceiling: 100 * GWEI, min_priority: GWEI / 100, percentile: 50.0 }
    }

    #[test]
    fn eip1559_fees_are_twice_the_next_base_fee_plus_the_median_tip() {
        let fees = policy().fees(10 * GWEI, &[GWEI, 3 * GWEI, 2 * GWEI], 0).unwrap();
        assert_eq!(fees, Fees::Eip1559 { max_fee: 22 * GWEI, priority: 2 * GWEI });
    }

    #[test]
    fn the_tip_has_a_floor_and_the_fee_a_ceiling() {
        let fees = policy().fees(10 * GWEI, &[], 0).unwrap();
        assert_eq!(fees, Fees::Eip1559 { max_fee: 20 * GWEI + GWEI / 100, priority: GWEI / 100 });
        let fees = policy().fees(60 * GWEI, &[GWEI], 0).unwrap();
        assert_eq!(fees, Fees::Eip1559 { max_fee: 100 * GWEI, priority: GWEI });
        let err = policy().fees(100 * GWEI, &[GWEI], 0).unwrap_err();
        assert_eq!(err, FeeError::AboveCeiling { base_fee: 100 * GWEI, ceiling: 100 * GWEI });
        assert_eq!(
            err.to_string(),
            "the next base fee, 100000000000 wei, is above the fee ceiling of 100000000000 wei (chain.max_fee_per_gas_wei)"
        );
    }

    #[test]
    fn a_chain_without_a_base_fee_gets_a_legacy_price() {
        assert_eq!(policy().fees(0, &[], 7 * GWEI).unwrap(), Fees::Legacy { gas_price: 7 * GWEI });
        assert!(policy().fees(0, &[], 101 * GWEI).is_err());
    }

    #[test]
    fn a_replacement_raises_both_fees_by_at_least_an_eighth() {
        let old = Fees::Eip1559 { max_fee: 8 * GWEI, priority: GWEI };
        let calm = Fees::Eip1559 { max_fee: 2 * GWEI, priority: GWEI / 2 };
        assert_eq!(policy().bump(old, calm), Some(Fees::Eip1559 { max_fee: 9 * GWEI, priority: GWEI * 9 / 8 }));
        // A spike: the replacement offers what the market asks now.
        let spike = Fees::Eip1559 { max_fee: 50 * GWEI, priority: 2 * GWEI };
        assert_eq!(policy().bump(old, spike), Some(Fees::Eip1559 { max_fee: 50 * GWEI, priority: 2 * GWEI }));
        // Tiny fees still move by at least a wei.
        let tiny = Fees::Eip1559 { max_fee: 1, priority: 1 };
        assert_eq!(policy().bump(tiny, tiny), Some(Fees::Eip1559 { max_fee: 2, priority: 2 }));
    }

    #[test]
    fn no_replacement_above_the_ceiling() {
        let near = Fees::Eip1559 { max_fee: 95 * GWEI, priority: GWEI };
        assert_eq!(policy().bump(near, near), None);
        let legacy = Fees::Legacy { gas_price: 8 * GWEI };
        assert_eq!(policy().bump(legacy, legacy), Some(Fees::Legacy { gas_price: 9 * GWEI }));
    }
}
