//! What cluster mode costs, on real `nats-server`s and real engine
//! processes (the bench profile's binary), on this one machine.
//!
//! - **Per job**: one engine alone, one engine on a one-server cluster,
//!   and one engine on a three-server cluster (replicas 3), under the
//!   same load: pipelined `square-root` jobs until every result is durable
//!   (jobs/s, the median of interleaved rounds), then submit-to-result
//!   latency at one paced rate for all three (p50, p99).
//! - **Failover**: the time from kill -9 of an engine holding jobs to their
//!   redelivery to another engine, for two ack waits.
//! - **Heavy jobs**: jobs of about 10^8 cycles each (`fibonacci`) over
//!   three engines, each engine's share, against one engine alone.
//!
//! `cargo bench --bench cluster` (`make bench` runs it with the others);
//! `CLUSTER_BENCH_ROUNDS` (default 5) sets the rounds, and
//! `CLUSTER_BENCH_ONLY=cost|failover|heavy` runs one section.

#[path = "../tests/common/mod.rs"]
mod common;

use common::engine::{u64_job, Engine};
use common::nats::NatsCluster;
use common::{paced, percentile, pipeline};
use coprocessor::request::JobRequest;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::SubmitJob;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 4;
const WINDOW: usize = 256;
const BATCH: u64 = 4_000;

/// The consumer signer every engine accepts.
fn app_signer() -> Signer {
    Signer::from_bytes(&[0x42; 32]).expect("key")
}

/// An engine under load, and how to count what it finished.
struct Subject {
    name: &'static str,
    engine: Engine,
    program: ProgramId,
    clustered: bool,
}

static NONCE: AtomicU64 = AtomicU64::new(1);

impl Subject {
    fn requests(&self, count: u64, wait: bool) -> Vec<SubmitJob> {
        let first = NONCE.fetch_add(count, Ordering::Relaxed);
        let signer = app_signer();
        (first..first + count)
            .map(|nonce| {
                let mut job = u64_job(self.program, signer.address(), nonce, nonce.wrapping_mul(0x9E37_79B9));
                job.max_cycles = 1_000_000;
                let mut signed = job.sign(&signer);
                signed.wait = wait;
                signed
            })
            .collect()
    }

    /// Jobs finished: executed here (alone), or run and recorded in the
    /// cluster by this engine.
    fn finished(&self) -> u64 {
        let e = self.engine.metrics().engine;
        if self.clustered {
            e.cluster_jobs_run
        } else {
            e.jobs_done + e.jobs_failed
        }
    }

    /// Completed jobs/s for one pipelined batch.
    fn round(&self) -> f64 {
        let requests = self.requests(BATCH, false);
        let before = self.finished();
        let start = Instant::now();
        pipeline(&self.engine.socket(), CONNECTIONS, WINDOW, requests);
        while self.finished() < before + BATCH {
            std::thread::sleep(Duration::from_millis(2));
        }
        BATCH as f64 / start.elapsed().as_secs_f64()
    }
}

fn engine(dir: &Path, name: &str, cluster: Option<(&NatsCluster, &str)>) -> Engine {
    let data = dir.join(name);
    coprocessor_actors::create_data_dir(&data).expect("data dir");
    let operator = dir.join("operator.key");
    coprocessor_actors::keys::load_or_generate(&operator).expect("operator key");
    std::fs::copy(&operator, data.join(coprocessor_actors::keys::OPERATOR_KEY)).expect("copy key");
    let mut config = format!("[offchain]\nallowed_signers = [\"{}\"]\n", app_signer().address());
    if let Some((nats, extra)) = cluster {
        config += &nats.engine_config(name);
        config += extra;
    }
    Engine::start_with(&data, Some(&config), &[])
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn per_job_cost(rounds: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let one = NatsCluster::start(1);
    let three = NatsCluster::start_beside(&one, 3);
    let alone = engine(dir.path(), "alone", None);
    let on_one = engine(dir.path(), "one-server", Some((&one, "")));
    let on_three = engine(dir.path(), "three-servers", Some((&three, "")));
    let subjects: Vec<Subject> = [("alone", alone, false), ("cluster, 1 server", on_one, true)]
        .into_iter()
        .chain([("cluster, 3 servers R3", on_three, true)])
        .map(|(name, engine, clustered)| {
            let program = engine.submit_program("square-root");
            Subject { name, engine, program, clustered }
        })
        .collect();
    // Warm-up, then interleaved rounds.
    for subject in &subjects {
        subject.round();
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for _ in 0..rounds {
        for (subject, rates) in subjects.iter().zip(&mut rates) {
            rates.push(subject.round());
        }
    }
    let medians: Vec<f64> = rates.into_iter().map(median).collect();
    println!("\nper-job cost: {BATCH} square-root jobs pipelined on {CONNECTIONS} connections, until all are durable");
    println!("(medians of {rounds} interleaved rounds)");
    for (subject, rate) in subjects.iter().zip(&medians) {
        println!("  {:<24} {:>8.0} jobs/s  ({:.2}x alone)", subject.name, rate, medians[0] / rate);
    }
    // Latency at one paced rate for all: half the slowest's rate.
    let rate = medians.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    println!("submit-to-result latency (wait: true) at {rate:.0} jobs/s for 5 s:");
    for subject in &subjects {
        let per_connection = (rate * 5.0) as u64 / CONNECTIONS as u64;
        let batches = (0..CONNECTIONS).map(|_| subject.requests(per_connection, true)).collect();
        let mut latencies = paced(&subject.engine.socket(), batches, rate);
        latencies.sort_unstable();
        println!(
            "  {:<24} p50 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}",
            subject.name,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
}

/// A job of about `cycles` instructions of `fibonacci` (fifteen per step).
fn heavy(program: ProgramId, nonce: u64, cycles: u64) -> SubmitJob {
    let signer = app_signer();
    let job = JobRequest { max_cycles: cycles * 2, ..u64_job(program, signer.address(), nonce, cycles / 15) };
    job.sign(&signer)
}

fn failover(ack_wait_ms: u64) -> Duration {
    let dir = tempfile::tempdir().expect("dir");
    let nats = NatsCluster::start(1);
    let extra = format!("ack_wait_ms = {ack_wait_ms}\n");
    // The first engine alone pulls two long jobs; then the second starts.
    let first = engine(dir.path(), "node-0", Some((&nats, &extra)));
    let program = first.submit_program("fibonacci");
    let jobs: Vec<SubmitJob> =
        (0..2).map(|_| heavy(program, NONCE.fetch_add(1, Ordering::Relaxed), 5_000_000_000)).collect();
    pipeline(&first.socket(), 1, 2, jobs);
    wait_for("the first engine running both jobs", Duration::from_secs(30), || {
        first.metrics().engine.jobs_accepted >= 2
    });
    let second = engine(dir.path(), "node-1", Some((&nats, &extra)));
    assert!(second.holds_within(&program, Duration::from_secs(30)), "the program on the second engine");
    let killed = Instant::now();
    let _ = first.kill9();
    wait_for("a redelivery", Duration::from_secs(120), || second.metrics().engine.cluster_redeliveries > 0);
    let elapsed = killed.elapsed();
    let _ = second.kill9();
    elapsed
}

fn heavy_jobs(count: u64, cycles: u64) {
    let dir = tempfile::tempdir().expect("dir");
    let nats = NatsCluster::start(3);
    let alone = engine(dir.path(), "alone", None);
    // Each engine holds no more jobs than it has executors (2 here).
    let extra = "jobs_in_flight = 2\n";
    let engines: Vec<Engine> = (0..3).map(|i| engine(dir.path(), &format!("node-{i}"), Some((&nats, extra)))).collect();
    let program = alone.submit_program("fibonacci");
    engines[0].submit_program("fibonacci");
    for engine in &engines {
        assert!(engine.holds_within(&program, Duration::from_secs(30)), "the program everywhere");
    }
    // An engine's first pull request can be lost at the servers (see
    // `cluster::queue`); its client sends the next some 6 s later. Engines
    // that just started are given that long to join.
    std::thread::sleep(Duration::from_secs(8));
    let jobs = |count: u64| -> Vec<SubmitJob> {
        (0..count).map(|_| heavy(program, NONCE.fetch_add(1, Ordering::Relaxed), cycles)).collect()
    };
    let start = Instant::now();
    pipeline(&alone.socket(), 1, 64, jobs(count));
    wait_for("the jobs alone", Duration::from_secs(600), || alone.metrics().engine.jobs_done >= count);
    let alone_time = start.elapsed();
    let start = Instant::now();
    pipeline(&engines[0].socket(), 1, 64, jobs(count));
    let run = || engines.iter().map(|engine| engine.metrics().engine.cluster_jobs_run).collect::<Vec<u64>>();
    wait_for("the jobs on the cluster", Duration::from_secs(600), || run().iter().sum::<u64>() >= count);
    let cluster_time = start.elapsed();
    let cycles_run: u64 =
        engines.iter().flat_map(|engine| engine.metrics().engine.executor_cycles_by_isa.into_values()).sum();
    println!(
        "\nheavy jobs: {count} fibonacci jobs of ~{cycles:.1e} cycles ({:.2e} cycles in all on the cluster)",
        cycles_run as f64
    );
    println!("  one engine alone          {alone_time:>9.2?}");
    println!("  three engines, one node   {cluster_time:>9.2?}  shares {:?} (jobs run per engine)", run());
}

fn main() {
    if std::process::Command::new("nats-server").arg("--version").output().is_err() {
        eprintln!("cluster bench: nats-server is not installed (make deps installs it); skipped");
        return;
    }
    let rounds = std::env::var("CLUSTER_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let only = std::env::var("CLUSTER_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "cost" {
        per_job_cost(rounds);
    }
    if only.is_empty() || only == "failover" {
        println!("\nfailover: kill -9 of an engine holding jobs to their redelivery to another engine");
        for ack_wait_ms in [2_000, 5_000] {
            let times: Vec<f64> = (0..3).map(|_| failover(ack_wait_ms).as_secs_f64()).collect();
            println!("  ack_wait_ms = {ack_wait_ms:<6} median {:.2} s of 3 ({times:.2?})", median(times.clone()));
        }
    }
    if only.is_empty() || only == "heavy" {
        // 10^8 cycles take our VM some 20 ms: the first engine drains such
        // a queue before the others' pulls land. 10^9 shows the spread.
        heavy_jobs(12, 100_000_000);
        heavy_jobs(12, 1_000_000_000);
    }
}
