//! The gate of `coproc_call` dry runs: an engine-wide rate (a token bucket
//! of `api.calls_per_second`, a second's worth of burst) and a bound on dry
//! runs in flight (`api.max_calls_in_flight`), so that free runs, which
//! need no signature, cannot starve the jobs someone pays for.

use super::wire::{codes, RpcError};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits dry runs.
#[derive(Debug)]
pub(crate) struct CallGate {
    per_second: u32,
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Held while a dry run is in flight.
#[derive(Debug)]
pub(crate) struct CallPermit {
    _slot: OwnedSemaphorePermit,
}

impl CallGate {
    pub(crate) fn new(per_second: u32, max_in_flight: usize, now: Instant) -> CallGate {
        CallGate {
            per_second,
            bucket: Mutex::new(Bucket { tokens: f64::from(per_second), at: now }),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }

    /// Lets one dry run start at `now`, or says why not: `busy` when
    /// `max_calls_in_flight` are running, `quota` over the rate.
    pub(crate) fn enter(&self, now: Instant) -> Result<CallPermit, RpcError> {
        let slot = Arc::clone(&self.in_flight).try_acquire_owned().map_err(|_| {
            RpcError::new(
                codes::BUSY,
                format!("{} dry runs are in flight (api.max_calls_in_flight); retry later", self.max_in_flight),
            )
        })?;
        let mut bucket = self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let rate = f64::from(self.per_second);
        let seconds = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + seconds * rate).min(rate);
        bucket.at = bucket.at.max(now);
        if bucket.tokens < 1.0 {
            let retry_ms = ((1.0 - bucket.tokens) / rate * 1000.0).ceil() as u64;
            return Err(RpcError::new(
                codes::QUOTA,
                format!(
                    "dry runs are over api.calls_per_second ({}/s, engine-wide); retry in {retry_ms} ms",
                    self.per_second
                ),
            ));
        }
        bucket.tokens -= 1.0;
        Ok(CallPermit { _slot: slot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_rate_allows_a_second_of_burst_then_refills() {
        let start = Instant::now();
        let gate = CallGate::new(3, 10, start);
        for _ in 0..3 {
            drop(gate.enter(start).expect("within the burst"));
        }
        let err = gate.enter(start).expect_err("over the rate");
        assert_eq!(err.code, codes::QUOTA);
        assert_eq!(err.message, "dry runs are over api.calls_per_second (3/s, engine-wide); retry in 334 ms");
        drop(gate.enter(start + Duration::from_millis(334)).expect("a token is back"));
    }

    #[test]
    fn dry_runs_in_flight_are_bounded_and_a_finished_one_frees_its_slot() {
        let start = Instant::now();
        let gate = CallGate::new(100, 2, start);
        let (first, _second) = (gate.enter(start).expect("slot 1"), gate.enter(start).expect("slot 2"));
        let err = gate.enter(start).expect_err("no slot");
        assert_eq!(err.code, codes::BUSY);
        assert_eq!(err.message, "2 dry runs are in flight (api.max_calls_in_flight); retry later");
        drop(first);
        drop(gate.enter(start).expect("a slot is free again"));
    }
}
