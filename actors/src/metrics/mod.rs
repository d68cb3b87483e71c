//! Per-actor and engine-wide metrics, shared by every actor.
//!
//! Each actor, named by an [`ActorName`], owns an [`ActorMetrics`]: its
//! counted mailbox (`pool::Mailbox`) counts a message in as it is sent, the
//! actor counts it out with its handling time ([`ActorMetrics::handled`]);
//! the difference is the mailbox depth. Actors that take work in by
//! themselves (the api's requests, the listener's logs) count it in with
//! [`ActorMetrics::received`].
//! [`Metrics::snapshot`] turns the counters into what `coproc_metrics`
//! serves, and [`prometheus`] renders the same figures as text.

mod histogram;
pub(crate) mod prometheus;

pub(crate) use histogram::Histogram;

use crate::program::{Isa, ProgramId};
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram as Buckets};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The engine's actors, as metrics name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ActorName {
    /// The socket server (a message is a request).
    Api,
    /// Request signature recovery.
    Verifier,
    /// Programs.
    Registry,
    /// The VM pool.
    Executor,
    /// Result signing and recording.
    Submitter,
    /// Onchain settlement.
    Relayer,
    /// Onchain intake (a message is an event log).
    Listener,
    /// What the engine shares with the other engines of its cluster.
    Peers,
}

impl ActorName {
    /// Every actor.
    pub(crate) const ALL: [ActorName; 8] = [
        ActorName::Api,
        ActorName::Verifier,
        ActorName::Registry,
        ActorName::Executor,
        ActorName::Submitter,
        ActorName::Relayer,
        ActorName::Listener,
        ActorName::Peers,
    ];

    /// The lowercase name metrics and `debug_panic` use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ActorName::Api => "api",
            ActorName::Verifier => "verifier",
            ActorName::Registry => "registry",
            ActorName::Executor => "executor",
            ActorName::Submitter => "submitter",
            ActorName::Relayer => "relayer",
            ActorName::Listener => "listener",
            ActorName::Peers => "peers",
        }
    }
}

impl std::str::FromStr for ActorName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        ActorName::ALL.into_iter().find(|actor| actor.as_str() == name).ok_or_else(|| format!("no actor {name:?}"))
    }
}

impl std::fmt::Display for ActorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The counters of one actor.
#[derive(Debug, Default)]
pub(crate) struct ActorMetrics {
    received: AtomicU64,
    handled: AtomicU64,
    errors: AtomicU64,
    restarts: AtomicU64,
    handling: Histogram,
}

impl ActorMetrics {
    /// A message was sent to the actor (its mailbox counts this), or the
    /// actor took in a piece of work by itself.
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// The actor finished a message after `elapsed`; `ok` is false when the
    /// message ended in an error.
    pub(crate) fn handled(&self, elapsed: Duration, ok: bool) {
        self.handling.record(elapsed.as_micros() as u64);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// A failure outside any one message (the node was unreachable, say).
    pub(crate) fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The supervisor restarted the actor.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Restarts so far.
    pub(crate) fn restarts(&self) -> u64 {
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
pub(crate) struct EngineCounters {
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
    /// Settlement transactions sent and not yet mined (a gauge).
    pub relay_in_flight: AtomicU64,
    /// Results the relayer holds: executed, not yet confirmed onchain or
    /// dead-lettered (a gauge).
    pub relay_backlog: AtomicU64,
    /// Jobs found settled onchain by someone else (`already-settled`).
    pub already_settled: AtomicU64,
    /// Settlement transactions sent (replacements not counted).
    pub relay_transactions: AtomicU64,
    /// Results those transactions carried (over `relay_transactions`: the
    /// average batch size).
    pub relay_batched_results: AtomicU64,
    /// Stuck transactions replaced with higher fees.
    pub relay_replacements: AtomicU64,
    /// Fees paid by the settlement transactions whose receipts were read
    /// (a sample: one a relay round, and every one with a failure), in gwei.
    pub relay_fee_gwei: AtomicU64,
    /// Gas used by those transactions.
    pub relay_gas_used: AtomicU64,
    /// Results those transactions carried.
    pub relay_sampled_results: AtomicU64,
    /// The lowest relayer key balance, in gwei (a gauge).
    pub relay_balance_gwei: AtomicU64,
    /// 1 while that balance covers fewer than `chain.low_balance_batches`
    /// full batches at current fees (a gauge).
    pub relay_low_balance: AtomicU64,
    /// Consumers whose ordered relay waits on a missing or failed nonce
    /// (a gauge).
    pub relay_blocked_consumers: AtomicU64,
    /// `JobCreated` events turned into jobs.
    pub onchain_jobs: AtomicU64,
    /// The last block the listener has read (a gauge).
    pub listener_block: AtomicU64,
    /// TCP connections closed because their first request was not a
    /// `coproc_auth` with the right token.
    pub auth_failures: AtomicU64,
    /// Jobs refused because their signer was over its jobs-per-second quota.
    pub quota_refused_jobs: AtomicU64,
    /// Jobs refused because their signer was over its cycles-per-second quota.
    pub quota_refused_cycles: AtomicU64,
    /// 1 while the store's disk is below `store.min_free_bytes` (a gauge).
    pub disk_full: AtomicU64,
    /// Free bytes on the store's disk at the last measure (a gauge).
    pub disk_free_bytes: AtomicU64,
    /// 1 once sled has failed and the store refuses writes (a gauge).
    pub store_broken: AtomicU64,
    /// Jobs quarantined after `executor.max_attempts` host panics.
    pub quarantined: AtomicU64,
    /// `coproc_call` dry runs the executors ran (none of them is a job).
    pub dry_runs: AtomicU64,
    /// Cluster mode: jobs this engine pulled from the cluster's queue and
    /// ran (or found run here before).
    pub cluster_jobs_run: AtomicU64,
    /// Cluster mode: jobs whose recorded result is this engine's.
    pub cluster_results_recorded: AtomicU64,
    /// Cluster mode: jobs offered to this engine again (another engine, or
    /// this one, took them before and did not ack).
    pub cluster_redeliveries: AtomicU64,
    /// Cluster mode: jobs in the cluster's queue not yet acked by any
    /// engine (a gauge, sampled every second).
    pub cluster_jobs_queued: AtomicU64,
    /// Cluster mode: results this engine took from the relay queue and saw
    /// through to their end (settled, found settled, cancelled or
    /// dead-lettered).
    pub cluster_relays_ended: AtomicU64,
    /// Cluster mode: results whose relay this engine holds now (a gauge).
    pub cluster_relays_held: AtomicU64,
    /// Cluster mode: consumers whose ordered results this engine relays
    /// (leases held, a gauge).
    pub cluster_leases_held: AtomicU64,
    /// Cluster mode: results in the relay queue not yet acked by any engine
    /// (a gauge, sampled every second).
    pub cluster_relays_queued: AtomicU64,
    /// Jobs the VM ran (to an outcome, done or failed), per ISA
    /// ([`ISAS`] order).
    pub executor_jobs_by_isa: [AtomicU64; ISAS.len()],
    /// Guest instructions (cycles) those jobs executed, per ISA.
    pub executor_cycles_by_isa: [AtomicU64; ISAS.len()],
}

/// Every ISA, in the order of the per-ISA counters.
pub(crate) const ISAS: [Isa; 2] = [Isa::Rv32im, Isa::Rv64im];

/// Where an ISA's figures are in the per-ISA counters.
fn isa_slot(isa: Isa) -> usize {
    match isa {
        Isa::Rv32im => 0,
        Isa::Rv64im => 1,
    }
}

impl EngineCounters {
    /// The VM ran a job of `isa` to an outcome, in `cycles` cycles.
    pub(crate) fn executed(&self, isa: Isa, cycles: u64) {
        let slot = isa_slot(isa);
        self.executor_jobs_by_isa[slot].fetch_add(1, Ordering::Relaxed);
        self.executor_cycles_by_isa[slot].fetch_add(cycles, Ordering::Relaxed);
    }

    /// A per-ISA counter as a map from the ISA's name, every ISA present.
    fn by_isa(counters: &[AtomicU64; ISAS.len()]) -> BTreeMap<String, u64> {
        ISAS.iter().map(|isa| (isa.to_string(), counters[isa_slot(*isa)].load(Ordering::Relaxed))).collect()
    }
}

/// The figures at one instant, for rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    executed: u64,
    settled: u64,
    cycles: u64,
    busy_micros: u64,
}

/// How far back rates look.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Per-program histograms of job cycles and run times (served by the
/// metrics listener; labelled by program ID).
#[derive(Debug, Clone)]
pub(crate) struct ProgramHistograms {
    pub(crate) cycles: ProgramFamily,
    pub(crate) seconds: ProgramFamily,
}

/// A histogram per program.
pub(crate) type ProgramFamily = Family<[(&'static str, ProgramLabel); 1], Buckets, fn() -> Buckets>;

/// A program ID as a label value: written out (0x-hex) only when scraped,
/// so observing a job allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ProgramLabel(ProgramId);

impl EncodeLabelValue for ProgramLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        write!(encoder, "{}", self.0)
    }
}

impl ProgramHistograms {
    fn new() -> ProgramHistograms {
        // 1,000 cycles to 6.7e10, and 100 µs to 105 s, each bucket 4x the last.
        fn cycles() -> Buckets {
            Buckets::new(exponential_buckets(1e3, 4.0, 13))
        }
        fn seconds() -> Buckets {
            Buckets::new(exponential_buckets(1e-4, 4.0, 11))
        }
        ProgramHistograms {
            cycles: Family::new_with_constructor(cycles),
            seconds: Family::new_with_constructor(seconds),
        }
    }

    /// A job of `program` ran to an outcome in `cycles`, taking `took`.
    pub(crate) fn observe(&self, program: &ProgramId, cycles: u64, took: Duration) {
        let labels = [("program", ProgramLabel(*program))];
        self.cycles.get_or_create(&labels).observe(cycles as f64);
        self.seconds.get_or_create(&labels).observe(took.as_secs_f64());
    }
}

/// Every metric of the engine.
#[derive(Debug)]
pub(crate) struct Metrics {
    actors: [Arc<ActorMetrics>; ActorName::ALL.len()],
    /// Engine-wide job counters.
    pub engine: EngineCounters,
    /// Per-program histograms of job cycles and run times.
    pub(crate) programs: ProgramHistograms,
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
    /// Settlement transactions sent and not yet mined.
    #[serde(default)]
    pub relay_in_flight: u64,
    /// Results the relayer holds, not yet confirmed or dead-lettered.
    #[serde(default)]
    pub relay_backlog: u64,
    /// Results confirmed onchain per second over the last few seconds.
    #[serde(default)]
    pub settled_per_second: f64,
    /// Jobs found settled onchain by someone else.
    #[serde(default)]
    pub jobs_already_settled: u64,
    /// Settlement transactions sent (replacements not counted).
    #[serde(default)]
    pub relay_transactions: u64,
    /// Average results per settlement transaction.
    #[serde(default)]
    pub relay_average_batch: f64,
    /// Stuck transactions replaced with higher fees.
    #[serde(default)]
    pub relay_replacements: u64,
    /// Fees paid per result settled, in gwei (from a sample of receipts).
    #[serde(default)]
    pub relay_fee_per_result_gwei: f64,
    /// Gas used per result settled (from the same sample).
    #[serde(default)]
    pub relay_gas_per_result: f64,
    /// The lowest relayer key balance, in gwei.
    #[serde(default)]
    pub relay_balance_gwei: u64,
    /// Whether that balance covers fewer than `chain.low_balance_batches`
    /// full batches.
    #[serde(default)]
    pub relay_low_balance: bool,
    /// Consumers whose ordered relay is blocked.
    #[serde(default)]
    pub relay_blocked_consumers: u64,
    /// Jobs taken from `JobCreated` events.
    #[serde(default)]
    pub onchain_jobs: u64,
    /// The last block the listener has read.
    #[serde(default)]
    pub listener_block: u64,
    /// TCP connections refused for a missing or wrong api token.
    #[serde(default)]
    pub api_auth_failures: u64,
    /// Jobs refused: their signer was over its jobs-per-second quota.
    #[serde(default)]
    pub quota_refused_jobs: u64,
    /// Jobs refused: their signer was over its cycles-per-second quota.
    #[serde(default)]
    pub quota_refused_cycles: u64,
    /// Whether the store's disk is below `store.min_free_bytes`: new jobs
    /// are refused until space returns.
    #[serde(default)]
    pub disk_full: bool,
    /// Free bytes on the store's disk.
    #[serde(default)]
    pub disk_free_bytes: u64,
    /// Whether sled has failed: the store refuses writes until a restart.
    #[serde(default)]
    pub store_broken: bool,
    /// Jobs quarantined after `executor.max_attempts` host panics.
    #[serde(default)]
    pub jobs_quarantined: u64,
    /// `coproc_call` dry runs run (never counted as jobs).
    #[serde(default)]
    pub dry_runs: u64,
    /// Cluster mode: jobs this engine pulled from the cluster and ran.
    #[serde(default)]
    pub cluster_jobs_run: u64,
    /// Cluster mode: jobs whose recorded result is this engine's.
    #[serde(default)]
    pub cluster_results_recorded: u64,
    /// Cluster mode: jobs offered to this engine again.
    #[serde(default)]
    pub cluster_redeliveries: u64,
    /// Cluster mode: jobs in the cluster's queue, not yet acked.
    #[serde(default)]
    pub cluster_jobs_queued: u64,
    /// Cluster mode: results this engine relayed to their end.
    #[serde(default)]
    pub cluster_relays_ended: u64,
    /// Cluster mode: results whose relay this engine holds now.
    #[serde(default)]
    pub cluster_relays_held: u64,
    /// Cluster mode: consumers whose ordered results this engine relays.
    #[serde(default)]
    pub cluster_leases_held: u64,
    /// Cluster mode: results in the relay queue, not yet acked.
    #[serde(default)]
    pub cluster_relays_queued: u64,
    /// Jobs the VM ran (done or failed), by ISA: `{"rv32im": N, "rv64im": M}`,
    /// every ISA present.
    #[serde(default)]
    pub executor_jobs_by_isa: BTreeMap<String, u64>,
    /// Guest instructions (cycles) those jobs executed, by ISA.
    #[serde(default)]
    pub executor_cycles_by_isa: BTreeMap<String, u64>,
}

impl Metrics {
    /// Metrics for every actor and `executors` executor threads.
    pub(crate) fn new(executors: usize) -> Metrics {
        let now = Instant::now();
        Metrics {
            actors: Default::default(),
            engine: EngineCounters::default(),
            programs: ProgramHistograms::new(),
            started: now,
            executors,
            samples: Mutex::new(VecDeque::from([Sample {
                at: now,
                executed: 0,
                settled: 0,
                cycles: 0,
                busy_micros: 0,
            }])),
        }
    }

    /// The counters of an actor.
    pub(crate) fn actor(&self, name: ActorName) -> &Arc<ActorMetrics> {
        &self.actors[name as usize]
    }

    /// Time since start-up.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn current(&self) -> Sample {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Sample {
            at: Instant::now(),
            executed: load(&self.engine.done) + load(&self.engine.failed),
            settled: load(&self.engine.relayed),
            cycles: load(&self.engine.cycles),
            busy_micros: load(&self.engine.executor_busy_micros),
        }
    }

    /// Records a sample for rates; the supervisor calls this every second.
    pub(crate) fn sample(&self) {
        let now = self.current();
        if let Ok(mut samples) = self.samples.lock() {
            samples.push_back(now);
            while samples.len() > 2 && samples.get(1).is_some_and(|s| now.at.duration_since(s.at) >= RATE_WINDOW) {
                samples.pop_front();
            }
        }
    }

    /// Every figure now. `sled_bytes` comes from the store.
    pub(crate) fn snapshot(&self, sled_bytes: u64) -> MetricsSnapshot {
        let now = self.current();
        let oldest = self.samples.lock().ok().and_then(|s| s.front().copied()).unwrap_or(now);
        let seconds = now.at.duration_since(oldest.at).as_secs_f64().max(1e-3);
        let per_second = |new: u64, old: u64| new.saturating_sub(old) as f64 / seconds;
        let utilization = per_second(now.busy_micros, oldest.busy_micros) / 1e6 / self.executors.max(1) as f64;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            actors: ActorName::ALL
                .iter()
                .map(|name| (name.as_str().to_owned(), self.actor(*name).snapshot()))
                .collect(),
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
                relay_backlog: load(&self.engine.relay_backlog),
                settled_per_second: per_second(now.settled, oldest.settled),
                jobs_already_settled: load(&self.engine.already_settled),
                relay_transactions: load(&self.engine.relay_transactions),
                relay_average_batch: ratio(
                    load(&self.engine.relay_batched_results),
                    load(&self.engine.relay_transactions),
                ),
                relay_replacements: load(&self.engine.relay_replacements),
                relay_fee_per_result_gwei: ratio(
                    load(&self.engine.relay_fee_gwei),
                    load(&self.engine.relay_sampled_results),
                ),
                relay_gas_per_result: ratio(
                    load(&self.engine.relay_gas_used),
                    load(&self.engine.relay_sampled_results),
                ),
                relay_balance_gwei: load(&self.engine.relay_balance_gwei),
                relay_low_balance: load(&self.engine.relay_low_balance) != 0,
                relay_blocked_consumers: load(&self.engine.relay_blocked_consumers),
                onchain_jobs: load(&self.engine.onchain_jobs),
                listener_block: load(&self.engine.listener_block),
                api_auth_failures: load(&self.engine.auth_failures),
                quota_refused_jobs: load(&self.engine.quota_refused_jobs),
                quota_refused_cycles: load(&self.engine.quota_refused_cycles),
                disk_full: load(&self.engine.disk_full) != 0,
                disk_free_bytes: load(&self.engine.disk_free_bytes),
                store_broken: load(&self.engine.store_broken) != 0,
                jobs_quarantined: load(&self.engine.quarantined),
                dry_runs: load(&self.engine.dry_runs),
                cluster_jobs_run: load(&self.engine.cluster_jobs_run),
                cluster_results_recorded: load(&self.engine.cluster_results_recorded),
                cluster_redeliveries: load(&self.engine.cluster_redeliveries),
                cluster_jobs_queued: load(&self.engine.cluster_jobs_queued),
                cluster_relays_ended: load(&self.engine.cluster_relays_ended),
                cluster_relays_held: load(&self.engine.cluster_relays_held),
                cluster_leases_held: load(&self.engine.cluster_leases_held),
                cluster_relays_queued: load(&self.engine.cluster_relays_queued),
                executor_jobs_by_isa: EngineCounters::by_isa(&self.engine.executor_jobs_by_isa),
                executor_cycles_by_isa: EngineCounters::by_isa(&self.engine.executor_cycles_by_isa),
            },
        }
    }
}

/// `total / count`, 0 when nothing was counted.
fn ratio(total: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_names_round_trip() {
        for name in ActorName::ALL {
            assert_eq!(name.as_str().parse::<ActorName>(), Ok(name));
        }
        assert_eq!("executer".parse::<ActorName>(), Err("no actor \"executer\"".to_owned()));
    }

    #[test]
    fn relay_figures_are_per_result_and_per_transaction() {
        let metrics = Metrics::new(1);
        let engine = &metrics.engine;
        assert_eq!(metrics.snapshot(0).engine.relay_average_batch, 0.0, "nothing sent: no division by zero");
        engine.relayed.store(10, Ordering::Relaxed);
        engine.relay_transactions.store(2, Ordering::Relaxed);
        engine.relay_batched_results.store(10, Ordering::Relaxed);
        engine.relay_fee_gwei.store(5_000, Ordering::Relaxed);
        engine.relay_gas_used.store(2_000_000, Ordering::Relaxed);
        engine.relay_sampled_results.store(10, Ordering::Relaxed);
        engine.relay_low_balance.store(1, Ordering::Relaxed);
        engine.already_settled.store(3, Ordering::Relaxed);
        let snapshot = metrics.snapshot(0);
        let figures = &snapshot.engine;
        assert_eq!(
            (figures.relay_average_batch, figures.relay_fee_per_result_gwei, figures.relay_gas_per_result),
            (5.0, 500.0, 200_000.0)
        );
        assert!(figures.relay_low_balance);
        assert_eq!(figures.jobs_already_settled, 3);
        let text = prometheus::render(&snapshot);
        assert!(text.contains("coprocessor_relay_average_batch 5.0\n"), "{text}");
        assert!(text.contains("coprocessor_jobs_already_settled_total 3\n"), "{text}");
    }

    #[test]
    fn security_refusals_are_counted_by_reason() {
        let metrics = Metrics::new(1);
        metrics.engine.auth_failures.store(2, Ordering::Relaxed);
        metrics.engine.quota_refused_jobs.store(5, Ordering::Relaxed);
        metrics.engine.quota_refused_cycles.store(7, Ordering::Relaxed);
        let snapshot = metrics.snapshot(0);
        let figures = &snapshot.engine;
        assert_eq!((figures.api_auth_failures, figures.quota_refused_jobs, figures.quota_refused_cycles), (2, 5, 7));
        let text = prometheus::render(&snapshot);
        assert!(
            text.contains("# TYPE coprocessor_api_auth_failures counter\ncoprocessor_api_auth_failures_total 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE coprocessor_quota_refused counter\n"), "{text}");
        assert!(text.contains("coprocessor_quota_refused_total{quota=\"jobs\"} 5\n"), "{text}");
        assert!(text.contains("coprocessor_quota_refused_total{quota=\"cycles\"} 7\n"), "{text}");
    }

    #[test]
    fn executions_are_counted_per_isa_in_json_and_prometheus() {
        let metrics = Metrics::new(1);
        let empty = metrics.snapshot(0);
        let zero: BTreeMap<String, u64> = [("rv32im".to_owned(), 0), ("rv64im".to_owned(), 0)].into();
        assert_eq!((&empty.engine.executor_jobs_by_isa, &empty.engine.executor_cycles_by_isa), (&zero, &zero));
        metrics.engine.executed(Isa::Rv64im, 100);
        metrics.engine.executed(Isa::Rv32im, 7);
        metrics.engine.executed(Isa::Rv64im, 23);
        let snapshot = metrics.snapshot(0);
        let figures = &snapshot.engine;
        assert_eq!(figures.executor_jobs_by_isa["rv32im"], 1);
        assert_eq!(figures.executor_jobs_by_isa["rv64im"], 2);
        assert_eq!(figures.executor_cycles_by_isa["rv32im"], 7);
        assert_eq!(figures.executor_cycles_by_isa["rv64im"], 123);
        let json = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(json["engine"]["executorJobsByIsa"], serde_json::json!({"rv32im": 1, "rv64im": 2}));
        assert_eq!(json["engine"]["executorCyclesByIsa"], serde_json::json!({"rv32im": 7, "rv64im": 123}));
        let text = prometheus::render(&snapshot);
        assert!(
            text.contains(
                "# TYPE coprocessor_executor_jobs counter\n\
                 coprocessor_executor_jobs_total{isa=\"rv32im\"} 1\n\
                 coprocessor_executor_jobs_total{isa=\"rv64im\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE coprocessor_executor_cycles counter\n\
                 coprocessor_executor_cycles_total{isa=\"rv32im\"} 7\n\
                 coprocessor_executor_cycles_total{isa=\"rv64im\"} 123\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn mailbox_depth_is_received_minus_handled() {
        let metrics = Metrics::new(2);
        let executor = metrics.actor(ActorName::Executor);
        for _ in 0..5 {
            executor.received();
        }
        executor.handled(Duration::from_micros(100), true);
        executor.handled(Duration::from_micros(300), false);
        executor.restarted();
        let snapshot = metrics.snapshot(0).actors["executor"];
        assert_eq!(metrics.snapshot(0).actors.len(), ActorName::ALL.len());
        assert_eq!((snapshot.received, snapshot.handled, snapshot.errors, snapshot.mailbox), (5, 2, 1, 3));
        assert_eq!(snapshot.restarts, 1);
        assert!((100..=300).contains(&snapshot.p50_micros), "{snapshot:?}");
    }
}
