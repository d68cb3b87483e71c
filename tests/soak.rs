//! Soak: `kill -9` at random points while a load generator submits jobs,
//! without a chain and with one, and the engine's memory under 1,000 idle
//! connections.
//!
//! The duration comes from `SOAK_SECONDS` (default 25 s per test, so
//! `make test` runs a short version); `SOAK_ROUNDS` sets the kills (4 by
//! default, 20 when `SOAK_SECONDS` is 120 or more), `SOAK_RATE` (150 a
//! second, 500 in a long run) and `SOAK_CHAIN_RATE` (100) the offered
//! jobs per second, `SOAK_SEED` the random points. The long run:
//! `SOAK_SECONDS=600 cargo test --release --test soak -- --nocapture --test-threads 1`.
//!
//! Each test prints its figures: jobs submitted, acknowledged, completed,
//! settled, lost and duplicated (both asserted to be 0), restarts, the
//! engine's peak RSS (sampled) and its open file descriptors at the end.

mod common;

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolValue;
use common::chain::{Link, Stack};
use common::engine::{u64_job, Engine};
use coprocessor::client::FastClient;
use coprocessor_actors::job::JobId;
use coprocessor_actors::wire::{Call, HexBytes, JobIdParams, JobResult, ReplayParams, ReplayReply, Reply, SubmitJob};
use coprocessor_actors::{Store, Transition};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|err| panic!("{name}={value}: {err}")),
        Err(_) => default,
    }
}

fn soak_seconds() -> u64 {
    env_u64("SOAK_SECONDS", 25).max(5)
}

/// The long run (`make soak`), as opposed to `make test`'s short one.
fn long() -> bool {
    soak_seconds() >= 120
}

fn rounds() -> u64 {
    env_u64("SOAK_ROUNDS", if long() { 20 } else { 4 }).max(1)
}

/// xorshift64*: the random kill points, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos());
        let seed = env_u64("SOAK_SEED", (clock as u64) | 1);
        eprintln!("soak: SOAK_SEED={seed}");
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration in [min, max).
    fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_millis().max(1) as u64;
        min + Duration::from_millis(self.next() % span)
    }
}

/// A process's resident memory in KiB, if it still runs.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A process's open file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd").count()
}

/// Samples the engine's RSS every 100 ms (the engine's PID changes at each
/// restart) and keeps the peak.
struct Sampler {
    pid: Arc<AtomicU32>,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (pid, peak, stop) =
            (Arc::new(AtomicU32::new(pid)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, k, s) = (Arc::clone(&pid), Arc::clone(&peak), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if let Some(kib) = rss(p.load(Ordering::SeqCst)) {
                    k.fetch_max(kib, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler { pid, peak, stop, thread: Some(thread) }
    }

    fn follow(&self, pid: u32) {
        self.pid.store(pid, Ordering::SeqCst);
    }

    fn peak_kib(&self) -> u64 {
        if let Some(kib) = rss(self.pid.load(Ordering::SeqCst)) {
            self.peak.fetch_max(kib, Ordering::SeqCst);
        }
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One job the generator can send: its request, ID and the `n` it asks
/// the square root of.
type MakeJob = dyn Fn(u64) -> (SubmitJob, [u8; 32], u64) + Send + Sync;

/// What the load generator counted.
#[derive(Default)]
struct Counts {
    submitted: AtomicU64,
    refused: AtomicU64,
    /// Sent, then the connection broke (a kill) before the answer.
    unanswered: AtomicU64,
    acked: Mutex<Vec<([u8; 32], u64)>>,
    refusals: Mutex<HashMap<String, u64>>,
}

/// Fast-path connections submitting jobs at a steady rate, each numbered
/// by a shared counter; a broken connection (the engine was killed) is
/// opened again until the socket answers.
struct Load {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(socket: PathBuf, connections: u64, rate: u64, make: Arc<MakeJob>) -> Load {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let per_connection = (rate as f64 / connections as f64).max(1.0);
        let threads = (0..connections)
            .map(|_| {
                let (counts, stop, next, make, socket) =
                    (Arc::clone(&counts), Arc::clone(&stop), Arc::clone(&next), Arc::clone(&make), socket.clone());
                std::thread::spawn(move || generate(&socket, per_connection, &counts, &stop, &next, &*make))
            })
            .collect();
        Load { counts, stop, threads }
    }

    /// Stops sending; each connection reads its outstanding answers.
    fn stop(self) -> Arc<Counts> {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("load thread");
        }
        self.counts
    }

    fn acked(&self) -> Vec<([u8; 32], u64)> {
        self.counts.acked.lock().expect("lock").clone()
    }
}

fn generate(socket: &Path, rate: f64, counts: &Counts, stop: &AtomicBool, next: &AtomicU64, make: &MakeJob) {
    const WINDOW: usize = 64;
    let start = Instant::now();
    let mut sent_total = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut client) = FastClient::connect(socket) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let mut outstanding: HashMap<u64, ([u8; 32], u64)> = HashMap::new();
        let broken = loop {
            let stopping = stop.load(Ordering::SeqCst);
            if stopping && outstanding.is_empty() {
                break false;
            }
            // Paced: at most `rate` a second since the start.
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            let mut queued = false;
            while !stopping && outstanding.len() < WINDOW && sent_total < due {
                let (request, id, n) = make(next.fetch_add(1, Ordering::SeqCst));
                let Ok(tag) = client.send(Call::SubmitJob(request)) else { break };
                outstanding.insert(tag, (id, n));
                counts.submitted.fetch_add(1, Ordering::SeqCst);
                sent_total += 1;
                queued = true;
            }
            if queued && client.flush().is_err() {
                break true;
            }
            if outstanding.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            match client.recv() {
                Ok((tag, reply)) => {
                    let job = outstanding.remove(&tag).expect("an answer to a request sent");
                    match reply {
                        Ok(Reply::JobId(params)) => {
                            assert_eq!(params.job_id.0, job.0, "acknowledged under its own ID");
                            counts.acked.lock().expect("lock").push(job);
                        }
                        Ok(other) => panic!("a submission answered {other:?}"),
                        Err(err) => {
                            counts.refused.fetch_add(1, Ordering::SeqCst);
                            let kind = err.message.split(':').next().unwrap_or_default().to_owned();
                            *counts.refusals.lock().expect("lock").entry(kind).or_default() += 1;
                        }
                    }
                }
                Err(_) => break true,
            }
        };
        if broken {
            counts.unanswered.fetch_add(outstanding.len() as u64, Ordering::SeqCst);
        }
    }
}

/// `abi.encode(n, isqrt(n))`: the square-root guest's output.
fn square_root_output(n: u64) -> Vec<u8> {
    let mut root = (n as f64).sqrt() as u64;
    while root * root > n {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= n {
        root += 1;
    }
    (U256::from(n), U256::from(root)).abi_encode()
}

/// Every acknowledged job is known, and once executed has the square
/// root's output (waits for the ones still queued). `settled` lists the
/// statuses that count as the end (with a chain: confirmed ones).
fn check_acked(socket: &Path, acked: &[([u8; 32], u64)], settled: &[&str], limit: Duration) {
    let start = Instant::now();
    let mut left: Vec<([u8; 32], u64)> = acked.to_vec();
    while !left.is_empty() {
        let mut client = FastClient::connect(socket).expect("connect");
        let mut waiting = Vec::new();
        for chunk in left.chunks(256) {
            let mut tags = HashMap::new();
            for (id, n) in chunk {
                let tag = client
                    .send(Call::GetResult(JobIdParams { job_id: HexBytes(id.to_vec()) }))
                    .expect("send getResult");
                tags.insert(tag, (*id, *n));
            }
            client.flush().expect("flush");
            for _ in 0..chunk.len() {
                let (tag, reply) = client.recv().expect("getResult answer");
                let (id, n) = tags.remove(&tag).expect("asked");
                let result: Box<JobResult> = match reply {
                    Ok(Reply::Result(result)) => result,
                    other => panic!("LOST: acknowledged job 0x{} is unknown: {other:?}", hex::encode(id)),
                };
                match result.status.as_str() {
                    "pending" | "running" => waiting.push((id, n)),
                    status => {
                        let output = result.output.as_ref().map(|o| o.0.clone());
                        assert_eq!(output, Some(square_root_output(n)), "job 0x{} ({status})", hex::encode(id));
                        if !settled.contains(&status) {
                            waiting.push((id, n));
                        }
                    }
                }
            }
        }
        left = waiting;
        if !left.is_empty() {
            assert!(
                start.elapsed() < limit,
                "{} acknowledged jobs not {settled:?} after {limit:?}, e.g. 0x{}",
                left.len(),
                hex::encode(left[0].0)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `coproc_replay` over the whole log: everything executed matches.
fn replay_matches(engine: &Engine) -> ReplayReply {
    let replay: ReplayReply =
        engine.client().call(Call::Replay(ReplayParams { from: None, to: None, program_id: None })).expect("replay");
    assert!(replay.mismatched.is_empty(), "replay mismatches: {:?}", replay.mismatched);
    assert_eq!(replay.matched, replay.replayed);
    replay
}

/// Per job, the `Executed` records in the log of a stopped engine.
fn executed_records(data_dir: &Path) -> HashMap<JobId, usize> {
    let store = Store::open(&data_dir.join("db")).expect("open the store");
    let mut counts = HashMap::new();
    for item in store.log_range(0, u64::MAX) {
        let (_, record) = item.expect("log record");
        if let Transition::Executed(_) = record.transition {
            *counts.entry(record.job_id).or_insert(0) += 1;
        }
    }
    counts
}

/// Lost (acknowledged, no `Executed` record) and duplicated (more than one).
fn lost_and_duplicated(counts: &HashMap<JobId, usize>, acked: &[([u8; 32], u64)]) -> (usize, usize) {
    let lost = acked.iter().filter(|(id, _)| !counts.contains_key(&JobId(*id))).count();
    let duplicated = counts.values().filter(|&&n| n > 1).count();
    (lost, duplicated)
}

#[test]
fn soak_kill_9_at_random_points_under_load_loses_nothing_and_runs_nothing_twice() {
    let (seconds, rounds) = (soak_seconds(), rounds());
    let mut rng = Rng::seeded();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut engine = Engine::start(&data);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let consumer = signer.address();
    let make: Arc<MakeJob> = Arc::new(move |i| {
        let n = 1_000 + i * 7;
        let job = u64_job(program, consumer, i, n);
        (job.sign(&signer), job.job_id().0, n)
    });
    let sampler = Sampler::start(engine.pid());
    let load = Load::start(engine.socket(), 4, env_u64("SOAK_RATE", if long() { 500 } else { 150 }), make);
    let began = Instant::now();
    let round = Duration::from_secs(seconds) / rounds as u32;
    let mut restarts = 0;
    for r in 0..rounds {
        std::thread::sleep(rng.between(round / 2, round * 3 / 2));
        let killed_at = Instant::now();
        let parts = engine.kill9();
        engine = Engine::respawn(parts);
        let up = killed_at.elapsed();
        restarts += 1;
        sampler.follow(engine.pid());
        // Everything acknowledged before the kill is there, with its one
        // result; replay agrees with the log.
        let acked = load.acked();
        check_acked(&engine.socket(), &acked, &["done"], Duration::from_secs(120));
        let checked = killed_at.elapsed();
        let replay = replay_matches(&engine);
        eprintln!(
            "soak: round {}/{rounds} at {:.0} s: {} acknowledged so far, all present and done; replay {} matched \
             (restart {:.1} s, checked at {:.1} s, replayed at {:.1} s)",
            r + 1,
            began.elapsed().as_secs_f64(),
            acked.len(),
            replay.matched,
            up.as_secs_f64(),
            checked.as_secs_f64(),
            killed_at.elapsed().as_secs_f64()
        );
    }
    let counts = load.stop();
    let acked = counts.acked.lock().expect("lock").clone();
    check_acked(&engine.socket(), &acked, &["done"], Duration::from_secs(120));
    let replay = replay_matches(&engine);
    let fds = open_fds(engine.pid());
    let peak = sampler.peak_kib();
    let metrics = engine.metrics().engine;
    assert!(engine.terminate().success(), "SIGTERM after the soak exits 0");

    let records = executed_records(&data);
    let (lost, duplicated) = lost_and_duplicated(&records, &acked);
    eprintln!(
        "soak (no chain, {seconds} s, {rounds} kills): submitted {}, acknowledged {}, refused {} {:?}, unanswered at a \
         kill {}, completed {} (executed in the log; {} in the last run's metrics), lost {lost}, duplicated \
         {duplicated}, restarts {restarts}, replay matched {}/{}, peak RSS {} MiB, open fds at the end {fds}",
        counts.submitted.load(Ordering::SeqCst),
        acked.len(),
        counts.refused.load(Ordering::SeqCst),
        counts.refusals.lock().expect("lock"),
        counts.unanswered.load(Ordering::SeqCst),
        records.len(),
        metrics.jobs_done,
        replay.matched,
        replay.replayed,
        peak / 1024,
    );
    assert_eq!(lost, 0, "acknowledged jobs with no result");
    assert_eq!(duplicated, 0, "jobs executed into two results");
    assert!(!acked.is_empty(), "the load generator got jobs in");
    assert_eq!(restarts, rounds);
}

/// The statuses of a settled job.
const SETTLED: [&str; 2] = ["confirmed", "already-settled"];

#[test]
fn soak_kill_9_while_results_are_relayed_settles_every_job_once() {
    let (seconds, rounds) = (soak_seconds(), rounds());
    let mut rng = Rng::seeded();
    let mut stack = Stack::start(Link::Direct, "");
    // A block a second: results wait in the mempool, in flight, when the
    // engine dies.
    stack.node_rpc("evm_setAutomine", json!([false]));
    stack.node_rpc("evm_setIntervalMining", json!([1000]));
    let (program, consumer) = (stack.square_root, stack.examples.square_root_consumer);
    let signer = stack.engine.dev_signer();
    // Offchain nonces count down from far above anything an onchain
    // request takes (the consumer's highest nonce plus one), so the two
    // kinds never collide.
    let make: Arc<MakeJob> = Arc::new(move |i| {
        let n = 10_000 + i;
        let job = u64_job(program, consumer, 1_000_000_000_000 - i, n);
        (job.sign(&signer), job.job_id().0, n)
    });
    let sampler = Sampler::start(stack.engine.pid());
    let load = Load::start(stack.engine.socket(), 2, env_u64("SOAK_CHAIN_RATE", 100), make);
    let began = Instant::now();
    let round = Duration::from_secs(seconds) / rounds as u32;
    let (mut restarts, mut killed_in_flight, mut onchain) = (0, 0, Vec::new());
    for r in 0..rounds {
        let wait = rng.between(round / 2, round * 3 / 2);
        // Onchain requests too, picked up by the listener across kills.
        let n = 1_000_000 + r * 1_000;
        onchain.push((stack.request_square_root(n).0, n));
        std::thread::sleep(wait.saturating_sub(Duration::from_secs(1)));
        let in_flight = stack.engine.metrics().engine.relay_in_flight;
        killed_in_flight += u64::from(in_flight > 0);
        let killed = stack.engine.kill9();
        stack.engine = Engine::respawn(killed);
        restarts += 1;
        sampler.follow(stack.engine.pid());
        let acked = load.acked();
        check_acked(
            &stack.engine.socket(),
            &acked,
            &["done", "submitted", SETTLED[0], SETTLED[1]],
            Duration::from_secs(120),
        );
        eprintln!(
            "soak (chain): round {}/{rounds} at {:.0} s: killed with {in_flight} results in flight; {} acknowledged \
             so far, all present",
            r + 1,
            began.elapsed().as_secs_f64(),
            acked.len()
        );
    }
    let counts = load.stop();
    let acked = counts.acked.lock().expect("lock").clone();
    let all: Vec<([u8; 32], u64)> = acked.iter().copied().chain(onchain.iter().copied()).collect();
    // Settled: confirmed, or already-settled when a kill came between a
    // send and its `Submitted` record, and the chain then showed the job
    // completed by a transaction the new run did not know.
    check_acked(&stack.engine.socket(), &all, &SETTLED, Duration::from_secs(300));
    let replay = replay_matches(&stack.engine);

    // JobCompleted events onchain, per job.
    let completed = completions(&stack);
    let lost = all.iter().filter(|(id, _)| !completed.contains_key(&B256::from(*id))).count();
    let duplicated = completed.values().filter(|&&n| n > 1).count();
    let settled = all.iter().filter(|(id, _)| completed.get(&B256::from(*id)) == Some(&1)).count();
    let fds = open_fds(stack.engine.pid());
    let peak = sampler.peak_kib();
    let metrics = stack.engine.metrics().engine;
    eprintln!(
        "soak (chain, {seconds} s, {rounds} kills, {killed_in_flight} with results in flight): submitted {}, \
         acknowledged {} (+{} onchain), refused {} {:?}, unanswered at a kill {}, completed {}, settled {settled}, \
         lost {lost}, duplicated {duplicated}, restarts {restarts}, dead letters {}, replay matched {}/{}, peak RSS \
         {} MiB, open fds at the end {fds}",
        counts.submitted.load(Ordering::SeqCst),
        acked.len(),
        onchain.len(),
        counts.refused.load(Ordering::SeqCst),
        counts.refusals.lock().expect("lock"),
        counts.unanswered.load(Ordering::SeqCst),
        replay.replayed,
        metrics.jobs_dead_lettered,
        replay.matched,
        replay.replayed,
        peak / 1024,
    );
    assert_eq!(lost, 0, "acknowledged jobs never settled");
    assert_eq!(duplicated, 0, "jobs settled twice");
    assert_eq!(settled, all.len());
    assert!(killed_in_flight > 0, "at least one kill found results in flight");
    assert!(!acked.is_empty());
}

/// `JobCompleted` events of the JobManager, counted per job ID.
fn completions(stack: &Stack) -> HashMap<B256, usize> {
    use alloy::providers::Provider;
    use alloy::sol_types::SolEvent;
    use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCompleted;
    let head = stack.block_on(stack.fresh_owner().get_block_number()).expect("head");
    let mut counts = HashMap::new();
    let mut from = 0;
    while from <= head {
        let to = (from + 1999).min(head);
        let filter = alloy::rpc::types::Filter::new()
            .address(stack.deployment.job_manager)
            .event_signature(JobCompleted::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        for log in stack.block_on(stack.fresh_owner().get_logs(&filter)).expect("logs") {
            *counts.entry(*log.topics().get(1).expect("jobID topic")).or_insert(0) += 1;
        }
        from = to + 1;
    }
    counts
}

#[test]
fn soak_peak_rss_under_1000_idle_connections() {
    const CONNECTIONS: usize = 1000;
    raise_fd_limit(CONNECTIONS as u64 * 2 + 256);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // The default api.max_connections (4096) admits them all.
    let engine = Engine::start(&data);
    let idle = rss(engine.pid()).expect("rss");
    let fds_before = open_fds(engine.pid());
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = std::os::unix::net::UnixStream::connect(engine.socket()).expect("connect");
        connections.push(stream);
    }
    // One request on each, answered: every connection is accepted and has
    // its task; then they idle.
    ask_status(&mut connections);
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(rss(engine.pid()).expect("rss"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let fds = open_fds(engine.pid());
    // Still serving: a new connection, and every idle one. (The baseline
    // may hold a transient fd of the start-up, so the count is checked
    // against the connections alone.)
    let status: serde_json::Value =
        engine.client().raw("coproc_status", json!({})).expect("a new connection is served");
    assert!(status["result"]["version"].is_string(), "{status}");
    assert!(fds >= CONNECTIONS, "{fds} fds with {CONNECTIONS} connections open ({fds_before} before)");
    ask_status(&mut connections);
    eprintln!(
        "soak: {CONNECTIONS} idle connections: engine RSS {} MiB idle, peak {} MiB with them open ({:.1} KiB per \
         connection), open fds {fds} ({fds_before} before)",
        idle / 1024,
        peak / 1024,
        peak.saturating_sub(idle) as f64 / CONNECTIONS as f64
    );
    drop(connections);
    assert!(engine.terminate().success());
}

/// Sends `coproc_status` on every connection, then reads every answer.
fn ask_status(connections: &mut [std::os::unix::net::UnixStream]) {
    use std::io::{BufRead, BufReader, Write};
    for stream in connections.iter_mut() {
        stream.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"coproc_status\",\"params\":{}}\n").expect("send");
    }
    for stream in connections.iter() {
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).expect("answer");
        assert!(line.contains("\"result\""), "{line}");
    }
}

/// Raises this process's soft RLIMIT_NOFILE to at least `want` (up to the
/// hard limit); the engine it starts inherits it.
fn raise_fd_limit(want: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a struct this function owns.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(limit.rlim_cur >= want, "RLIMIT_NOFILE is {} (hard {}), {want} needed", limit.rlim_cur, limit.rlim_max);
}
