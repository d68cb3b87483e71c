//! End-to-end engine throughput, latency and replay speed.
//!
//! The engine runs in this process (`coprocessor_actors::run` on its own
//! thread, bench profile, through the tests' shared harness:
//! `Engine::in_process`) on a temp data dir; the load generator pipelines
//! pre-signed `square-root` jobs over a few connections on the engine's
//! socket, in JSON-RPC and on the bincode fast path, as any client would. Every acknowledged job is
//! durable. Baselines run in the same process: the signature work alone
//! (one recovery and one signing per job, the floor DESIGN.md sets) and the
//! bare VM for replay.
//!
//! `cargo bench --bench engine`. Figures: criterion's medians (elements/s),
//! then a summary with the latency percentiles at half the measured rate.
//!
//! `cargo bench --bench engine -- growth`: the cost of a growing store. The
//! engine binary (so its memory is its own) takes `ENGINE_BENCH_GROWTH_JOBS`
//! jobs (1,000,000 by default) in ten chunks into one store; after each
//! chunk: completed jobs/s, disk bytes per job and the engine's RSS.
//! `ENGINE_BENCH_GROWTH_CONFIG` is TOML for the engine (`[store]` settings).

#[path = "../tests/common/mod.rs"]
mod common;

use common::engine::Engine;
use common::{abi_u64, disk_bytes, guest_elf, paced, percentile, pipeline, pipeline_as, rss_kib, Encoding};
use coprocessor::request::JobRequest;
use coprocessor_actors::job::JobLimits;
use coprocessor_actors::program::{ProgramId, ProgramImage};
use coprocessor_actors::protocol::eip191::{recover, Signer};
use coprocessor_actors::wire::SubmitJob;
use coprocessor_actors::Store;
use coprocessor_actors::{replay, ReplayRange as Range};
use coprocessor_actors::{Vm, DEFAULT_MAX_INPUT_BYTES};
use criterion::{Criterion, Throughput};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 4;
const WINDOW: usize = 512;
const BATCH: u64 = 10_000;
const REPLAY_JOBS: u64 = 100_000;

/// An in-process engine with `square-root` registered, and the dev
/// consumer's signer for its requests.
struct Bench {
    engine: Engine,
    program: ProgramId,
    signer: Signer,
    next_nonce: AtomicU64,
}

impl Bench {
    fn start(data_dir: &Path) -> Bench {
        Bench::on(Engine::in_process(data_dir))
    }

    fn on(engine: Engine) -> Bench {
        let program = engine.submit_program("square-root");
        let signer = engine.dev_signer();
        Bench { engine, program, signer, next_nonce: AtomicU64::new(0) }
    }

    fn socket(&self) -> PathBuf {
        self.engine.socket()
    }

    /// `count` signed requests with fresh nonces (signed outside any timing).
    fn requests(&self, count: u64, wait: bool) -> Vec<SubmitJob> {
        let first = self.next_nonce.fetch_add(count, Ordering::Relaxed);
        (first..first + count)
            .map(|nonce| {
                let request = JobRequest {
                    nonce,
                    max_cycles: 1_000_000,
                    consumer: self.signer.address(),
                    program_id: self.program,
                    onchain_input: abi_u64(nonce.wrapping_mul(0x9E37_79B9)),
                    offchain_input: Vec::new(),
                };
                let mut params = request.sign(&self.signer);
                params.wait = wait;
                params
            })
            .collect()
    }

    /// Waits until `executed` jobs are done or failed in all.
    fn wait_idle(&self, executed: u64) {
        while self.executed() < executed {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn executed(&self) -> u64 {
        let e = self.engine.metrics().engine;
        e.jobs_done + e.jobs_failed
    }

    /// Stops the engine and checks that it stopped cleanly.
    fn stop(self) {
        let status = self.engine.terminate();
        assert!(status.success(), "the engine stopped with {status}");
    }
}

/// Paced submissions with `wait`: each answer is the durable result.
/// Returns the submit-to-result latencies.
fn paced_latencies(engine: &Bench, rate: f64, seconds: f64) -> Vec<Duration> {
    let count = (rate * seconds) as u64;
    let per_connection = count / CONNECTIONS as u64;
    let batches: Vec<Vec<SubmitJob>> = (0..CONNECTIONS).map(|_| engine.requests(per_connection, true)).collect();
    paced(&engine.socket(), batches, rate)
}

/// Whether the section `name` runs, given criterion's optional filter.
fn selected(name: &str) -> bool {
    std::env::args().skip(1).find(|a| !a.starts_with('-')).is_none_or(|filter| name.contains(&filter))
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(20));
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Bench::start(&dir.path().join("data"));

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH));
    // Acknowledged (durable) and executed: the clock stops at the last
    // answer, or when the last job's result is durable. Both encodings.
    for (name, until_executed, encoding) in [
        ("submit_ack_square_root", false, Encoding::Fast),
        ("submit_to_executed_square_root", true, Encoding::Fast),
        ("submit_ack_square_root_json", false, Encoding::Json),
        ("submit_to_executed_square_root_json", true, Encoding::Json),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let requests = engine.requests(BATCH, false);
                    let before = engine.executed();
                    let start = Instant::now();
                    pipeline_as(encoding, &engine.socket(), CONNECTIONS, WINDOW, requests);
                    if until_executed {
                        engine.wait_idle(before + BATCH);
                    }
                    total += start.elapsed();
                    engine.wait_idle(before + BATCH);
                }
                total
            })
        });
    }
    // The floor: the signature work of each job (recover + sign), on as
    // many threads as the machine has cores, with nothing else.
    let signed = engine.requests(BATCH, false);
    let operator = Signer::random();
    group.bench_function("baseline_recover_and_sign_only", |b| {
        b.iter(|| {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            std::thread::scope(|scope| {
                for chunk in signed.chunks(signed.len().div_ceil(threads)) {
                    let operator = &operator;
                    scope.spawn(move || {
                        for params in chunk {
                            let signer = recover(&params.request.0, &params.signature.0).expect("valid");
                            std::hint::black_box((signer, operator.sign(&params.request.0)));
                        }
                    });
                }
            });
        })
    });
    group.finish();

    if selected("latency") {
        // Latency at half the measured completion rate.
        let before = engine.executed();
        let start = Instant::now();
        pipeline(&engine.socket(), CONNECTIONS, WINDOW, engine.requests(BATCH * 2, false));
        engine.wait_idle(before + BATCH * 2);
        let rate = (BATCH * 2) as f64 / start.elapsed().as_secs_f64();
        let mut latencies = paced_latencies(&engine, rate / 2.0, 5.0);
        latencies.sort_unstable();
        println!("\ncompletion rate (pipelined, {CONNECTIONS} connections): {rate:.0} jobs/s");
        println!(
            "submit-to-result latency at {:.0} jobs/s ({} jobs): p50 {:.2?}  p99 {:.2?}  max {:.2?}\n",
            rate / 2.0,
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
    engine.stop();

    if selected("replay") {
        replay_bench(&mut c, &dir.path().join("replay"));
    }
    if selected("growth") {
        growth(&dir.path().join("growth"));
    }
    c.final_summary();
}

/// Fills one store in ten chunks and reports, after each, the completion
/// rate of that chunk, the disk bytes per stored job and the engine's RSS.
fn growth(data_dir: &Path) {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let total: u64 = std::env::var("ENGINE_BENCH_GROWTH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 20_000 });
    let chunk = (total / 10).max(1);
    // A config for the engine, e.g. "[store]\ncache_bytes = 1073741824".
    let config = std::env::var("ENGINE_BENCH_GROWTH_CONFIG").ok();
    let engine = Bench::on(Engine::start_with(data_dir, config.as_deref(), &[]));
    println!("\ngrowth: {total} square-root jobs into one store, in chunks of {chunk}");
    println!("{:>10} {:>12} {:>12} {:>10}", "stored", "jobs/s", "disk B/job", "RSS MiB");
    let mut stored = 0;
    while stored < total {
        let requests = engine.requests(chunk, false);
        let before = engine.executed();
        let start = Instant::now();
        pipeline(&engine.socket(), CONNECTIONS, WINDOW, requests);
        engine.wait_idle(before + chunk);
        let rate = chunk as f64 / start.elapsed().as_secs_f64();
        stored += chunk;
        let per_job = disk_bytes(&data_dir.join("db")) / stored;
        let rss = rss_kib(engine.engine.pid()) / 1024;
        println!("{stored:>10} {rate:>12.0} {per_job:>12} {rss:>10}");
    }
    engine.stop();
}

/// Logs REPLAY_JOBS jobs on a fresh engine, stops it, and replays them all.
fn replay_bench(c: &mut Criterion, data_dir: &Path) {
    let engine = Bench::start(data_dir);
    pipeline(&engine.socket(), CONNECTIONS, WINDOW, engine.requests(REPLAY_JOBS, false));
    engine.wait_idle(REPLAY_JOBS);
    engine.stop();
    let store = Store::open(&data_dir.join("db")).expect("open store");
    let range = Range { from: 0, to: u64::MAX, program: None };
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(REPLAY_JOBS));
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("replay_100k_logged_jobs", |b| {
        b.iter(|| {
            let report = replay(&store, &range, DEFAULT_MAX_INPUT_BYTES, |_, _| {}).expect("replay");
            assert_eq!((report.matched, report.mismatched.len()), (REPLAY_JOBS, 0));
        })
    });
    // Baseline: the same jobs on the bare VM, no store.
    let elf = guest_elf("square-root");
    let image = ProgramImage::parse(&elf, elf.len()).expect("image");
    let mut vm = Vm::new(&image, DEFAULT_MAX_INPUT_BYTES).expect("vm");
    let limits = JobLimits { max_cycles: 1_000_000, ..JobLimits::default() };
    group.bench_function("baseline_bare_vm_same_jobs", |b| {
        b.iter(|| {
            for nonce in 0..REPLAY_JOBS {
                std::hint::black_box(vm.run(&abi_u64(nonce.wrapping_mul(0x9E37_79B9)), &[], &limits).expect("run"));
            }
        })
    });
    group.finish();
}
