//! Settlement throughput against a local EVM node (hardhat), beside what
//! the node itself sustains, in one process and against one node.
//!
//! # What runs
//!
//! A hardhat node on a free 127.0.0.1 port (stopped at the end), the
//! contracts deployed on it (`coprocessor::devnet::deploy`, as `coprocessor
//! dev` does), and the real engine binary (`coprocessor run`, bench profile,
//! its own process group) started through the tests' harness
//! (`Engine::start_with`) once per configuration, one at a time, each on a
//! data dir of its own with the same `operator.key`, `relayer.key` and
//! `dev-consumer.key` (the square-root consumer's offchain signer). Each
//! chain engine has `confirmations = 1`, `poll_interval_ms = 50`, and starts
//! its listener at the head. Jobs are `square-root` jobs; offchain ones are
//! signed by the dev consumer key and pipelined over the socket (4
//! fast-path connections, 512 requests in flight each); every run takes
//! fresh consumer nonces and fresh inputs. Each measurement is repeated
//! `CHAIN_BENCH_RUNS` times (default 5) and the figure is the median. The
//! sections, in the order they run:
//!
//! 1. `baseline`, node alone: the node mining the same settlement
//!    transactions the engine sends with `max_batch_items = 1`,
//!    `submitResultForOffchainJob` for offchain square-root jobs, built and
//!    signed exactly as the engine does (`JobSpec::from_offchain`,
//!    `result_with_metadata`, the operator's EIP-191 signature; the request
//!    signed by the dev consumer key), pre-signed EIP-1559 transactions sent
//!    raw in nonce order (one in flight per account) from (a) ONE of
//!    hardhat's default accounts and (b) EIGHT of them at once, automine;
//!    and, for the node's own ceiling with batches, (c) the same results 64
//!    per `submitResults` transaction from one account. Rate = mined
//!    settlements/s. `CHAIN_BENCH_BASELINE_JOBS` (default 5 x N) per run;
//!    untimed warm-up of N of each, single and batched, first (hardhat's
//!    first runs are 2-3x slower). Row (a) runs again after the engines, on
//!    the chain they grew: the reference rate of every ratio is the median
//!    of (a)'s runs before and after.
//! 2. `automine`, engine with automine: N (`CHAIN_BENCH_JOBS`, default 200)
//!    offchain jobs submitted over the socket, timed until all N are
//!    COMPLETED onchain (`JobCompleted`), with (a) `max_batch_items = 1`
//!    (InfinityVM's single-result functions), (b) `max_batch_items = 64`
//!    (`max_batch_gas` default: a tenth of the block gas limit) and (c)
//!    `max_batch_items = 64, max_batch_gas = 15_000_000`. Engines (a) and (b)
//!    also run onchain jobs: N `requestSquareRoot(n)` transactions, pre-signed
//!    and sent from the eight accounts at once, timed from the first request
//!    until all N are COMPLETED. Offchain and onchain runs alternate.
//! 3. `interval`, 1 s blocks (`evm_setAutomine(false)`,
//!    `evm_setIntervalMining(1000)`) with engines (b) and (c): a backlog of
//!    `CHAIN_BENCH_BACKLOG` (default 2000) offchain jobs submitted at once,
//!    timed until all are COMPLETED. For each block mined while a backlog
//!    existed, the share of the block gas limit used by settlement
//!    transactions (receipts of transactions from the relayer to the
//!    JobManager). A block `b` counts when it or an earlier block of the run
//!    carries a settlement, and jobs acknowledged by the time the bench saw
//!    block `b - 1` (so with a whole block time to reach the mempool) were
//!    still unsettled after `b`. The blocks before the first settlement
//!    while jobs waited (the relayer's ramp-up, with the node busy with the
//!    admission checks) are reported apart as `ramp-up`.
//! 4. gas per settled result, single vs batched, onchain and offchain: from
//!    the receipts of every settlement transaction of the runs above (gas
//!    used by transactions from the relayer to the JobManager, over the
//!    `JobCompleted` events of the run), beside the engine's own cumulative
//!    `relay_gas_per_result` (which includes the warm-ups). Not a section of
//!    its own: `-- gas` runs `automine`.
//! 5. `admission`, automine: `CHAIN_BENCH_ADMIT_JOBS` (default 2000)
//!    offchain jobs, timed until the engine has acknowledged all of them
//!    over the socket (each checked against the chain first, as settlement
//!    will check it), with engine (b), alternating with an engine with no
//!    `[chain]` section (same client, same N, running beside it). After each
//!    timed chain run the bench waits, untimed, until its jobs are settled.
//!
//! Before the timed runs of an engine: an untimed warm-up in automine (N jobs
//! of each kind for the first engine, 20 for the others) that also teaches
//! the relayer its gas figures. Every settled run checks that the completed
//! jobs are exactly the requested ones and that the consumer stored a root.
//! The node is polled for events every 25 ms, reading only new blocks.
//!
//! # How to run it
//!
//! `cargo bench --bench chain` (needs `make guests` and `npm ci` in
//! `contracts/`; 5-6 minutes after the build on 2 cores). A filter
//! argument keeps the sections whose name contains it (several may be
//! given): `cargo bench --bench chain -- interval`. Sizes:
//! `CHAIN_BENCH_JOBS`, `CHAIN_BENCH_BASELINE_JOBS`, `CHAIN_BENCH_BACKLOG`,
//! `CHAIN_BENCH_ADMIT_JOBS`, `CHAIN_BENCH_RUNS`. Without `--bench` (`cargo
//! test --benches`) it is a smoke test: 10 jobs everywhere, one run, every
//! section. Diagnostics: `CHAIN_BENCH_LOG_DIR=DIR` keeps `node.log` and each
//! engine's `engine-<name>.log` there; `HARDHAT_NODE_LOG=1` makes the node
//! log every JSON-RPC call; each `interval` run writes `blocks-<run>.csv`
//! (per block: gas, settlement transactions, results, jobs acknowledged
//! before it, backlog or not); `CHAIN_BENCH_ENGINE_LOG` is the engines'
//! `RUST_LOG` (default `warn`).
//!
//! # How to read it
//!
//! A line per run (ending with what the engine's metrics said as the run
//! ended: `settled_per_second`, `relay_average_batch`, and `relay_in_flight`
//! sampled during the run), then a table of medians: `rate` is mined
//! settlements/s (baseline), settled jobs/s (engines) or acknowledged jobs/s
//! (admission); `vs ref` is that rate over the one-account node-alone rate
//! (1 (a), runs before and after the engines; settlement) or over the
//! no-chain rate (admission); `target` is the issue's. `req in` is when the
//! last request was acknowledged (offchain) or mined (onchain). `gas/res`
//! is settlement gas per settled result and `res/tx` results per settlement
//! transaction, over all runs of the row. `node CPU`
//! and `engine CPU` are the CPU time of the hardhat and engine process
//! groups over the run's wall time (1.00 = one core busy; the machine has
//! the cores it has): a node near 1.00 while the engine idles means the node
//! is the bottleneck (hardhat executes one call at a time); both low means
//! time is lost waiting (block time, poll intervals, batch waits). Then the
//! 1 s block table (settlement gas share of the block gas limit over the
//! backlog blocks of all runs: median and minimum, and the relayer's
//! transactions in flight sampled at each block), the targets met or missed
//! and by how much, gas per result single vs batched, and each engine's own
//! metrics (`coproc_metrics`).

#[path = "../tests/common/mod.rs"]
mod common;

use alloy::eips::{BlockNumberOrTag, Encodable2718};
use alloy::network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent, SolValue};
use common::engine::Engine;
use common::{abi_u64, guest_elf};
use coprocessor::devnet::{self, DeployParams, Deployment, ExamplePrograms, HardhatNode};
use coprocessor::request::JobRequest;
use coprocessor_actors::config::Limits;
use coprocessor_actors::job::JobSpec;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::abi::OffchainJobRequest;
use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::{JobCompleted, JobCreated};
use coprocessor_actors::protocol::bindings::square_root_consumer::SquareRootConsumer::requestSquareRootCall;
use coprocessor_actors::protocol::bindings::IBatchSettlement::{submitResultsCall, ResultItem};
use coprocessor_actors::protocol::bindings::IJobManager::submitResultForOffchainJobCall;
use coprocessor_actors::protocol::bindings::{IJobManager, SquareRootConsumer};
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::SubmitJob;
use coprocessor_actors::EngineSnapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hardhat's default accounts #1..=#8 (the well-known test mnemonic; #0,
/// `devnet::DEV_DEPLOYER_KEY`, deploys). Checked against `eth_accounts`.
const ACCOUNT_KEYS: [&str; 8] = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
];
/// Socket connections for offchain submissions, and requests in flight on each.
const CONNECTIONS: usize = 4;
const WINDOW: usize = 512;
/// The engines' `[chain] poll_interval_ms`.
const ENGINE_POLL_MS: u64 = 50;
/// The block time of the `interval` section.
const BLOCK_MS: u64 = 1000;
/// How often the bench asks the node whether the run is over.
const WATCH: Duration = Duration::from_millis(25);
/// At most one `coproc_metrics` sample per this long during a run.
const METRICS_EVERY: Duration = Duration::from_millis(200);
/// Results per `submitResults` transaction in the node-alone batched row.
const NODE_BATCH: usize = 64;
/// Jobs of each kind in the untimed warm-up of every engine but the first.
const WARM_UP: usize = 20;
/// The targets.
const SINGLE_TARGET: f64 = 1.0;
const BATCH_TARGET: f64 = 3.0;
const BLOCK_SHARE_TARGET: f64 = 0.9;

/// A part of the bench that a filter argument can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Baseline,
    Automine,
    Interval,
    Admission,
}

impl Section {
    const ALL: [Section; 4] = [Section::Baseline, Section::Automine, Section::Interval, Section::Admission];

    fn name(self) -> &'static str {
        match self {
            Section::Baseline => "baseline",
            Section::Automine => "automine",
            Section::Interval => "interval",
            Section::Admission => "admission",
        }
    }

    /// Gas per result comes from the `automine` runs (single and batched,
    /// onchain and offchain), so `gas` selects them.
    fn matches(self, filter: &str) -> bool {
        self.name().contains(filter) || (filter == "gas" && self == Section::Automine)
    }
}

/// How many jobs and runs, and which sections.
#[derive(Debug)]
struct Settings {
    jobs: usize,
    baseline_jobs: usize,
    backlog: usize,
    admit_jobs: usize,
    runs: usize,
    sections: Vec<Section>,
}

impl Settings {
    fn from_env() -> Settings {
        let bench = std::env::args().any(|arg| arg == "--bench");
        let env = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).max(1)
        };
        let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
        let sections = Section::ALL
            .into_iter()
            .filter(|section| filters.is_empty() || filters.iter().any(|f| section.matches(f)))
            .collect();
        if bench {
            let jobs = env("CHAIN_BENCH_JOBS", 200);
            Settings {
                jobs,
                baseline_jobs: env("CHAIN_BENCH_BASELINE_JOBS", 5 * jobs),
                backlog: env("CHAIN_BENCH_BACKLOG", 2000),
                admit_jobs: env("CHAIN_BENCH_ADMIT_JOBS", 2000),
                runs: env("CHAIN_BENCH_RUNS", 5),
                sections,
            }
        } else {
            Settings { jobs: 10, baseline_jobs: 10, backlog: 10, admit_jobs: 10, runs: 1, sections }
        }
    }

    fn has(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }
}

/// An engine's relay configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Relay {
    name: &'static str,
    max_batch_items: usize,
    /// 0: the engine's default (a tenth of the block gas limit).
    max_batch_gas: u64,
}

const SINGLE: Relay = Relay { name: "single", max_batch_items: 1, max_batch_gas: 0 };
const BATCH: Relay = Relay { name: "batch64", max_batch_items: 64, max_batch_gas: 0 };
const BATCH_15M: Relay = Relay { name: "batch64-15M", max_batch_items: 64, max_batch_gas: 15_000_000 };

/// Settlement transactions found in a run's blocks.
#[derive(Debug, Clone, Copy, Default)]
struct Gas {
    /// Gas used by the settlement transactions.
    used: u64,
    /// Results they settled (`JobCompleted` events).
    results: usize,
    /// How many there were.
    txs: usize,
}

/// What the blocks of a run hold (see [`Chain::settlement`]).
#[derive(Debug, Default)]
struct Blocks {
    gas: Gas,
    shares: Vec<f64>,
    ramp_up: usize,
    csv: Vec<String>,
}

/// One timed run.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// First request to the last job settled (baseline: mined; admission:
    /// acknowledged).
    total: Duration,
    /// When the last request was acknowledged (offchain) or mined (onchain).
    requests_in: Duration,
    /// CPU time of the node's and the engine's process groups.
    node_cpu: Duration,
    engine_cpu: Duration,
    /// Settlement gas, from receipts.
    gas: Option<Gas>,
    /// Settlement gas over the block gas limit, for each backlog block.
    shares: Vec<f64>,
    /// Blocks mined while jobs waited, before the first settlement.
    ramp_up: usize,
    /// The relayer's transactions in flight (`relay_in_flight`), sampled.
    in_flight: Vec<u64>,
    /// `settled_per_second` and `relay_average_batch` as the run ended.
    engine: Option<(f64, f64)>,
}

impl Sample {
    fn wall(&self) -> f64 {
        self.total.as_secs_f64()
    }
}

/// What a row's rate is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    None,
    /// The one-account node-alone rate.
    Node,
    /// The no-chain admission rate.
    NoChain,
}

/// One measurement's runs.
#[derive(Debug)]
struct Row {
    section: Section,
    what: String,
    unit: &'static str,
    jobs: usize,
    reference: Reference,
    /// The target for `rate / reference`.
    target: Option<f64>,
    /// Its runs make the node-alone reference (one account, one result per
    /// transaction).
    node_reference: bool,
    samples: Vec<Sample>,
}

impl Row {
    fn new(section: Section, what: impl Into<String>, unit: &'static str, jobs: usize) -> Row {
        Row {
            section,
            what: what.into(),
            unit,
            jobs,
            reference: Reference::None,
            target: None,
            node_reference: false,
            samples: Vec::new(),
        }
    }

    fn compared(mut self, reference: Reference, target: Option<f64>) -> Row {
        self.reference = reference;
        self.target = target;
        self
    }

    fn median(&self) -> Sample {
        let mut samples = self.samples.clone();
        samples.sort_by_key(|s| s.total);
        samples.get(samples.len() / 2).cloned().unwrap_or_default()
    }

    fn rate(&self) -> f64 {
        self.jobs as f64 / self.median().wall()
    }

    /// Gas summed over every run.
    fn gas(&self) -> Option<Gas> {
        let runs: Vec<Gas> = self.samples.iter().filter_map(|s| s.gas).collect();
        (!runs.is_empty()).then(|| Gas {
            used: runs.iter().map(|g| g.used).sum(),
            results: runs.iter().map(|g| g.results).sum(),
            txs: runs.iter().map(|g| g.txs).sum(),
        })
    }

    fn shares(&self) -> Vec<f64> {
        self.samples.iter().flat_map(|s| s.shares.iter().copied()).collect()
    }

    /// Runs `run` and prints a line for it.
    fn run(&mut self, runs: usize, run: impl FnOnce() -> Sample) {
        let sample = run();
        let wall = sample.wall();
        let mut line = format!(
            "{:<9} {:<40} run {}/{}: {:>7.3} s {:>8.1} {:<10} (req in {:.3} s; node CPU {:.2}, engine CPU {:.2}",
            self.section.name(),
            self.what,
            self.samples.len() + 1,
            runs,
            wall,
            self.jobs as f64 / wall,
            self.unit,
            sample.requests_in.as_secs_f64(),
            sample.node_cpu.as_secs_f64() / wall,
            sample.engine_cpu.as_secs_f64() / wall,
        );
        if let Some(gas) = sample.gas {
            line += &format!(
                "; {} gas/res, {} res/tx",
                per(gas.used as f64, gas.results),
                per(gas.results as f64, gas.txs)
            );
        }
        if !sample.shares.is_empty() {
            line += &format!(
                "; {} ramp-up + {} backlog blocks: gas share median {:.1}%, min {:.1}%",
                sample.ramp_up,
                sample.shares.len(),
                100.0 * median_f64(&sample.shares),
                100.0 * min_f64(&sample.shares)
            );
        }
        if !sample.in_flight.is_empty() {
            let mut in_flight = sample.in_flight.clone();
            in_flight.sort_unstable();
            line += &format!(
                "; in flight median {} max {}",
                in_flight[in_flight.len() / 2],
                in_flight.last().copied().unwrap_or(0)
            );
        }
        if let Some((settled, batch)) = sample.engine {
            line += &format!("; engine: {settled:.1} settled/s, {batch:.1} res/tx");
        }
        println!("{line})");
        self.samples.push(sample);
    }
}

fn per(total: f64, count: usize) -> String {
    if count == 0 {
        "-".into()
    } else {
        format!("{:.0}", total / count as f64)
    }
}

/// A share as a percentage, or `-` for none.
fn percent(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * value)
    }
}

fn median_f64(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn min_f64(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::min)
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

/// CPU of the node and of an engine over a stretch of time.
struct Cpu {
    node: (Option<u32>, Duration),
    engine: (Option<u32>, Duration),
}

impl Cpu {
    fn start(node: Option<u32>, engine: Option<&Engine>) -> Cpu {
        let engine = engine.map(Engine::pid);
        Cpu { node: (node, group_cpu(node)), engine: (engine, group_cpu(engine)) }
    }

    /// (node, engine) CPU time since `start`.
    fn used(&self) -> (Duration, Duration) {
        (group_cpu(self.node.0).saturating_sub(self.node.1), group_cpu(self.engine.0).saturating_sub(self.engine.1))
    }
}

/// A client for the node. Idle connections are dropped after 2 s, before
/// the node's own keep-alive timeout (5 s) could close one under a request.
fn provider(url: &str) -> DynProvider {
    let url = url.parse().expect("node URL");
    ProviderBuilder::new()
        .with_reqwest(url, |builder| {
            builder.pool_idle_timeout(Duration::from_secs(2)).build().expect("HTTP client for the node")
        })
        .erased()
}

/// An offchain job, signed by the dev consumer key.
struct OffchainJob {
    request: JobRequest,
    submit: SubmitJob,
    n: u64,
}

/// What a run waits for, and what it records while it waits.
struct Watch<'a> {
    from: u64,
    created: usize,
    completed: usize,
    start: Instant,
    /// Jobs acknowledged so far (recorded at each new head).
    acked: Option<&'a AtomicUsize>,
    /// The engine to sample `relay_in_flight` from.
    engine: Option<&'a Engine>,
}

/// What a run saw.
#[derive(Debug, Default)]
struct Watched {
    created_at: Duration,
    completed_at: Duration,
    /// The head once everything was seen.
    last: u64,
    /// Each new head as first seen, with the jobs acknowledged then.
    heads: Vec<(u64, usize)>,
    in_flight: Vec<u64>,
}

/// The node as the bench sees it.
struct Chain {
    runtime: tokio::runtime::Runtime,
    url: String,
    deployment: Deployment,
    /// The square-root example consumer, which every job of the bench is for.
    consumer: Address,
    chain_id: u64,
    /// Hardhat's default accounts #1..=#8.
    accounts: Vec<PrivateKeySigner>,
    /// The engines' relayer key.
    relayer: Address,
    operator: Signer,
    dev: Signer,
    program: ProgramId,
    node_pgid: Option<u32>,
    /// The consumer's next nonce, for every offchain job of the bench.
    next_nonce: u64,
    next_input: u64,
    /// Gas limits of a pre-signed settlement and request.
    settle_gas: u64,
    request_gas: u64,
    /// `CHAIN_BENCH_LOG_DIR`: each backlog run's blocks go to
    /// `blocks-<run>.csv` there.
    log_dir: Option<PathBuf>,
    backlog_runs: usize,
}

impl Chain {
    fn block_on<F: IntoFuture>(&self, future: F) -> F::Output {
        self.runtime.block_on(future.into_future())
    }

    fn provider(&self) -> DynProvider {
        provider(&self.url)
    }

    fn head(&self, p: &DynProvider) -> u64 {
        self.block_on(p.get_block_number()).expect("eth_blockNumber")
    }

    fn node_rpc(&self, method: &'static str, params: serde_json::Value) {
        let p = self.provider();
        self.block_on(p.raw_request::<_, serde_json::Value>(method.into(), params)).expect(method);
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

    /// `count` offchain jobs with nonces no job has used: past every nonce
    /// the bench gave out and past the consumer's own count (onchain
    /// requests take `getNextNonce()`).
    fn offchain_jobs(&mut self, count: usize) -> Vec<OffchainJob> {
        let consumer = SquareRootConsumer::new(self.consumer, self.provider());
        let onchain = self.block_on(consumer.getNextNonce().call()).expect("getNextNonce");
        let first = self.next_nonce.max(onchain);
        self.next_nonce = first + count as u64;
        let inputs = self.inputs(count);
        inputs
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let request = JobRequest {
                    nonce: first + i as u64,
                    max_cycles: 1_000_000,
                    consumer: self.consumer,
                    program_id: self.program,
                    onchain_input: abi_u64(n),
                    offchain_input: Vec::new(),
                };
                let submit = request.sign(&self.dev);
                OffchainJob { request, submit, n }
            })
            .collect()
    }

    /// The `submitResultForOffchainJob` call the engine sends for `job`
    /// with `max_batch_items = 1`: the spec built as the engine builds it,
    /// the guest's output (`abi.encode(n, floor(sqrt(n)))`), the operator's
    /// signature, the request as its signer signed it.
    fn settlement_call(&self, job: &OffchainJob) -> Bytes {
        let item = self.result_item(job);
        submitResultForOffchainJobCall {
            offchainResultWithMetadata: item.resultWithMetadata,
            signatureOnResult: item.signature,
            jobRequest: item.jobRequest,
            signatureOnRequest: item.signatureOnRequest,
        }
        .abi_encode()
        .into()
    }

    /// The arguments that settle `job`, as the engine builds and signs them.
    fn result_item(&self, job: &OffchainJob) -> ResultItem {
        let request = job.request.abi_encode();
        let decoded = OffchainJobRequest::abi_decode(&request).expect("our own request decodes");
        let signature = job.submit.signature.0.clone();
        let spec =
            JobSpec::from_offchain(request.clone(), &decoded, Vec::new(), signature.clone(), false, &Limits::default())
                .expect("a valid offchain job");
        let output = (U256::from(job.n), U256::from(job.n.isqrt())).abi_encode();
        let result = spec.result_with_metadata(&output);
        let operator_signature = self.operator.sign(&result);
        ResultItem {
            resultWithMetadata: result.into(),
            signature: Bytes::copy_from_slice(&operator_signature),
            jobRequest: request.into(),
            signatureOnRequest: signature.into(),
        }
    }

    /// `submitResults` of `jobs`, each item with the single call's gas
    /// limit as its share, and the transaction's gas limit (the JobManager's
    /// documented bound, so that no item is skipped for want of gas).
    fn batch_call(&self, jobs: &[OffchainJob]) -> (Bytes, u64) {
        let share = self.settle_gas;
        let items: Vec<ResultItem> = jobs.iter().map(|job| self.result_item(job)).collect();
        let calldata: Bytes = submitResultsCall { items, gasPerItem: U256::from(share) }.abi_encode().into();
        let bytes = calldata.len() as u64;
        let gas = 21_000 + 17 * bytes + 100_000 + jobs.len() as u64 * (share + share / 63 + 40_000);
        (calldata, gas)
    }

    /// EIP-1559 fees for the next blocks: twice the latest base fee plus a
    /// 1 gwei tip.
    fn fees(&self, p: &DynProvider) -> (u128, u128) {
        let block = self.block_on(p.get_block_by_number(BlockNumberOrTag::Latest)).expect("latest block");
        let base = block.and_then(|b| b.header.base_fee_per_gas).unwrap_or(1_000_000_000);
        let tip = 1_000_000_000u128;
        (2 * u128::from(base) + tip, tip)
    }

    /// Signs `calls` to `to` round-robin from the first `senders` accounts,
    /// each account's in nonce order: one lane of raw transactions per
    /// account.
    fn sign_lanes(&self, p: &DynProvider, senders: usize, to: Address, calls: Vec<Bytes>, gas: u64) -> Vec<Vec<Bytes>> {
        let (max_fee, tip) = self.fees(p);
        let accounts = &self.accounts[..senders];
        self.block_on(async {
            let mut lanes = Vec::new();
            for account in accounts {
                let nonce = p.get_transaction_count(account.address()).pending().await.expect("account nonce");
                lanes.push((account, EthereumWallet::from(account.clone()), nonce, Vec::new()));
            }
            for (i, calldata) in calls.into_iter().enumerate() {
                let (account, wallet, nonce, raw) = &mut lanes[i % senders];
                let request = TransactionRequest::default()
                    .with_from(account.address())
                    .with_to(to)
                    .with_input(calldata)
                    .with_nonce(*nonce)
                    .with_chain_id(self.chain_id)
                    .with_gas_limit(gas)
                    .with_max_fee_per_gas(max_fee)
                    .with_max_priority_fee_per_gas(tip);
                let envelope = <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(request, &*wallet)
                    .await
                    .expect("sign a transaction");
                raw.push(Bytes::from(envelope.encoded_2718()));
                *nonce += 1;
            }
            lanes.into_iter().map(|(_, _, _, raw)| raw).collect()
        })
    }

    /// Polls the JobManager's events from `w.from` on until `w.created`
    /// `JobCreated` and `w.completed` `JobCompleted` events are there.
    /// Panics after a timeout that grows with the jobs.
    async fn watch(&self, p: &DynProvider, w: Watch<'_>) -> Watched {
        let timeout = Duration::from_secs(120) + Duration::from_millis(200) * w.created.max(w.completed) as u32;
        let (mut next, mut created, mut completed) = (w.from, 0, 0);
        let (mut created_at, mut completed_at) = (None, None);
        let mut watched = Watched::default();
        let mut sampled: Option<Instant> = None;
        loop {
            // Only the blocks not read yet: the watch stays cheap for the node.
            let head = p.get_block_number().await.expect("eth_blockNumber");
            if head >= next {
                watched.heads.push((head, w.acked.map_or(0, |acked| acked.load(Ordering::SeqCst))));
                if let Some(engine) = w.engine {
                    if sampled.is_none_or(|at| at.elapsed() >= METRICS_EVERY) {
                        watched.in_flight.push(engine.metrics().engine.relay_in_flight);
                        sampled = Some(Instant::now());
                    }
                }
                let filter = Filter::new()
                    .address(self.deployment.job_manager)
                    .event_signature(vec![JobCreated::SIGNATURE_HASH, JobCompleted::SIGNATURE_HASH])
                    .from_block(next)
                    .to_block(head);
                let logs = p.get_logs(&filter).await.expect("eth_getLogs");
                let count = |topic: B256| logs.iter().filter(|log| log.topic0() == Some(&topic)).count();
                created += count(JobCreated::SIGNATURE_HASH);
                completed += count(JobCompleted::SIGNATURE_HASH);
                next = head + 1;
            }
            let now = w.start.elapsed();
            if created >= w.created {
                created_at.get_or_insert(now);
            }
            if completed >= w.completed {
                completed_at.get_or_insert(now);
            }
            if let (Some(created_at), Some(completed_at)) = (created_at, completed_at) {
                watched.created_at = created_at;
                watched.completed_at = completed_at;
                watched.last = next.saturating_sub(1);
                return watched;
            }
            assert!(
                now < timeout,
                "after {timeout:?}: {created} of {} jobs created, {completed} of {} completed",
                w.created,
                w.completed
            );
            tokio::time::sleep(WATCH).await;
        }
    }

    /// Settlement transactions (from one of `senders` to the JobManager) in
    /// blocks `from..=to`: their gas and the results they settled. With
    /// `heads` (from [`Chain::watch`]), for the `interval` section: the
    /// settlement gas share of the block gas limit of each block mined while
    /// a backlog existed (from the first block with a settlement on: jobs
    /// acknowledged by the time block `b - 1` was seen still unsettled after
    /// block `b`), the blocks before the first settlement while jobs waited
    /// (ramp-up), and a CSV line per block for the diagnostics.
    fn settlement(
        &self,
        p: &DynProvider,
        senders: &[Address],
        (from, to): (u64, u64),
        heads: Option<&[(u64, usize)]>,
    ) -> Blocks {
        let job_manager = self.deployment.job_manager;
        self.block_on(async {
            let filter = Filter::new()
                .address(job_manager)
                .event_signature(JobCompleted::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let mut completed: BTreeMap<u64, usize> = BTreeMap::new();
            for log in p.get_logs(&filter).await.expect("eth_getLogs") {
                *completed.entry(log.block_number.expect("a mined log")).or_default() += 1;
            }
            let (mut blocks, mut settled, mut started) = (Blocks::default(), 0, false);
            blocks.csv = vec![
                "block,timestamp,gas_limit,gas_used,settlement_gas,settlement_txs,other_txs,results,acked_before,\
                 settled_through,backlog"
                    .to_owned(),
            ];
            for number in from..=to {
                let block = p.get_block_by_number(number.into()).await.expect("eth_getBlockByNumber");
                let block = block.expect("a mined block");
                let (mut used, mut txs, mut others) = (0, 0, 0);
                for hash in block.transactions.hashes() {
                    let receipt = p.get_transaction_receipt(hash).await.expect("receipt").expect("a mined receipt");
                    if receipt.to == Some(job_manager) && senders.contains(&receipt.from) {
                        used += receipt.gas_used;
                        txs += 1;
                    } else {
                        others += 1;
                    }
                }
                blocks.gas.used += used;
                blocks.gas.txs += txs;
                let in_block = completed.get(&number).copied().unwrap_or(0);
                blocks.gas.results += in_block;
                settled += in_block;
                started |= txs > 0;
                if let Some(heads) = heads {
                    let acked = heads.iter().take_while(|(head, _)| *head < number).last().map_or(0, |(_, a)| *a);
                    let backlog = started && acked > settled;
                    if backlog {
                        blocks.shares.push(used as f64 / block.header.gas_limit as f64);
                    } else if !started && acked > 0 {
                        blocks.ramp_up += 1;
                    }
                    let header = &block.header;
                    blocks.csv.push(format!(
                        "{number},{},{},{},{used},{txs},{others},{in_block},{acked},{settled},{backlog}",
                        header.timestamp, header.gas_limit, header.gas_used
                    ));
                }
            }
            blocks
        })
    }

    fn job_ids(&self, p: &DynProvider, topic0: B256, from: u64) -> BTreeSet<B256> {
        let filter = Filter::new().address(self.deployment.job_manager).event_signature(topic0).from_block(from);
        let logs = self.block_on(p.get_logs(&filter)).expect("eth_getLogs");
        logs.iter().map(|log| log.topics()[1]).collect()
    }

    /// Checks that exactly `expected` jobs completed from block `from` on,
    /// that one of them reads COMPLETED, and that the consumer stored `n`'s root.
    fn check_settled(&self, p: &DynProvider, from: u64, expected: &BTreeSet<B256>, n: u64) {
        let completed = self.job_ids(p, JobCompleted::SIGNATURE_HASH, from);
        assert_eq!(&completed, expected, "the completed jobs are not the jobs requested");
        let first = *expected.iter().next().expect("jobs");
        let manager = IJobManager::new(self.deployment.job_manager, p);
        let status = self.block_on(manager.getJobMetadata(first).call()).expect("getJobMetadata").status;
        assert_eq!(status, 3, "getJobMetadata: COMPLETED");
        let consumer = SquareRootConsumer::new(self.consumer, p);
        let answer = self.block_on(consumer.getSquareRoot(U256::from(n)).call()).expect("getSquareRoot");
        assert!(answer.known && answer.root == U256::from(n.isqrt()), "the consumer's root of {n}");
    }
}

/// Sends each lane's raw transactions in order, the lanes at once.
async fn send_lanes(p: &DynProvider, lanes: Vec<Vec<Bytes>>, start: Instant) -> Duration {
    let mut tasks = Vec::new();
    for lane in lanes {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            for raw in lane {
                let _pending = p.send_raw_transaction(&raw).await.expect("eth_sendRawTransaction");
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender task");
    }
    start.elapsed()
}

/// Sends `requests` over [`CONNECTIONS`] pipelined fast-path connections,
/// at most [`WINDOW`] in flight on each, counting the acknowledgements.
fn submit_all(socket: &Path, requests: Vec<SubmitJob>, acked: &AtomicUsize) {
    common::pipeline_counting(socket, CONNECTIONS, WINDOW, requests, acked);
}

/// Node alone: `jobs` pre-signed settlements from `senders` accounts, until
/// all are mined: one result per `submitResultForOffchainJob` (`batch` 1)
/// or `batch` per `submitResults`.
fn baseline_run(chain: &mut Chain, senders: usize, jobs: usize, batch: usize) -> Sample {
    let offchain = chain.offchain_jobs(jobs);
    let (calls, gas) = if batch == 1 {
        (offchain.iter().map(|job| chain.settlement_call(job)).collect(), chain.settle_gas)
    } else {
        let batches: Vec<(Bytes, u64)> = offchain.chunks(batch).map(|jobs| chain.batch_call(jobs)).collect();
        let gas = batches.iter().map(|(_, gas)| *gas).max().unwrap_or(0);
        (batches.into_iter().map(|(calldata, _)| calldata).collect(), gas)
    };
    let expected: BTreeSet<B256> = offchain.iter().map(|job| job.request.job_id().to_b256()).collect();
    let p = chain.provider();
    let lanes = chain.sign_lanes(&p, senders, chain.deployment.job_manager, calls, gas);
    let from = chain.head(&p) + 1;
    let cpu = Cpu::start(chain.node_pgid, None);
    let start = Instant::now();
    let watch = Watch { from, created: 0, completed: jobs, start, acked: None, engine: None };
    let (sent, watched) = chain.block_on(async { tokio::join!(send_lanes(&p, lanes, start), chain.watch(&p, watch)) });
    let (node_cpu, _) = cpu.used();
    chain.check_settled(&p, from, &expected, offchain[0].n);
    let addresses: Vec<Address> = chain.accounts[..senders].iter().map(PrivateKeySigner::address).collect();
    let gas = chain.settlement(&p, &addresses, (from, watched.last), None).gas;
    let total = watched.completed_at.max(sent);
    Sample { total, requests_in: total, node_cpu, gas: Some(gas), ..Sample::default() }
}

/// `jobs` onchain requests from the eight accounts with the engine running,
/// until all are completed.
fn onchain_run(chain: &mut Chain, engine: &Engine, jobs: usize) -> Sample {
    let inputs = chain.inputs(jobs);
    let calls = inputs.iter().map(|n| Bytes::from(requestSquareRootCall { n: U256::from(*n) }.abi_encode())).collect();
    let p = chain.provider();
    let senders = chain.accounts.len();
    let lanes = chain.sign_lanes(&p, senders, chain.consumer, calls, chain.request_gas);
    let from = chain.head(&p) + 1;
    let cpu = Cpu::start(chain.node_pgid, Some(engine));
    let start = Instant::now();
    let watch = Watch { from, created: jobs, completed: jobs, start, acked: None, engine: Some(engine) };
    let (_, watched) = chain.block_on(async { tokio::join!(send_lanes(&p, lanes, start), chain.watch(&p, watch)) });
    let (node_cpu, engine_cpu) = cpu.used();
    let metrics = engine.metrics().engine;
    let created = chain.job_ids(&p, JobCreated::SIGNATURE_HASH, from);
    assert_eq!(created.len(), jobs, "exactly N jobs created");
    chain.check_settled(&p, from, &created, inputs[0]);
    let gas = chain.settlement(&p, &[chain.relayer], (from, watched.last), None).gas;
    Sample {
        total: watched.completed_at,
        requests_in: watched.created_at,
        node_cpu,
        engine_cpu,
        gas: Some(gas),
        in_flight: watched.in_flight,
        engine: Some((metrics.settled_per_second, metrics.relay_average_batch)),
        ..Sample::default()
    }
}

/// `jobs` offchain jobs over the socket, until all are completed onchain;
/// with `backlog`, the gas share of the blocks mined while a backlog existed.
fn offchain_run(chain: &mut Chain, engine: &Engine, jobs: usize, backlog: bool) -> Sample {
    let offchain = chain.offchain_jobs(jobs);
    let expected: BTreeSet<B256> = offchain.iter().map(|job| job.request.job_id().to_b256()).collect();
    assert_eq!(expected.len(), jobs, "distinct job IDs");
    let n = offchain[0].n;
    let requests: Vec<SubmitJob> = offchain.into_iter().map(|job| job.submit).collect();
    let p = chain.provider();
    let from = chain.head(&p) + 1;
    let acked = Arc::new(AtomicUsize::new(0));
    let socket = engine.socket();
    let cpu = Cpu::start(chain.node_pgid, Some(engine));
    let start = Instant::now();
    // A detached thread: if the run times out, the panic stops the engine,
    // which ends the thread's connections.
    let submitter = std::thread::spawn({
        let acked = Arc::clone(&acked);
        move || {
            submit_all(&socket, requests, &acked);
            start.elapsed()
        }
    });
    let watch = Watch { from, created: 0, completed: jobs, start, acked: Some(&acked), engine: Some(engine) };
    let watched = chain.block_on(chain.watch(&p, watch));
    let (node_cpu, engine_cpu) = cpu.used();
    let metrics = engine.metrics().engine;
    let requests_in = submitter.join().expect("submitter");
    chain.check_settled(&p, from, &expected, n);
    let heads = backlog.then_some(watched.heads.as_slice());
    let blocks = chain.settlement(&p, &[chain.relayer], (from, watched.last), heads);
    if let (true, Some(dir)) = (backlog, &chain.log_dir) {
        chain.backlog_runs += 1;
        let path = dir.join(format!("blocks-{}.csv", chain.backlog_runs));
        std::fs::write(&path, blocks.csv.join("\n") + "\n").expect("write the blocks' CSV");
    }
    Sample {
        total: watched.completed_at,
        requests_in,
        node_cpu,
        engine_cpu,
        gas: Some(blocks.gas),
        shares: blocks.shares,
        ramp_up: blocks.ramp_up,
        in_flight: watched.in_flight,
        engine: Some((metrics.settled_per_second, metrics.relay_average_batch)),
    }
}

/// `jobs` offchain jobs over the socket, until all are acknowledged; then,
/// untimed, until they are settled (with a chain) or executed (without).
fn admission_run(chain: &mut Chain, engine: &Engine, jobs: usize, with_chain: bool) -> Sample {
    let offchain = chain.offchain_jobs(jobs);
    let requests: Vec<SubmitJob> = offchain.into_iter().map(|job| job.submit).collect();
    let p = chain.provider();
    let from = chain.head(&p) + 1;
    let executed = |engine: &Engine| {
        let metrics = engine.metrics().engine;
        metrics.jobs_done + metrics.jobs_failed
    };
    let before = executed(engine);
    let acked = AtomicUsize::new(0);
    let cpu = Cpu::start(chain.node_pgid, Some(engine));
    let start = Instant::now();
    submit_all(&engine.socket(), requests, &acked);
    let total = start.elapsed();
    let (node_cpu, engine_cpu) = cpu.used();
    if with_chain {
        let watch = Watch { from, created: 0, completed: jobs, start, acked: None, engine: None };
        chain.block_on(chain.watch(&p, watch));
    } else {
        let waited = Instant::now();
        while executed(engine) < before + jobs as u64 {
            assert!(waited.elapsed() < Duration::from_secs(120), "jobs not executed after 120 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Sample { total, requests_in: total, node_cpu, engine_cpu, ..Sample::default() }
}

/// Where the engines live and log.
struct Engines {
    root: PathBuf,
    keys: PathBuf,
    log_dir: Option<PathBuf>,
    log_level: String,
    /// Each engine's metrics when it stopped.
    stopped: Vec<(String, EngineSnapshot)>,
}

impl Engines {
    /// Starts an engine on a data dir of its own with the bench's keys;
    /// `relay: None` is an engine with no chain. Registers `square-root`.
    fn start(&self, chain: &Chain, name: &str, relay: Option<Relay>) -> Engine {
        let data_dir = self.root.join(format!("engine-{name}"));
        std::fs::create_dir(&data_dir).expect("engine data dir");
        for key in [keys::OPERATOR_KEY, keys::RELAYER_KEY, keys::DEV_CONSUMER_KEY] {
            std::fs::copy(self.keys.join(key), data_dir.join(key)).expect("copy a key file");
        }
        let config = relay.map(|relay| {
            let head = chain.head(&chain.provider());
            format!(
                "[chain]\nrpc_url = \"{}\"\njob_manager = \"{}\"\nconfirmations = 1\npoll_interval_ms = {ENGINE_POLL_MS}\n\
                 start_block = {}\nmax_batch_items = {}\nmax_batch_gas = {}\n",
                chain.url,
                chain.deployment.job_manager,
                head + 1,
                relay.max_batch_items,
                relay.max_batch_gas
            )
        });
        let engine = Engine::start_with(&data_dir, config.as_deref(), &[("RUST_LOG", &self.log_level)]);
        let program = engine.submit_program("square-root");
        assert_eq!(program.0, chain.program.0, "square-root's program ID");
        println!("engine {name} started (pid {}): {}", engine.pid(), config.as_deref().map_or("no chain", |_| "chain"));
        engine
    }

    /// Stops an engine and keeps its metrics (and its log, with
    /// `CHAIN_BENCH_LOG_DIR`).
    fn stop(&mut self, engine: Engine, name: &str) {
        let metrics = engine.metrics().engine;
        let log = engine.log();
        let status = engine.terminate();
        if let Some(dir) = &self.log_dir {
            std::fs::write(dir.join(format!("engine-{name}.log")), &log).expect("write the engine's log");
        }
        assert!(status.success(), "engine {name} stopped with {status}:\n{log}");
        assert_eq!(metrics.jobs_dead_lettered, 0, "engine {name} dead-lettered jobs:\n{log}");
        self.stopped.push((name.to_owned(), metrics));
    }
}

/// Untimed: `jobs` offchain jobs (and as many onchain ones with `onchain`)
/// through `engine`, in automine.
fn warm_up(chain: &mut Chain, engine: &Engine, jobs: usize, onchain: bool) {
    let started = Instant::now();
    offchain_run(chain, engine, jobs, false);
    if onchain {
        onchain_run(chain, engine, jobs);
    }
    println!("  warm-up: {jobs} jobs of each kind in {:.1?}", started.elapsed());
}

fn main() {
    let bench_start = Instant::now();
    let settings = Settings::from_env();
    let names: Vec<&str> = settings.sections.iter().map(|s| s.name()).collect();
    println!(
        "chain bench: sections {names:?}; N = {} jobs, node alone {} per run, backlog {}, admission {}; {} runs each; \
         engine poll {ENGINE_POLL_MS} ms, confirmations 1",
        settings.jobs, settings.baseline_jobs, settings.backlog, settings.admit_jobs, settings.runs
    );

    // Declared first, dropped last: the engines and the node stop before
    // their files go.
    let dir = tempfile::tempdir().expect("temp dir");
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir(&keys_dir).expect("keys dir");
    let key = |name: &str| keys::load_or_generate(&keys_dir.join(name)).expect("key");
    let (operator, relayer, dev) = (key(keys::OPERATOR_KEY), key(keys::RELAYER_KEY), key(keys::DEV_CONSUMER_KEY));
    let program = ProgramId::of(&guest_elf("square-root"));
    let clob = ProgramId::of(&guest_elf("clob"));

    let contracts = std::env::var_os("COPROCESSOR_CONTRACTS_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts"), PathBuf::from);
    // CHAIN_BENCH_LOG_DIR=DIR keeps node.log (with HARDHAT_NODE_LOG=1,
    // every JSON-RPC call the node served) and the engines' logs.
    let log_dir = std::env::var_os("CHAIN_BENCH_LOG_DIR").map(PathBuf::from);
    let node_log = log_dir.as_deref().unwrap_or(dir.path()).join("node.log");
    let node =
        HardhatNode::start(&contracts, devnet::free_port().expect("free port"), Some(&node_log)).expect("hardhat node");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let params = DeployParams {
        rpc_url: node.url(),
        deployer: devnet::DEV_DEPLOYER_KEY.parse().expect("deployer key"),
        operator: operator.address(),
        relayer: relayer.address(),
        extra_relayers: Vec::new(),
        offchain_signer: dev.address(),
        examples: Some(ExamplePrograms { square_root: program, clob }),
        max_cycles: 100_000_000,
        relayer_funds: U256::from(10u64).pow(U256::from(21u64)),
    };
    let deployment = runtime.block_on(devnet::deploy(&params)).expect("deploy");
    let consumer = deployment.examples.expect("the example consumers").square_root_consumer;
    let p = provider(&node.url());
    let accounts: Vec<PrivateKeySigner> =
        ACCOUNT_KEYS.iter().map(|key| key.parse().expect("a hardhat account key")).collect();
    let listed = runtime.block_on(p.get_accounts()).expect("eth_accounts");
    let addresses: Vec<Address> = accounts.iter().map(PrivateKeySigner::address).collect();
    assert_eq!(listed.get(1..=accounts.len()), Some(addresses.as_slice()), "hardhat's default accounts #1..#8");
    let chain_id = runtime.block_on(p.get_chain_id()).expect("eth_chainId");
    let mut chain = Chain {
        runtime,
        url: node.url(),
        deployment: deployment.clone(),
        consumer,
        chain_id,
        accounts,
        relayer: relayer.address(),
        operator,
        dev,
        program,
        node_pgid: node.pid(),
        next_nonce: 1,
        next_input: 1,
        settle_gas: 0,
        request_gas: 0,
        log_dir: log_dir.clone(),
        backlog_runs: 0,
    };
    // Gas limits with the relayer's margin for its single-result calls.
    let job = chain.offchain_jobs(1).remove(0);
    let settlement = chain.settlement_call(&job);
    let estimate = |to: Address, calldata: Bytes| {
        let request = TransactionRequest::default().with_from(addresses[0]).with_to(to).with_input(calldata);
        let gas = chain.block_on(p.estimate_gas(request)).expect("eth_estimateGas");
        gas + gas / 4
    };
    let settle_gas = estimate(deployment.job_manager, settlement);
    let request_gas = estimate(consumer, requestSquareRootCall { n: U256::from(2u64) }.abi_encode().into());
    (chain.settle_gas, chain.request_gas) = (settle_gas, request_gas);
    drop(p);
    println!(
        "node {} (pid {:?}), JobManager {}, SquareRootConsumer {}, relayer {}, gas limits: settlement {}, request {}; \
         setup {:.1?}",
        node.url(),
        node.pid(),
        deployment.job_manager,
        consumer,
        chain.relayer,
        chain.settle_gas,
        chain.request_gas,
        bench_start.elapsed()
    );

    let (n, runs) = (settings.jobs, settings.runs);
    let mut rows: Vec<Row> = Vec::new();

    // 1. The node alone, before any engine (no listener to see its blocks).
    let baseline_jobs = settings.baseline_jobs;
    if settings.has(Section::Baseline) {
        let started = Instant::now();
        baseline_run(&mut chain, 1, n, 1);
        baseline_run(&mut chain, 1, n, NODE_BATCH);
        println!("  node warm-up: {n} settlements alone and {n} in batches in {:.1?}", started.elapsed());
        let mut one = Row::new(Section::Baseline, "node alone: 1 account", "mined/s", baseline_jobs);
        let mut eight = Row::new(Section::Baseline, "node alone: 8 accounts", "mined/s", baseline_jobs);
        let mut batched = Row::new(
            Section::Baseline,
            format!("node alone: 1 account, {NODE_BATCH} per tx"),
            "mined/s",
            baseline_jobs,
        );
        for _ in 0..runs {
            one.run(runs, || baseline_run(&mut chain, 1, baseline_jobs, 1));
            eight.run(runs, || baseline_run(&mut chain, ACCOUNT_KEYS.len(), baseline_jobs, 1));
            batched.run(runs, || baseline_run(&mut chain, 1, baseline_jobs, NODE_BATCH));
        }
        one.node_reference = true;
        rows.push(one.compared(Reference::Node, None));
        rows.push(eight.compared(Reference::Node, None));
        rows.push(batched.compared(Reference::Node, None));
    }

    let mut engines = Engines {
        root: dir.path().to_owned(),
        keys: keys_dir.clone(),
        log_dir: log_dir.clone(),
        log_level: std::env::var("CHAIN_BENCH_ENGINE_LOG").unwrap_or_else(|_| "warn".into()),
        stopped: Vec::new(),
    };
    let automine = settings.has(Section::Automine);
    let interval = settings.has(Section::Interval);
    let admission = settings.has(Section::Admission);
    let mut first_engine = true;
    for relay in [SINGLE, BATCH, BATCH_15M] {
        let needed = automine || (relay != SINGLE && interval) || (relay == BATCH && admission);
        if !needed {
            continue;
        }
        let label = match relay.max_batch_gas {
            0 => format!("items<={}", relay.max_batch_items),
            gas => format!("items<={}, gas<={}M", relay.max_batch_items, gas / 1_000_000),
        };
        let onchain = automine && relay != BATCH_15M;
        let engine = engines.start(&chain, relay.name, Some(relay));
        warm_up(&mut chain, &engine, if first_engine { n } else { WARM_UP.min(n) }, onchain);
        first_engine = false;

        // 2. Automine: offchain and onchain runs, alternating.
        if automine {
            let target = if relay == SINGLE { SINGLE_TARGET } else { BATCH_TARGET };
            let mut off = Row::new(Section::Automine, format!("offchain, {label}"), "settled/s", n)
                .compared(Reference::Node, Some(target));
            let mut on = Row::new(Section::Automine, format!("onchain, {label}"), "settled/s", n)
                .compared(Reference::Node, None);
            for _ in 0..runs {
                off.run(runs, || offchain_run(&mut chain, &engine, n, false));
                if onchain {
                    on.run(runs, || onchain_run(&mut chain, &engine, n));
                }
            }
            rows.push(off);
            if onchain {
                rows.push(on);
            }
        }

        // 3. 1 s blocks with a backlog.
        if interval && relay != SINGLE {
            chain.set_block_time(Some(BLOCK_MS));
            let jobs = settings.backlog;
            let mut row = Row::new(Section::Interval, format!("offchain backlog, {label}"), "settled/s", jobs);
            for _ in 0..runs {
                row.run(runs, || offchain_run(&mut chain, &engine, jobs, true));
            }
            rows.push(row);
            chain.set_block_time(None);
        }

        // 5. Admission with and without a chain, alternating.
        if admission && relay == BATCH {
            let bare = engines.start(&chain, "no-chain", None);
            let jobs = settings.admit_jobs;
            // Untimed: the no-chain engine's first jobs.
            admission_run(&mut chain, &bare, WARM_UP.min(jobs), false);
            let mut with = Row::new(Section::Admission, format!("admitted, chain ({label})"), "admitted/s", jobs)
                .compared(Reference::NoChain, None);
            let mut without = Row::new(Section::Admission, "admitted, no chain", "admitted/s", jobs)
                .compared(Reference::NoChain, None);
            for _ in 0..runs {
                with.run(runs, || admission_run(&mut chain, &engine, jobs, true));
                without.run(runs, || admission_run(&mut chain, &bare, jobs, false));
            }
            rows.push(with);
            rows.push(without);
            engines.stop(bare, "no-chain");
        }
        engines.stop(engine, relay.name);
    }
    // The node alone again, on the chain the engines grew: the reference is
    // the median of both rows' runs.
    if settings.has(Section::Baseline) {
        let mut again =
            Row::new(Section::Baseline, "node alone: 1 account, after the engines", "mined/s", baseline_jobs);
        for _ in 0..runs {
            again.run(runs, || baseline_run(&mut chain, 1, baseline_jobs, 1));
        }
        again.node_reference = true;
        rows.push(again.compared(Reference::Node, None));
    }
    drop(node);

    report(&settings, &mut rows, &engines.stopped);
    println!("\nwhole bench {:.1?}", bench_start.elapsed());
}

/// The tables.
fn report(settings: &Settings, rows: &mut [Row], engines: &[(String, EngineSnapshot)]) {
    // In the order of the sections (the runs interleave them).
    rows.sort_by_key(|row| Section::ALL.iter().position(|s| *s == row.section));
    let rows = &*rows;
    // The median of every run of the node-alone reference rows (before and
    // after the engines).
    let pooled: Vec<&Row> = rows.iter().filter(|r| r.node_reference).collect();
    let node = pooled.first().map(|first| {
        let mut walls: Vec<f64> = pooled.iter().flat_map(|r| r.samples.iter().map(Sample::wall)).collect();
        walls.sort_by(f64::total_cmp);
        first.jobs as f64 / walls[walls.len() / 2]
    });
    let no_chain = rows.iter().find(|r| r.section == Section::Admission && r.what.contains("no chain")).map(Row::rate);
    let reference = |row: &Row| match row.reference {
        Reference::None => None,
        Reference::Node => node,
        Reference::NoChain => no_chain,
    };

    println!(
        "\nmedians of {} runs (vs ref: over the node-alone rate, one account, one result per transaction, median of \
         its runs before and after the engines: {}; or over the no-chain admission rate)",
        settings.runs,
        node.map_or("-".into(), |rate| format!("{rate:.1} mined/s"))
    );
    println!(
        "{:<9} {:<40} {:>5} {:>8} {:>8} {:<10} {:>6} {:>6} {:>8} {:>8} {:>6} {:>8} {:>10}",
        "section",
        "measurement",
        "jobs",
        "wall s",
        "rate",
        "unit",
        "vs ref",
        "target",
        "req in s",
        "gas/res",
        "res/tx",
        "node CPU",
        "engine CPU"
    );
    for row in rows {
        let median = row.median();
        let wall = median.wall();
        let gas = row.gas();
        let ratio = reference(row).map(|r| row.rate() / r);
        println!(
            "{:<9} {:<40} {:>5} {:>8.3} {:>8.1} {:<10} {:>6} {:>6} {:>8.3} {:>8} {:>6} {:>8.2} {:>10.2}",
            row.section.name(),
            row.what,
            row.jobs,
            wall,
            row.rate(),
            row.unit,
            ratio.map_or("-".into(), |r| format!("{r:.2}")),
            row.target.map_or("-".into(), |t| format!(">={t:.0}")),
            median.requests_in.as_secs_f64(),
            gas.map_or("-".into(), |g| per(g.used as f64, g.results)),
            gas.map_or("-".into(), |g| per(g.results as f64, g.txs)),
            median.node_cpu.as_secs_f64() / wall,
            median.engine_cpu.as_secs_f64() / wall,
        );
    }

    let backlog: Vec<&Row> = rows.iter().filter(|r| r.section == Section::Interval).collect();
    if !backlog.is_empty() {
        println!(
            "\n1 s blocks: settlement gas over the block gas limit, in the blocks mined while a backlog existed \
             (all runs; ramp-up: blocks before the first settlement, not counted)"
        );
        println!(
            "{:<40} {:>7} {:>7} {:>8} {:>8} {:>10} {:>17}",
            "measurement", "ramp-up", "blocks", "median", "min", "settled/s", "in flight p50/max"
        );
        for row in &backlog {
            let shares = row.shares();
            let mut in_flight: Vec<u64> = row.samples.iter().flat_map(|s| s.in_flight.iter().copied()).collect();
            in_flight.sort_unstable();
            println!(
                "{:<40} {:>7} {:>7} {:>8} {:>8} {:>10.1} {:>13}/{}",
                row.what,
                row.samples.iter().map(|s| s.ramp_up).sum::<usize>(),
                shares.len(),
                percent(median_f64(&shares)),
                percent(min_f64(&shares)),
                row.rate(),
                in_flight.get(in_flight.len() / 2).copied().unwrap_or(0),
                in_flight.last().copied().unwrap_or(0),
            );
        }
    }

    println!("\ntargets (issue 10)");
    for row in rows {
        if let (Some(target), Some(reference)) = (row.target, reference(row)) {
            let ratio = row.rate() / reference;
            verdict(&format!("{}: x node alone (1 account)", row.what), ratio, target, "x");
        }
    }
    for row in &backlog {
        let shares = row.shares();
        if !shares.is_empty() {
            verdict(&format!("{}: block gas share, median", row.what), median_f64(&shares), BLOCK_SHARE_TARGET, "");
            verdict(&format!("{}: block gas share, minimum", row.what), min_f64(&shares), BLOCK_SHARE_TARGET, "");
        }
    }

    println!("\ngas per settled result (receipts of the runs' settlement transactions)");
    for row in rows.iter().filter(|r| matches!(r.section, Section::Baseline | Section::Automine | Section::Interval)) {
        if let Some(gas) = row.gas() {
            println!(
                "  {:<40} {:>8} gas/result  ({} results in {} transactions)",
                row.what,
                per(gas.used as f64, gas.results),
                gas.results,
                gas.txs
            );
        }
    }

    println!("\nengine metrics at stop (coproc_metrics, cumulative, warm-ups included)");
    println!(
        "  {:<12} {:>8} {:>8} {:>10} {:>9} {:>12} {:>9} {:>8} {:>11}",
        "engine", "accepted", "relayed", "relay txs", "res/tx", "gas/result", "failures", "replaced", "dead letter"
    );
    for (name, m) in engines {
        println!(
            "  {:<12} {:>8} {:>8} {:>10} {:>9.1} {:>12.0} {:>9} {:>8} {:>11}",
            name,
            m.jobs_accepted,
            m.jobs_relayed,
            m.relay_transactions,
            m.relay_average_batch,
            m.relay_gas_per_result,
            m.relay_failures,
            m.relay_replacements,
            m.jobs_dead_lettered
        );
    }
}

fn verdict(what: &str, value: f64, target: f64, unit: &str) {
    let (shown, goal) = if unit.is_empty() {
        (format!("{:.1}%", 100.0 * value), format!("{:.0}%", 100.0 * target))
    } else {
        (format!("{value:.2}{unit}"), format!("{target:.1}{unit}"))
    };
    if value >= target {
        println!("  met     {what}: {shown} (target >= {goal})");
    } else {
        println!("  MISSED  {what}: {shown} (target >= {goal}; {:.0}% short)", 100.0 * (1.0 - value / target));
    }
}
