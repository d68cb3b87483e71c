//! Per-signer quotas on submitted jobs (`[quota]`): one token bucket for
//! jobs and one for cycles per offchain request signer, so one client
//! cannot starve the others.
//!
//! A job is charged when its signer is known (after signature recovery)
//! and before it is admitted: one job, and its `maxCycles` (what it may
//! use, known before it runs: a signer cannot fill the executors with long
//! jobs and pay only for what they used). A request refused after the
//! charge (a nonce used before, a full queue, the chain's verdict) is
//! refunded, so replaying someone's signed request cannot spend their
//! quota.
//!
//! Memory is bounded: at most `max_signers` buckets. A bucket that has
//! refilled to its burst is the same as a fresh one, so those are
//! forgotten first (a sweep, at most once a second, when the table is
//! full); if every tracked signer is active, new signers share one
//! overflow bucket until room frees up, so minting signers gains an
//! attacker nothing over one signer, and established signers keep theirs.

use crate::config::Quota;
use alloy::primitives::Address;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a full table may be swept for idle signers.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Which quota a request is over.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum QuotaError {
    /// Too many jobs per second.
    #[error(
        "quota: signer {signer} is over its quota of {per_second} jobs per second (burst {burst}); retry in {} ms",
        retry_after.as_millis()
    )]
    Jobs {
        /// The signer.
        signer: Address,
        /// `quota.jobs_per_second`.
        per_second: u64,
        /// `quota.jobs_burst`.
        burst: u64,
        /// When one job's worth is back.
        retry_after: Duration,
    },
    /// Too many cycles per second.
    #[error(
        "quota: signer {signer} is over its quota of {per_second} cycles per second (burst {burst}): this job asks \
         for {asked} cycles; retry in {} ms",
        retry_after.as_millis()
    )]
    Cycles {
        /// The signer.
        signer: Address,
        /// The job's `maxCycles`.
        asked: u64,
        /// `quota.cycles_per_second`.
        per_second: u64,
        /// `quota.cycles_burst`.
        burst: u64,
        /// When the job's cycles are back.
        retry_after: Duration,
    },
}

/// What a successful [`Quotas::charge`] took, to give back with
/// [`Quotas::refund`] if the request is refused later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    signer: Address,
    cycles: u64,
    /// Taken from the shared overflow bucket.
    overflow: bool,
    /// Nothing was taken (quotas off).
    free: bool,
}

/// One signer's buckets.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    jobs: f64,
    cycles: f64,
    at: Instant,
}

impl Bucket {
    fn full(config: &Quota, now: Instant) -> Bucket {
        Bucket { jobs: config.jobs_burst as f64, cycles: config.cycles_burst as f64, at: now }
    }

    /// Adds what the time since the last refill earned, up to the bursts.
    fn refill(&mut self, config: &Quota, now: Instant) {
        let seconds = now.saturating_duration_since(self.at).as_secs_f64();
        self.jobs = (self.jobs + seconds * config.jobs_per_second as f64).min(config.jobs_burst as f64);
        self.cycles = (self.cycles + seconds * config.cycles_per_second as f64).min(config.cycles_burst as f64);
        self.at = self.at.max(now);
    }

    fn is_full(&self, config: &Quota) -> bool {
        (config.jobs_per_second == 0 || self.jobs >= config.jobs_burst as f64)
            && (config.cycles_per_second == 0 || self.cycles >= config.cycles_burst as f64)
    }

    /// Takes one job and `cycles`, or says which quota is short.
    fn take(&mut self, config: &Quota, signer: Address, cycles: u64) -> Result<(), QuotaError> {
        let wait = |short: f64, rate: u64| Duration::from_micros((short / rate as f64 * 1e6).max(0.0).ceil() as u64);
        if config.jobs_per_second > 0 && self.jobs < 1.0 {
            return Err(QuotaError::Jobs {
                signer,
                per_second: config.jobs_per_second,
                burst: config.jobs_burst,
                retry_after: wait(1.0 - self.jobs, config.jobs_per_second),
            });
        }
        if config.cycles_per_second > 0 && self.cycles < cycles as f64 {
            return Err(QuotaError::Cycles {
                signer,
                asked: cycles,
                per_second: config.cycles_per_second,
                burst: config.cycles_burst,
                retry_after: wait(cycles as f64 - self.cycles, config.cycles_per_second),
            });
        }
        if config.jobs_per_second > 0 {
            self.jobs -= 1.0;
        }
        if config.cycles_per_second > 0 {
            self.cycles -= cycles as f64;
        }
        Ok(())
    }

    fn give_back(&mut self, config: &Quota, cycles: u64) {
        if config.jobs_per_second > 0 {
            self.jobs = (self.jobs + 1.0).min(config.jobs_burst as f64);
        }
        if config.cycles_per_second > 0 {
            self.cycles = (self.cycles + cycles as f64).min(config.cycles_burst as f64);
        }
    }
}

/// The buckets of every tracked signer.
#[derive(Debug)]
struct Table {
    buckets: HashMap<Address, Bucket>,
    /// Shared by the signers that found the table full.
    overflow: Bucket,
    last_sweep: Option<Instant>,
}

/// Every signer's quotas.
#[derive(Debug)]
pub(crate) struct Quotas {
    config: Quota,
    table: Mutex<Table>,
}

impl Quotas {
    /// Quotas as `config` sets them.
    pub(crate) fn new(config: Quota) -> Quotas {
        let now = Instant::now();
        let table = Table { buckets: HashMap::new(), overflow: Bucket::full(&config, now), last_sweep: None };
        Quotas { config, table: Mutex::new(table) }
    }

    fn off(&self) -> bool {
        self.config.jobs_per_second == 0 && self.config.cycles_per_second == 0
    }

    /// Charges `signer` one job of `cycles` (its `maxCycles`) at `now`.
    pub(crate) fn charge(&self, signer: Address, cycles: u64, now: Instant) -> Result<Charge, QuotaError> {
        if self.off() {
            return Ok(Charge { signer, cycles, overflow: false, free: true });
        }
        let config = &self.config;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let table = &mut *table;
        if !table.buckets.contains_key(&signer) && table.buckets.len() >= config.max_signers {
            let due = table.last_sweep.is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_EVERY);
            if due {
                table.last_sweep = Some(now);
                table.buckets.retain(|_, bucket| {
                    bucket.refill(config, now);
                    !bucket.is_full(config)
                });
            }
        }
        let overflow = !table.buckets.contains_key(&signer) && table.buckets.len() >= config.max_signers;
        let bucket = if overflow {
            &mut table.overflow
        } else {
            table.buckets.entry(signer).or_insert_with(|| Bucket::full(config, now))
        };
        bucket.refill(config, now);
        bucket.take(config, signer, cycles)?;
        Ok(Charge { signer, cycles, overflow, free: false })
    }

    /// Gives back what `charge` took: its request was refused after all.
    pub(crate) fn refund(&self, charge: Charge) {
        if charge.free {
            return;
        }
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = if charge.overflow { Some(&mut table.overflow) } else { table.buckets.get_mut(&charge.signer) };
        if let Some(bucket) = bucket {
            bucket.give_back(&self.config, charge.cycles);
        }
    }

    /// Signers tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(jobs_per_second: u64, jobs_burst: u64, cycles_per_second: u64, cycles_burst: u64) -> Quota {
        Quota { jobs_per_second, jobs_burst, cycles_per_second, cycles_burst, max_signers: 4 }
    }

    fn signer(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    #[test]
    fn a_signer_over_its_job_quota_is_refused_while_another_passes() {
        let quotas = Quotas::new(quota(2, 3, 0, 0));
        let now = Instant::now();
        for _ in 0..3 {
            quotas.charge(signer(1), 10, now).unwrap();
        }
        let err = quotas.charge(signer(1), 10, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("quota: signer {} is over its quota of 2 jobs per second (burst 3); retry in 500 ms", signer(1))
        );
        quotas.charge(signer(2), 10, now).unwrap();
        // Half a second later one job's worth is back, and only one.
        let later = now + Duration::from_millis(500);
        quotas.charge(signer(1), 10, later).unwrap();
        assert!(matches!(quotas.charge(signer(1), 10, later), Err(QuotaError::Jobs { .. })));
    }

    #[test]
    fn cycles_are_charged_by_max_cycles_and_refunds_give_them_back() {
        let quotas = Quotas::new(quota(0, 0, 1_000, 5_000));
        let now = Instant::now();
        let first = quotas.charge(signer(1), 4_000, now).unwrap();
        let err = quotas.charge(signer(1), 2_000, now).unwrap_err();
        assert_eq!(
            err,
            QuotaError::Cycles {
                signer: signer(1),
                asked: 2_000,
                per_second: 1_000,
                burst: 5_000,
                retry_after: Duration::from_millis(1_000)
            }
        );
        assert!(err.to_string().contains("this job asks for 2000 cycles"), "{err}");
        quotas.refund(first);
        quotas.charge(signer(1), 5_000, now).unwrap();
        // Refunds never raise a bucket over its burst.
        let small = quotas.charge(signer(2), 1, now).unwrap();
        quotas.refund(small);
        quotas.refund(small);
        assert!(quotas.charge(signer(2), 5_000, now).is_ok());
        assert!(quotas.charge(signer(2), 1, now).is_err());
    }

    #[test]
    fn quotas_off_track_nothing() {
        let quotas = Quotas::new(quota(0, 0, 0, 0));
        let now = Instant::now();
        for n in 0..100 {
            quotas.charge(signer(n), u64::MAX, now).unwrap();
        }
        assert_eq!(quotas.tracked(), 0);
    }

    #[test]
    fn many_signers_are_bounded_idle_ones_forgotten_new_ones_share_one_bucket() {
        let quotas = Quotas::new(quota(1, 2, 0, 0));
        let now = Instant::now();
        for n in 1..=4 {
            quotas.charge(signer(n), 0, now).unwrap();
        }
        // The table is full of active signers: new ones share the overflow
        // bucket (burst 2), and the tracked ones keep theirs.
        quotas.charge(signer(10), 0, now).unwrap();
        quotas.charge(signer(11), 0, now).unwrap();
        assert!(matches!(quotas.charge(signer(12), 0, now), Err(QuotaError::Jobs { .. })));
        assert_eq!(quotas.tracked(), 4);
        quotas.charge(signer(1), 0, now).unwrap();
        // Two seconds on, every bucket is full again: the next newcomer
        // sweeps them away and gets its own.
        let later = now + Duration::from_secs(2);
        quotas.charge(signer(13), 0, later).unwrap();
        assert_eq!(quotas.tracked(), 1);
        for n in 20..200 {
            let _ = quotas.charge(signer(n), 0, later + Duration::from_secs(u64::from(n) * 2));
        }
        assert!(quotas.tracked() <= 4);
    }
}
