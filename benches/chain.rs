//! Results settled per second against a local EVM node (hardhat), with
//! automine and with a 1 s block time, against what the node itself
//! sustains.
//!
//! What runs: a hardhat node on a free 127.0.0.1 port, the contracts
//! deployed on it (`coprocessor::devnet`), and the real engine binary
//! (`coprocessor run`, bench profile) with a `[chain]` section
//! (`confirmations = 1`, `poll_interval_ms = 50`) and `square-root`
//! registered over the socket. Each measurement is repeated
//! `CHAIN_BENCH_RUNS` times (default 5); the figure is the median.
//!
//! - `node alone` (the baseline): `CHAIN_BENCH_BASELINE_JOBS` (default
//!   5 x N, so that a run lasts long enough to time) plain
//!   `SquareRootConsumer.requestSquareRoot(n)` transactions from `SENDERS`
//!   hardhat default accounts at once (unlocked accounts,
//!   `eth_sendTransaction`, explicit nonces, one request in flight per
//!   account), timed until all their `JobCreated` events are onchain. It
//!   runs before the engine starts, whose listener starts past those
//!   blocks and never sees them.
//! - `onchain`: N (`CHAIN_BENCH_JOBS`, default 200) such requests with the
//!   engine running, timed from the first request until all N jobs are
//!   COMPLETED onchain (N `JobCompleted` events). Each run then checks that
//!   the completed jobs are exactly the created ones, that one of them reads
//!   COMPLETED in `getJobMetadata`, and that the consumer stored a root.
//! - `offchain`: N requests signed by the consumer's offchain signer
//!   (`dev-consumer.key`, fresh nonces from `coproc_nextNonce`), submitted
//!   over the socket (4 pipelined fast-path connections), timed until all N
//!   are COMPLETED onchain (`submitResultForOffchainJob`), checked the same
//!   way.
//!
//! Both run first with automine (hardhat's default: a block per
//! transaction), then with a 1 s block time on the same node
//! (`evm_setAutomine(false)`, `evm_setIntervalMining(1000)`), onchain and
//! offchain runs interleaved, each mode after an untimed warm-up (N jobs of
//! each kind first: hardhat's first such batch runs 2-3x slower; 20 after
//! the switch).
//! The node is polled for the events every 25 ms, reading only new blocks.
//!
//! Run: `cargo bench --bench chain` (needs `make guests` and `npm ci` in
//! `contracts/`; 2-3 minutes after the build). A filter argument keeps one
//! mode: `cargo bench --bench chain -- interval` (or `automine`). Without
//! `--bench` (`cargo test --benches`) it is a smoke test: 10 jobs, one run.
//! Diagnostics: `CHAIN_BENCH_LOG_DIR=DIR` keeps `node.log` and `engine.log`
//! there; `HARDHAT_NODE_LOG=1` makes the node log every JSON-RPC call;
//! `CHAIN_BENCH_ENGINE_LOG` is the engine's `RUST_LOG` (default `warn`).
//!
//! Reading it: a line per run, then a table of medians. `rate` is jobs/s;
//! `vs node` is that rate over the same mode's `node alone` rate (a
//! settled onchain job costs the node two transactions and the relayer's
//! calls, so 1.0 is out of reach). `requests in` is when the last request
//! was mined (onchain) or acknowledged by the engine (offchain). `node CPU`
//! and `engine CPU` are the CPU time the hardhat and engine process groups
//! used during the run over its wall time (1.00 = one core busy): a node
//! near 1.00 while the engine idles means the node is the bottleneck
//! (hardhat executes one call at a time); both low means time is lost
//! waiting (block time, the listener's and relayer's poll interval).

#[path = "../tests/common/mod.rs"]
mod common;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use common::engine::Engine;
use common::{abi_u64, guest_elf, pipeline};
use coprocessor::devnet::{self, DeployParams, Deployment, HardhatNode};
use coprocessor::request::JobRequest;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::{JobCompleted, JobCreated};
use coprocessor_actors::protocol::bindings::square_root_consumer::SquareRootConsumer::requestSquareRootCall;
use coprocessor_actors::protocol::bindings::{IJobManager, SquareRootConsumer};
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{Call, ConsumerParams, HexBytes, NonceReply, ProgramIdReply, SubmitJob, SubmitProgram};
use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Hardhat default accounts (1..=SENDERS) that send onchain requests.
const SENDERS: usize = 8;
/// Socket connections for offchain submissions.
const CONNECTIONS: usize = 4;
/// Requests one connection keeps in flight.
const WINDOW: usize = 512;
/// The engine's `[chain] poll_interval_ms`.
const ENGINE_POLL_MS: u64 = 50;
/// How often the bench asks the node whether the run is over.
const WATCH: Duration = Duration::from_millis(25);
/// A run that takes longer than this has failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Jobs in the untimed warm-up of each kind after a change of block time
/// (the first mode warms up with N).
const WARM_UP: usize = 20;

/// How many jobs and runs.
struct Settings {
    jobs: usize,
    baseline_jobs: usize,
    runs: usize,
}

fn settings() -> Settings {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    if bench {
        let jobs = env("CHAIN_BENCH_JOBS", 200).max(1);
        Settings {
            jobs,
            baseline_jobs: env("CHAIN_BENCH_BASELINE_JOBS", 5 * jobs).max(1),
            runs: env("CHAIN_BENCH_RUNS", 5).max(1),
        }
    } else {
        Settings { jobs: 10, baseline_jobs: 10, runs: 1 }
    }
}

/// Whether the mode `name` runs, given the optional filter argument.
fn selected(name: &str) -> bool {
    std::env::args().skip(1).find(|a| !a.starts_with('-')).is_none_or(|filter| name.contains(&filter))
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// First request to the last job settled (or, for the baseline, mined).
    total: Duration,
    /// When the last request was mined (onchain) or acknowledged (offchain).
    requests_in: Duration,
    /// CPU time of the node's and the engine's process groups.
    node_cpu: Duration,
    engine_cpu: Duration,
}

/// CPU time (user + system) of every live process in the group `pgid`.
fn group_cpu(pgid: Option<u32>) -> Duration {
    let Some(pgid) = pgid else { return Duration::ZERO };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut total = 0u64;
    let Ok(entries) = std::fs::read_dir("/proc") else { return Duration::ZERO };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the command name: state ppid pgrp ... utime(11) stime(12).
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 12 && fields[2].parse() == Ok(pgid) {
            total += fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        }
    }
    Duration::from_secs_f64(total as f64 / ticks)
}

/// The node as the bench sees it: RPC, the deployment, the senders.
struct Chain {
    runtime: tokio::runtime::Runtime,
    provider: DynProvider,
    deployment: Deployment,
    senders: Vec<Address>,
    request_gas: u64,
    node_pgid: Option<u32>,
    next_input: u64,
}

impl Chain {
    fn block_on<F: std::future::IntoFuture>(&self, future: F) -> F::Output {
        self.runtime.block_on(future.into_future())
    }

    fn head(&self) -> u64 {
        self.block_on(self.provider.get_block_number()).expect("eth_blockNumber")
    }

    fn node_rpc(&self, method: &'static str, params: serde_json::Value) {
        self.block_on(self.provider.raw_request::<_, serde_json::Value>(method.into(), params)).expect(method);
    }

    /// `None`: automine; `Some(ms)`: a block every `ms`, no automine.
    fn set_block_time(&self, interval_ms: Option<u64>) {
        match interval_ms {
            None => {
                self.node_rpc("evm_setIntervalMining", serde_json::json!([0]));
                self.node_rpc("evm_setAutomine", serde_json::json!([true]));
            }
            Some(ms) => {
                self.node_rpc("evm_setAutomine", serde_json::json!([false]));
                self.node_rpc("evm_setIntervalMining", serde_json::json!([ms]));
            }
        }
    }

    /// `count` distinct inputs not used before.
    fn inputs(&mut self, count: usize) -> Vec<u64> {
        let first = self.next_input;
        self.next_input += count as u64;
        (first..first + count as u64).map(|i| i * 1_000_003 + 7).collect()
    }

    /// Sends `requestSquareRoot(n)` for each input from the senders at once
    /// (one request in flight per sender) and watches the JobManager's
    /// events from the next block on: returns when all N jobs are created,
    /// when all N are completed (`settle`; else the same), and that block.
    fn onchain_requests(&self, inputs: &[u64], settle: bool) -> (Duration, Duration, u64) {
        let from = self.head() + 1;
        let consumer = self.deployment.square_root_consumer;
        let nonces: Vec<u64> = self.block_on(async {
            let mut nonces = Vec::new();
            for sender in &self.senders {
                nonces.push(self.provider.get_transaction_count(*sender).pending().await.expect("nonce"));
            }
            nonces
        });
        // Round-robin: sender s sends inputs s, s + SENDERS, ...
        let mut batches: Vec<Vec<(u64, Bytes)>> = vec![Vec::new(); self.senders.len()];
        for (i, n) in inputs.iter().enumerate() {
            let calldata = Bytes::from(requestSquareRootCall { n: U256::from(*n) }.abi_encode());
            let s = i % self.senders.len();
            let nonce = nonces[s] + batches[s].len() as u64;
            batches[s].push((nonce, calldata));
        }
        let gas = format!("{:#x}", self.request_gas);
        let jobs = inputs.len();
        let start = Instant::now();
        let (created, completed) = self.block_on(async {
            let mut tasks = Vec::new();
            for (sender, batch) in self.senders.iter().zip(batches) {
                let (provider, sender, gas) = (self.provider.clone(), *sender, gas.clone());
                tasks.push(tokio::spawn(async move {
                    for (nonce, data) in batch {
                        let tx = serde_json::json!([{
                            "from": sender, "to": consumer, "data": data, "gas": gas, "nonce": format!("{nonce:#x}"),
                        }]);
                        provider
                            .raw_request::<_, B256>("eth_sendTransaction".into(), tx)
                            .await
                            .unwrap_or_else(|err| panic!("eth_sendTransaction from {sender}: {err}"));
                    }
                }));
            }
            let sent = async {
                for task in tasks {
                    task.await.expect("sender task");
                }
            };
            let ((), watched) = tokio::join!(sent, self.watch(from, jobs, if settle { jobs } else { 0 }, start));
            watched
        });
        (created, completed.max(created), from)
    }

    /// Polls the JobManager's events from block `from` on until `created`
    /// `JobCreated` and `completed` `JobCompleted` events are there; returns
    /// when each count was reached. Panics after [`RUN_TIMEOUT`].
    async fn watch(&self, from: u64, created: usize, completed: usize, start: Instant) -> (Duration, Duration) {
        let (mut next, mut c, mut d) = (from, 0, 0);
        let (mut created_at, mut completed_at) = (None, None);
        loop {
            // Only the blocks not read yet: the watch itself stays cheap
            // for the node.
            let head = self.provider.get_block_number().await.expect("eth_blockNumber");
            if head >= next {
                let filter = Filter::new()
                    .address(self.deployment.job_manager)
                    .event_signature(vec![JobCreated::SIGNATURE_HASH, JobCompleted::SIGNATURE_HASH])
                    .from_block(next)
                    .to_block(head);
                let logs = self.provider.get_logs(&filter).await.expect("eth_getLogs");
                let count = |topic: B256| logs.iter().filter(|log| log.topic0() == Some(&topic)).count();
                c += count(JobCreated::SIGNATURE_HASH);
                d += count(JobCompleted::SIGNATURE_HASH);
                next = head + 1;
            }
            let now = start.elapsed();
            if c >= created {
                created_at.get_or_insert(now);
            }
            if d >= completed {
                completed_at.get_or_insert(now);
            }
            if let (Some(created_at), Some(completed_at)) = (created_at, completed_at) {
                return (created_at, completed_at);
            }
            assert!(
                now < RUN_TIMEOUT,
                "after {RUN_TIMEOUT:?}: {c} of {created} jobs created, {d} of {completed} completed"
            );
            tokio::time::sleep(WATCH).await;
        }
    }

    fn job_ids(&self, topic0: B256, from: u64) -> BTreeSet<B256> {
        let filter = Filter::new().address(self.deployment.job_manager).event_signature(topic0).from_block(from);
        let logs = self.block_on(self.provider.get_logs(&filter)).expect("eth_getLogs");
        logs.iter().map(|log| log.topics()[1]).collect()
    }

    fn job_status(&self, id: B256) -> u8 {
        let manager = IJobManager::new(self.deployment.job_manager, &self.provider);
        self.block_on(manager.getJobMetadata(id).call()).expect("getJobMetadata").status
    }

    fn stored_root(&self, n: u64) -> Option<U256> {
        let consumer = SquareRootConsumer::new(self.deployment.square_root_consumer, &self.provider);
        let answer = self.block_on(consumer.getSquareRoot(U256::from(n)).call()).expect("getSquareRoot");
        answer.known.then_some(answer.root)
    }

    /// Checks that exactly `expected` jobs completed from block `from` on,
    /// that one of them reads COMPLETED, and that the consumer stored `n`'s root.
    fn check_settled(&self, from: u64, expected: &BTreeSet<B256>, n: u64) {
        let completed = self.job_ids(JobCompleted::SIGNATURE_HASH, from);
        assert_eq!(&completed, expected, "the completed jobs are not the jobs requested");
        let first = *expected.iter().next().expect("jobs");
        assert_eq!(self.job_status(first), 3, "getJobMetadata: COMPLETED");
        assert_eq!(self.stored_root(n), Some(U256::from((n as f64).sqrt() as u64)), "the consumer's root of {n}");
    }
}

/// Baseline: N requests, no engine, until all are mined.
fn baseline_run(chain: &mut Chain, jobs: usize) -> Sample {
    let inputs = chain.inputs(jobs);
    let cpu = group_cpu(chain.node_pgid);
    let (_, total, from) = chain.onchain_requests(&inputs, false);
    let node_cpu = group_cpu(chain.node_pgid).saturating_sub(cpu);
    assert_eq!(chain.job_ids(JobCreated::SIGNATURE_HASH, from).len(), jobs, "exactly N jobs created");
    Sample { total, requests_in: total, node_cpu, engine_cpu: Duration::ZERO }
}

/// N onchain requests with the engine running, until all are completed.
fn onchain_run(chain: &mut Chain, engine: &Engine, jobs: usize) -> Sample {
    let inputs = chain.inputs(jobs);
    let (node_cpu, engine_cpu) = (group_cpu(chain.node_pgid), group_cpu(Some(engine.pid())));
    let (requests_in, total, from) = chain.onchain_requests(&inputs, true);
    let node_cpu = group_cpu(chain.node_pgid).saturating_sub(node_cpu);
    let engine_cpu = group_cpu(Some(engine.pid())).saturating_sub(engine_cpu);
    let created = chain.job_ids(JobCreated::SIGNATURE_HASH, from);
    assert_eq!(created.len(), jobs, "exactly N jobs created");
    chain.check_settled(from, &created, inputs[0]);
    Sample { total, requests_in, node_cpu, engine_cpu }
}

/// N signed offchain requests over the socket, until all are completed onchain.
fn offchain_run(chain: &mut Chain, engine: &Engine, program: ProgramId, signer: &Signer, jobs: usize) -> Sample {
    let consumer = chain.deployment.square_root_consumer;
    let params = ConsumerParams { consumer: HexBytes(consumer.to_vec()) };
    let first_nonce = engine.client().call::<NonceReply>(Call::NextNonce(params)).expect("coproc_nextNonce").nonce;
    let inputs = chain.inputs(jobs);
    let requests: Vec<JobRequest> = inputs
        .iter()
        .enumerate()
        .map(|(i, n)| JobRequest {
            nonce: first_nonce + i as u64,
            max_cycles: 1_000_000,
            consumer,
            program_id: program,
            onchain_input: abi_u64(*n),
            offchain_input: Vec::new(),
        })
        .collect();
    let expected: BTreeSet<B256> = requests.iter().map(|request| request.job_id().to_b256()).collect();
    assert_eq!(expected.len(), jobs, "distinct job IDs");
    let signed: Vec<SubmitJob> = requests.iter().map(|r| r.sign(signer)).collect();
    let from = chain.head() + 1;
    let (node_cpu, engine_cpu) = (group_cpu(chain.node_pgid), group_cpu(Some(engine.pid())));
    let socket = engine.socket();
    let start = Instant::now();
    // A detached thread: if the run times out, the panic stops the engine,
    // which ends the thread's connections.
    let submitter = std::thread::spawn(move || {
        pipeline(&socket, CONNECTIONS, WINDOW, signed);
        start.elapsed()
    });
    let (_, total) = chain.block_on(chain.watch(from, 0, jobs, start));
    let node_cpu = group_cpu(chain.node_pgid).saturating_sub(node_cpu);
    let engine_cpu = group_cpu(Some(engine.pid())).saturating_sub(engine_cpu);
    let requests_in = submitter.join().expect("submitter");
    chain.check_settled(from, &expected, inputs[0]);
    Sample { total, requests_in, node_cpu, engine_cpu }
}

/// One measurement's runs.
struct Measured {
    mode: &'static str,
    what: &'static str,
    jobs: usize,
    samples: Vec<Sample>,
}

impl Measured {
    fn median(&self) -> Sample {
        let mut samples = self.samples.clone();
        samples.sort_by_key(|s| s.total);
        samples[samples.len() / 2]
    }

    fn rate(&self) -> f64 {
        self.jobs as f64 / self.median().total.as_secs_f64()
    }
}

fn run_many(
    mode: &'static str,
    what: &'static str,
    jobs: usize,
    runs: usize,
    mut run: impl FnMut() -> Sample,
) -> Measured {
    let mut samples = Vec::new();
    for i in 0..runs {
        let sample = run();
        let wall = sample.total.as_secs_f64();
        println!(
            "{mode:<12} {what:<28} run {}/{}: {:>7.3} s  {:>7.1} jobs/s  (requests in at {:.3} s; node CPU {:.2}, engine CPU {:.2})",
            i + 1,
            runs,
            wall,
            jobs as f64 / wall,
            sample.requests_in.as_secs_f64(),
            sample.node_cpu.as_secs_f64() / wall,
            sample.engine_cpu.as_secs_f64() / wall,
        );
        samples.push(sample);
    }
    Measured { mode, what, jobs, samples }
}

const BASELINE: &str = "node alone: requests mined";
const ONCHAIN: &str = "onchain: request->settled";
const OFFCHAIN: &str = "offchain: submit->settled";

fn main() {
    let bench_start = Instant::now();
    let settings = settings();
    let modes: Vec<(&'static str, Option<u64>)> =
        [("automine", None), ("interval 1s", Some(1000))].into_iter().filter(|(name, _)| selected(name)).collect();
    println!(
        "chain bench: {} jobs per run ({} for the node-alone baseline), {} runs per measurement, {SENDERS} request senders, engine poll {ENGINE_POLL_MS} ms, confirmations 1",
        settings.jobs, settings.baseline_jobs, settings.runs
    );

    // Declared first, dropped last: the engine and the node stop before
    // their files go.
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("data dir");
    let key = |name: &str| keys::load_or_generate(&data_dir.join(name)).expect("key");
    let (operator, relayer, signer) = (key(keys::OPERATOR_KEY), key(keys::RELAYER_KEY), key(keys::DEV_CONSUMER_KEY));
    let elf = guest_elf("square-root");
    let program = ProgramId::of(&elf);
    let clob = ProgramId::of(&guest_elf("clob"));

    let contracts = std::env::var_os("COPROCESSOR_CONTRACTS_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts"), PathBuf::from);
    // CHAIN_BENCH_LOG_DIR=DIR keeps node.log (with HARDHAT_NODE_LOG=1,
    // every JSON-RPC call the node served) and engine.log.
    let log_dir = std::env::var_os("CHAIN_BENCH_LOG_DIR").map_or_else(|| dir.path().to_owned(), PathBuf::from);
    let node_log = log_dir.join("node.log");
    let node =
        HardhatNode::start(&contracts, devnet::free_port().expect("free port"), Some(&node_log)).expect("hardhat node");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let deployer: PrivateKeySigner = devnet::DEV_DEPLOYER_KEY.parse().expect("deployer key");
    let params = DeployParams {
        rpc_url: node.url(),
        deployer: deployer.clone(),
        operator: operator.address(),
        relayer: relayer.address(),
        offchain_signer: signer.address(),
        square_root_program: program,
        clob_program: clob,
        max_cycles: 100_000_000,
        relayer_funds: U256::from(10u64).pow(U256::from(21u64)),
    };
    let deployment = runtime.block_on(devnet::deploy(&params)).expect("deploy");
    let provider = ProviderBuilder::new().connect_http(node.url().parse().expect("url")).erased();
    let accounts = runtime.block_on(provider.get_accounts()).expect("eth_accounts");
    assert!(accounts.len() > SENDERS, "hardhat has {} default accounts", accounts.len());
    let senders = accounts[1..=SENDERS].to_vec();
    let estimate = TransactionRequest::default()
        .from(senders[0])
        .to(deployment.square_root_consumer)
        .input(Bytes::from(requestSquareRootCall { n: U256::from(2u64) }.abi_encode()).into());
    let request_gas =
        runtime.block_on(provider.estimate_gas(estimate).into_future()).expect("estimate requestSquareRoot");
    let mut chain = Chain {
        runtime,
        provider,
        deployment: deployment.clone(),
        senders,
        // The relayer's margin (send.rs) for its own transactions.
        request_gas: request_gas * 6 / 5 + 10_000,
        node_pgid: node.pid(),
        next_input: 1,
    };
    println!(
        "node {} (pid {:?}), JobManager {}, SquareRootConsumer {}, request gas limit {}",
        node.url(),
        node.pid(),
        deployment.job_manager,
        deployment.square_root_consumer,
        chain.request_gas
    );

    // Baselines first, with no engine: its listener starts past them.
    let mut results: Vec<Measured> = Vec::new();
    for &(mode, block_time) in &modes {
        chain.set_block_time(block_time);
        baseline_run(&mut chain, WARM_UP.min(settings.jobs));
        let jobs = settings.baseline_jobs;
        results.push(run_many(mode, BASELINE, jobs, settings.runs, || baseline_run(&mut chain, jobs)));
    }
    chain.set_block_time(None);

    let config = format!(
        "[chain]\nrpc_url = \"{}\"\njob_manager = \"{}\"\nconfirmations = 1\npoll_interval_ms = {ENGINE_POLL_MS}\nstart_block = {}\n",
        node.url(),
        deployment.job_manager,
        chain.head() + 1
    );
    // The engine binary in its own process group (the shared harness), so
    // its CPU time is read apart from the node's.
    let log_level = std::env::var("CHAIN_BENCH_ENGINE_LOG").unwrap_or_else(|_| "warn".into());
    let engine = Engine::start_with(&data_dir, Some(&config), &[("RUST_LOG", &log_level)]);
    let reply: ProgramIdReply =
        engine.client().call(Call::SubmitProgram(SubmitProgram { elf: HexBytes(elf) })).expect("register square-root");
    assert_eq!(reply.program_id.0, program.0.to_vec(), "program ID");
    println!("engine pid {}, square-root registered; setup took {:.1?}", engine.pid(), bench_start.elapsed());

    for (i, &(mode, block_time)) in modes.iter().enumerate() {
        chain.set_block_time(block_time);
        // Untimed warm-up. The first batch of N of each kind runs 2-3x
        // slower than the next ones (the node's CPU is saturated all the
        // while, so it is hardhat warming up), hence a full one first.
        let warm_up = if i == 0 { settings.jobs } else { WARM_UP.min(settings.jobs) };
        onchain_run(&mut chain, &engine, warm_up);
        offchain_run(&mut chain, &engine, program, &signer, warm_up);
        let mut onchain = Vec::new();
        let mut offchain = Vec::new();
        // Interleaved, so drift in the machine's load hits both alike.
        for _ in 0..settings.runs {
            let jobs = settings.jobs;
            onchain.push(run_many(mode, ONCHAIN, jobs, 1, || onchain_run(&mut chain, &engine, jobs)));
            offchain
                .push(run_many(mode, OFFCHAIN, jobs, 1, || offchain_run(&mut chain, &engine, program, &signer, jobs)));
        }
        for (what, runs) in [(ONCHAIN, onchain), (OFFCHAIN, offchain)] {
            let samples = runs.into_iter().flat_map(|m| m.samples).collect();
            results.push(Measured { mode, what, jobs: settings.jobs, samples });
        }
    }
    chain.set_block_time(None);

    let metrics = engine.metrics().engine;
    let engine_log = engine.log();
    let status = engine.terminate();
    assert!(status.success(), "the engine stopped with {status}:\n{engine_log}");
    if log_dir != dir.path() {
        std::fs::write(log_dir.join("engine.log"), engine_log).expect("engine.log");
    }
    drop(node);

    println!("\nmedians of {} runs (rate = jobs/s; vs node = rate / the same mode's node-alone rate)", settings.runs);
    println!(
        "{:<12} {:<28} {:>5} {:>9} {:>9} {:>8} {:>12} {:>9} {:>11}",
        "mode", "measurement", "jobs", "wall s", "rate", "vs node", "requests in", "node CPU", "engine CPU"
    );
    for m in &results {
        let median = m.median();
        let baseline = results.iter().find(|b| b.mode == m.mode && b.what == BASELINE).map(Measured::rate);
        let wall = median.total.as_secs_f64();
        println!(
            "{:<12} {:<28} {:>5} {:>9.3} {:>9.1} {:>8} {:>10.3} s {:>9.2} {:>11.2}",
            m.mode,
            m.what,
            m.jobs,
            wall,
            m.rate(),
            baseline.map_or("-".into(), |b| format!("{:.2}", m.rate() / b)),
            median.requests_in.as_secs_f64(),
            median.node_cpu.as_secs_f64() / wall,
            median.engine_cpu.as_secs_f64() / wall,
        );
    }
    println!(
        "\nengine: {} results relayed, {} relay failures, {} dead-lettered, {} onchain jobs taken; whole bench {:.1?}",
        metrics.jobs_relayed,
        metrics.relay_failures,
        metrics.jobs_dead_lettered,
        metrics.onchain_jobs,
        bench_start.elapsed()
    );
    assert_eq!(metrics.jobs_dead_lettered, 0, "no job may be dead-lettered");
}
