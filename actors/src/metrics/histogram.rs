//! A lock-free log-linear histogram of durations in microseconds.
//!
//! Buckets: values below 16 are exact; above, each power of two is split
//! into 16 buckets, so a quantile is within 1/16 (6.25%) of the truth.

use std::sync::atomic::{AtomicU64, Ordering};

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = SUB * (64 - SUB_BITS as usize + 1);

/// A histogram of microsecond values.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB as u64 {
        return value as usize;
    }
    let magnitude = 63 - value.leading_zeros();
    let shift = magnitude - SUB_BITS;
    let sub = ((value >> shift) as usize) & (SUB - 1);
    ((shift as usize + 1) << SUB_BITS) | sub
}

/// The largest value that falls in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64;
    }
    let shift = (bucket >> SUB_BITS) as u32 - 1;
    let sub = (bucket & (SUB - 1)) as u64;
    let low = (SUB as u64 | sub) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    /// Records one value.
    pub(crate) fn record(&self, micros: u64) {
        if let Some(bucket) = self.buckets.get(bucket_of(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The value at quantile `q` (0..=1): an upper bound within 6.25%.
    /// Zero when nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return upper_bound(index);
            }
        }
        upper_bound(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_whose_bound_is_within_a_sixteenth() {
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX]) {
            let bound = upper_bound(bucket_of(value));
            assert!(bound >= value, "{value} -> {bound}");
            assert!(bound - value <= value / 16, "{value} -> {bound}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let histogram = Histogram::default();
        for value in 1..=1000 {
            histogram.record(value);
        }
        let p50 = histogram.quantile(0.5);
        let p99 = histogram.quantile(0.99);
        assert!((500..=532).contains(&p50), "{p50}");
        assert!((990..=1055).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
