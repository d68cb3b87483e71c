//! Per-actor and engine-wide metrics, shared by every actor.
//!
//! Each actor owns an [`ActorMetrics`]: senders count a message in
//! ([`ActorMetrics::received`]), the actor counts it out with its handling
//! time ([`ActorMetrics::handled`]); the difference is the mailbox depth.
//! [`Metrics::snapshot`] turns the counters into what `coproc_metrics`
//! serves, and [`prometheus`] renders the same figures as text.

mod histogram;
pub mod prometheus;

pub use histogram::Histogram;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The counters of one actor.
#[derive(Debug, Default)]
pub struct ActorMetrics {
    received: AtomicU64,
    handled: AtomicU64,
    errors: AtomicU64,
    restarts: AtomicU64,
    handling: Histogram,
}

impl ActorMetrics {
    /// A message was sent to the actor.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// The actor finished a message after `elapsed`; `ok` is false when the
    /// message ended in an error.
    pub fn handled(&self, elapsed: Duration, ok: bool) {
        self.handling.record(elapsed.as_micros() as u64);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// The supervisor restarted the actor.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> ActorSnapshot {
        let handled = self.handled.load(Ordering::Relaxed);
        let received = self.received.load(Ordering::Relaxed).max(handled);
        ActorSnapshot {
            received,
            handled,
            errors: self.errors.load(Ordering::Relaxed),
            mailbox: received - handled,
            p50_micros: self.handling.quantile(0.50),
            p99_micros: self.handling.quantile(0.99),
            restarts: self.restarts(),
        }
    }
}

/// Engine-wide job counters.
#[derive(Debug, Default)]
pub struct EngineCounters {
    /// Jobs acknowledged (durable).
    pub accepted: AtomicU64,
    /// Jobs executed with exit code 0.
    pub done: AtomicU64,
    /// Jobs executed that failed.
    pub failed: AtomicU64,
    /// Jobs refused with `busy`.
    pub busy: AtomicU64,
    /// Requests refused for any other reason.
    pub rejected: AtomicU64,
    /// Guest instructions (cycles) executed.
    pub cycles: AtomicU64,
    /// Time executors spent running guests, in µs.
    pub executor_busy_micros: AtomicU64,
    /// Results confirmed onchain.
    pub relayed: AtomicU64,
    /// Failed submissions (reverts, rejections, dropped transactions).
    pub relay_failures: AtomicU64,
    /// Jobs moved to the dead-letter tree.
    pub dead_lettered: AtomicU64,
    /// Jobs found cancelled onchain.
    pub cancelled: AtomicU64,
    /// Result transactions sent and not yet confirmed (a gauge).
    pub relay_in_flight: AtomicU64,
    /// Consumers whose ordered relay waits on a missing or failed nonce
    /// (a gauge).
    pub relay_blocked_consumers: AtomicU64,
    /// `JobCreated` events turned into jobs.
    pub onchain_jobs: AtomicU64,
    /// The last block the listener has read (a gauge).
    pub listener_block: AtomicU64,
}

/// The figures at one instant, for rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    executed: u64,
    cycles: u64,
    busy_micros: u64,
}

/// How far back rates look.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Every metric of the engine.
#[derive(Debug)]
pub struct Metrics {
    actors: BTreeMap<&'static str, Arc<ActorMetrics>>,
    /// Engine-wide job counters.
    pub engine: EngineCounters,
    started: Instant,
    executors: usize,
    samples: Mutex<VecDeque<Sample>>,
}

/// What `coproc_metrics` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Per actor, by name.
    pub actors: BTreeMap<String, ActorSnapshot>,
    /// Engine totals.
    pub engine: EngineSnapshot,
}

/// One actor's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorSnapshot {
    /// Messages sent to it.
    pub received: u64,
    /// Messages it finished.
    pub handled: u64,
    /// Messages that ended in an error.
    pub errors: u64,
    /// Messages waiting (received minus handled).
    pub mailbox: u64,
    /// Median handling time.
    pub p50_micros: u64,
    /// 99th percentile handling time.
    pub p99_micros: u64,
    /// Restarts by the supervisor.
    pub restarts: u64,
}

/// Engine totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineSnapshot {
    /// Jobs acknowledged.
    pub jobs_accepted: u64,
    /// Jobs done.
    pub jobs_done: u64,
    /// Jobs failed.
    pub jobs_failed: u64,
    /// Jobs refused with `busy`.
    pub jobs_busy: u64,
    /// Other refused requests.
    pub requests_rejected: u64,
    /// Jobs executed per second over the last few seconds.
    pub jobs_per_second: f64,
    /// Guest instructions per second over the last few seconds.
    pub instructions_per_second: f64,
    /// Share of executor time spent running guests, 0..=1.
    pub executor_utilization: f64,
    /// Executor threads.
    pub executors: usize,
    /// Bytes sled takes on disk.
    pub sled_bytes: u64,
    /// Seconds since start-up.
    pub uptime_seconds: u64,
    /// Results confirmed onchain.
    #[serde(default)]
    pub jobs_relayed: u64,
    /// Failed submissions.
    #[serde(default)]
    pub relay_failures: u64,
    /// Jobs moved to the dead-letter tree.
    #[serde(default)]
    pub jobs_dead_lettered: u64,
    /// Jobs cancelled onchain.
    #[serde(default)]
    pub jobs_cancelled: u64,
    /// Result transactions in flight.
    #[serde(default)]
    pub relay_in_flight: u64,
    /// Consumers whose ordered relay is blocked.
    #[serde(default)]
    pub relay_blocked_consumers: u64,
    /// Jobs taken from `JobCreated` events.
    #[serde(default)]
    pub onchain_jobs: u64,
    /// The last block the listener has read.
    #[serde(default)]
    pub listener_block: u64,
}

impl Metrics {
    /// Metrics for the named actors and `executors` executor threads.
    pub fn new(actor_names: &[&'static str], executors: usize) -> Metrics {
        let now = Instant::now();
        Metrics {
            actors: actor_names.iter().map(|name| (*name, Arc::default())).collect(),
            engine: EngineCounters::default(),
            started: now,
            executors,
            samples: Mutex::new(VecDeque::from([Sample { at: now, executed: 0, cycles: 0, busy_micros: 0 }])),
        }
    }

    /// The counters of actor `name`. Unknown names get a detached set, so a
    /// typo loses figures rather than crashing.
    pub fn actor(&self, name: &str) -> Arc<ActorMetrics> {
        self.actors.get(name).cloned().unwrap_or_default()
    }

    /// Time since start-up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn current(&self) -> Sample {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Sample {
            at: Instant::now(),
            executed: load(&self.engine.done) + load(&self.engine.failed),
            cycles: load(&self.engine.cycles),
            busy_micros: load(&self.engine.executor_busy_micros),
        }
    }

    /// Records a sample for rates; the supervisor calls this every second.
    pub fn sample(&self) {
        let now = self.current();
        if let Ok(mut samples) = self.samples.lock() {
            samples.push_back(now);
            while samples.len() > 2 && samples.get(1).is_some_and(|s| now.at.duration_since(s.at) >= RATE_WINDOW) {
                samples.pop_front();
            }
        }
    }

    /// Every figure now. `sled_bytes` comes from the store.
    pub fn snapshot(&self, sled_bytes: u64) -> MetricsSnapshot {
        let now = self.current();
        let oldest = self.samples.lock().ok().and_then(|s| s.front().copied()).unwrap_or(now);
        let seconds = now.at.duration_since(oldest.at).as_secs_f64().max(1e-3);
        let per_second = |new: u64, old: u64| new.saturating_sub(old) as f64 / seconds;
        let utilization = per_second(now.busy_micros, oldest.busy_micros) / 1e6 / self.executors.max(1) as f64;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            actors: self.actors.iter().map(|(name, m)| ((*name).to_owned(), m.snapshot())).collect(),
            engine: EngineSnapshot {
                jobs_accepted: load(&self.engine.accepted),
                jobs_done: load(&self.engine.done),
                jobs_failed: load(&self.engine.failed),
                jobs_busy: load(&self.engine.busy),
                requests_rejected: load(&self.engine.rejected),
                jobs_per_second: per_second(now.executed, oldest.executed),
                instructions_per_second: per_second(now.cycles, oldest.cycles),
                executor_utilization: utilization.min(1.0),
                executors: self.executors,
                sled_bytes,
                uptime_seconds: self.uptime().as_secs(),
                jobs_relayed: load(&self.engine.relayed),
                relay_failures: load(&self.engine.relay_failures),
                jobs_dead_lettered: load(&self.engine.dead_lettered),
                jobs_cancelled: load(&self.engine.cancelled),
                relay_in_flight: load(&self.engine.relay_in_flight),
                relay_blocked_consumers: load(&self.engine.relay_blocked_consumers),
                onchain_jobs: load(&self.engine.onchain_jobs),
                listener_block: load(&self.engine.listener_block),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_depth_is_received_minus_handled() {
        let metrics = Metrics::new(&["executor"], 2);
        let executor = metrics.actor("executor");
        for _ in 0..5 {
            executor.received();
        }
        executor.handled(Duration::from_micros(100), true);
        executor.handled(Duration::from_micros(300), false);
        executor.restarted();
        let snapshot = metrics.snapshot(0).actors["executor"];
        assert_eq!((snapshot.received, snapshot.handled, snapshot.errors, snapshot.mailbox), (5, 2, 1, 3));
        assert_eq!(snapshot.restarts, 1);
        assert!((100..=300).contains(&snapshot.p50_micros), "{snapshot:?}");
    }
}
