//! Cluster mode with a chain: engines on one NATS JetStream cluster settle
//! on one JobManager. Each result is relayed by exactly one engine at a
//! time (the cluster's relay queue) and settles exactly once, whichever
//! engine ran it and whichever relays it, and when a relaying engine dies.
//! Real `nats-server`s, a real hardhat node, real engines.

mod common;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::sol_types::SolEvent;
use common::engine::{u64_job, Engine};
use common::nats::NatsCluster;
use coprocessor::devnet::{self, DeployParams, Deployment, ExamplePrograms, HardhatNode};
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCompleted;
use coprocessor_actors::protocol::bindings::{IBatchSettlement, JobManager, SquareRootConsumer};
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{Call, ConsumerParams, HexBytes, JobIdParams, JobResult, NoParams, NonceReply};
use coprocessor_actors::wire::{RelayStrategy, StatusReply};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The consumers' offchain signer, allowed by every engine.
fn app_signer() -> Signer {
    Signer::from_bytes(&[0x42; 32]).unwrap()
}

/// A hardhat node with the contracts, and `n` engines on `nats` settling on
/// it: one operator key for all, a relayer key each (the first is the
/// JobManager's relayer, the others are authorized), all funded.
struct ChainCluster {
    engines: Vec<Engine>,
    deployment: Deployment,
    square_root: ProgramId,
    runtime: tokio::runtime::Runtime,
    node: HardhatNode,
    /// The engines' relayer addresses, in order.
    relayers: Vec<Address>,
}

impl ChainCluster {
    /// `chain` is added to each engine's `[chain]` section.
    fn start(nats: &NatsCluster, dir: &Path, n: usize, chain: &str) -> ChainCluster {
        let contracts = devnet::contracts_dir().unwrap();
        let node = HardhatNode::start(&contracts, devnet::free_port().unwrap(), None).expect("hardhat node");
        let operator = keys::load_or_generate(&dir.join(keys::OPERATOR_KEY)).unwrap();
        let mut relayers = Vec::new();
        for i in 0..n {
            let data = dir.join(format!("node-{i}"));
            coprocessor_actors::create_data_dir(&data).unwrap();
            std::fs::copy(dir.join(keys::OPERATOR_KEY), data.join(keys::OPERATOR_KEY)).unwrap();
            relayers.push(keys::load_or_generate(&data.join(keys::RELAYER_KEY)).unwrap().address());
        }
        let square_root = ProgramId::of(&common::guest_elf("square-root"));
        let clob = ProgramId::of(&common::guest_elf("clob"));
        let params = DeployParams {
            rpc_url: node.url(),
            deployer: devnet::DEV_DEPLOYER_KEY.parse().unwrap(),
            operator: operator.address(),
            relayer: relayers[0],
            extra_relayers: relayers[1..].to_vec(),
            offchain_signer: app_signer().address(),
            examples: Some(ExamplePrograms { square_root, clob }),
            max_cycles: 100_000_000,
            relayer_funds: U256::from(10u64).pow(U256::from(21u64)),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let deployment = runtime.block_on(devnet::deploy(&params)).expect("deploy");
        let engines = (0..n)
            .map(|i| {
                let config = format!(
                    "[offchain]\nallowed_signers = [\"{}\"]\n{}ack_wait_ms = 2000\n\
                     [chain]\nrpc_url = \"{}\"\njob_manager = \"{}\"\npoll_interval_ms = 100\nrpc_timeout_ms = 2000\n{chain}",
                    app_signer().address(),
                    nats.engine_config(&format!("node-{i}")),
                    node.url(),
                    deployment.job_manager,
                );
                Engine::start_with(&dir.join(format!("node-{i}")), Some(&config), &[])
            })
            .collect();
        ChainCluster { engines, deployment, square_root, runtime, node, relayers }
    }

    /// Whether the JobManager takes results from the engines' relayers.
    fn authorize_relayers(&self, authorized: bool) {
        let deployer: alloy::signers::local::PrivateKeySigner = devnet::DEV_DEPLOYER_KEY.parse().unwrap();
        let provider = ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(deployer))
            .connect_http(self.node.url().parse().unwrap());
        let manager = JobManager::new(self.deployment.job_manager, &provider);
        let batch = IBatchSettlement::new(self.deployment.job_manager, &provider);
        self.runtime.block_on(async {
            let relayer = if authorized { self.relayers[0] } else { Address::repeat_byte(0x42) };
            let set = manager.setRelayer(relayer).send().await.unwrap().get_receipt().await.unwrap();
            assert!(set.status(), "setRelayer reverted");
            for extra in &self.relayers[1..] {
                let set = batch.setRelayerAuthorized(*extra, authorized).send().await.unwrap();
                assert!(set.get_receipt().await.unwrap().status(), "setRelayerAuthorized reverted");
            }
        });
    }

    fn consumer(&self) -> Address {
        self.deployment.examples.expect("example consumers").square_root_consumer
    }

    /// `requestSquareRoot(n)` onchain: the job's ID.
    fn request_onchain(&self, n: u64) -> B256 {
        let deployer: alloy::signers::local::PrivateKeySigner = devnet::DEV_DEPLOYER_KEY.parse().unwrap();
        let provider = ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(deployer))
            .connect_http(self.node.url().parse().unwrap());
        let consumer = SquareRootConsumer::new(self.consumer(), provider);
        self.runtime.block_on(async {
            let receipt = consumer.requestSquareRoot(U256::from(n)).send().await.unwrap().get_receipt().await.unwrap();
            assert!(receipt.status(), "request reverted");
            let created = receipt.inner.logs().iter().find_map(|log| {
                log.log_decode::<coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCreated>().ok()
            });
            created.expect("JobCreated").inner.data.jobID
        })
    }

    /// How many `JobCompleted` events each settled job has.
    fn completions(&self) -> HashMap<B256, usize> {
        let mut counts = HashMap::new();
        for id in self.completed_in_order() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    /// The jobs of every `JobCompleted` event, in the chain's order.
    fn completed_in_order(&self) -> Vec<B256> {
        let filter = alloy::rpc::types::Filter::new()
            .address(self.deployment.job_manager)
            .event_signature(JobCompleted::SIGNATURE_HASH)
            .from_block(0);
        let provider = ProviderBuilder::new().connect_http(self.node.url().parse().unwrap());
        let logs = self.runtime.block_on(provider.get_logs(&filter)).expect("logs");
        logs.iter().filter_map(|log| log.topics().get(1).copied()).collect()
    }
}

fn status(engine: &Engine) -> StatusReply {
    engine.client().call(Call::Status(NoParams {})).unwrap()
}

#[test]
fn five_hundred_jobs_settle_exactly_once_while_a_relaying_engine_is_killed() {
    let nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ChainCluster::start(&nats, dir.path(), 3, "");
    let program = cluster.engines[0].submit_program("square-root");
    assert_eq!(program, cluster.square_root);
    for engine in &cluster.engines {
        assert!(engine.holds_within(&program, Duration::from_secs(30)), "the program did not reach every engine");
    }

    // 50 onchain requests, which every engine's listener reads and queues
    // (the queue keeps one of each), then 450 offchain jobs sent
    // round-robin to the engines (nonces far above the onchain ones: a
    // settled offchain nonce moves the consumer's next nonce past it).
    let mut ids: Vec<B256> = (1..=50u64).map(|n| cluster.request_onchain(n * n)).collect();
    let signer = app_signer();
    for nonce in 0..450u64 {
        let job = u64_job(program, cluster.consumer(), 1_000_000 + nonce, 1_000 + nonce);
        let engine = &cluster.engines[nonce as usize % 3];
        engine.client().call::<JobIdParams>(Call::SubmitJob(job.sign(&signer))).expect("submit");
        ids.push(job.job_id().to_b256());
    }
    let unique: std::collections::HashSet<&B256> = ids.iter().collect();
    assert_eq!(unique.len(), 500, "500 distinct jobs");

    // An engine that is relaying (results pulled from the relay queue and
    // not yet settled) dies: kill -9.
    let start = Instant::now();
    let relaying = loop {
        let held = cluster.engines.iter().position(|engine| {
            let cluster = status(engine).cluster.expect("cluster status");
            cluster.relays_held_here > 0 && cluster.relays_ended_here > 0
        });
        if let Some(i) = held {
            break i;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no engine was relaying");
        std::thread::sleep(Duration::from_millis(20));
    };
    let dead = cluster.engines.remove(relaying);
    let _ = dead.kill9();

    // Every job settles, exactly once.
    let start = Instant::now();
    loop {
        let completions = cluster.completions();
        let missing = ids.iter().filter(|id| !completions.contains_key(*id)).count();
        if missing == 0 {
            for id in &ids {
                assert_eq!(completions[id], 1, "job {id} settled {} times", completions[id]);
            }
            assert_eq!(completions.len(), ids.len(), "nothing else settled");
            break;
        }
        if start.elapsed() > Duration::from_secs(240) {
            let unsettled: Vec<String> = ids
                .iter()
                .filter(|id| !completions.contains_key(*id))
                .map(|id| {
                    let on: Vec<String> = cluster
                        .engines
                        .iter()
                        .map(|engine| {
                            let params = JobIdParams { job_id: HexBytes(id.to_vec()) };
                            match engine.client().call::<JobResult>(Call::GetResult(params)) {
                                Ok(result) => format!("{} {:?}", result.status, result.relay_error),
                                Err(err) => err.to_string(),
                            }
                        })
                        .collect();
                    format!("{id}: {on:?}")
                })
                .collect();
            let logs: Vec<String> = cluster.engines.iter().map(Engine::log).collect();
            panic!("{missing} of {} jobs never settled: {unsettled:#?}\n{}", ids.len(), logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every surviving engine tells how each settled, whichever engine relayed it.
    for engine in &cluster.engines {
        for id in &ids {
            let start = Instant::now();
            loop {
                let params = JobIdParams { job_id: HexBytes(id.to_vec()) };
                let result: JobResult = engine.client().call(Call::GetResult(params)).unwrap();
                if matches!(result.status.as_str(), "confirmed" | "already-settled") {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(30), "job {id} is {} on a survivor", result.status);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let metrics = engine.metrics().engine;
        assert_eq!(metrics.jobs_dead_lettered, 0, "no dead letter");
    }
    let relayed: u64 = cluster.engines.iter().map(|engine| status(engine).cluster.unwrap().relays_ended_here).sum();
    assert!(relayed > 0, "the survivors relayed");
}

/// A result no relayer can settle is dead-lettered by the engine that
/// relayed it, and every engine says so and by whom; `job retry` is for
/// that engine (another says where to go), and once it settles, every
/// engine tells how it ended.
#[test]
fn a_dead_lettered_result_is_retried_on_its_engine_and_every_engine_sees_it_settle() {
    let nats = NatsCluster::start(2);
    let dir = tempfile::tempdir().unwrap();
    let cluster = ChainCluster::start(&nats, dir.path(), 2, "max_relay_attempts = 2\n");
    let program = cluster.engines[0].submit_program("square-root");
    assert!(cluster.engines[1].holds_within(&program, Duration::from_secs(30)));

    cluster.authorize_relayers(false);
    let id = cluster.request_onchain(81);
    // Unknown until a listener has read the request.
    let result_on = |engine: &Engine| -> Option<JobResult> {
        engine.client().call(Call::GetResult(JobIdParams { job_id: HexBytes(id.to_vec()) })).ok()
    };
    let start = Instant::now();
    let results = loop {
        let results: Vec<Option<JobResult>> = cluster.engines.iter().map(result_on).collect();
        if results.iter().all(|result| result.as_ref().is_some_and(|result| result.status == "dead-lettered")) {
            break results.into_iter().flatten().collect::<Vec<_>>();
        }
        assert!(start.elapsed() < Duration::from_secs(120), "not dead-lettered everywhere: {results:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The engine whose relayer gave up, named on the one that did not.
    let relayed_by = |result: &JobResult| {
        let error = result.relay_error.as_deref().unwrap_or_default();
        assert!(error.contains("caller is not the relayer"), "{error}");
        error.rsplit_once("(relayed by ").map(|(_, node)| node.trim_end_matches(')').to_owned())
    };
    let (here, there) = match (relayed_by(&results[0]), relayed_by(&results[1])) {
        (None, Some(node)) if node == "node-0" => (0, 1),
        (Some(node), None) if node == "node-1" => (1, 0),
        named => panic!("one engine names the other: {named:?} {results:?}"),
    };

    cluster.authorize_relayers(true);
    let retry = |engine: &Engine| {
        common::coprocessor(&["job", "retry", &format!("{id}"), "--data-dir", engine.data_dir.to_str().unwrap()])
    };
    let out = retry(&cluster.engines[there]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: job {id} was dead-lettered by engine \"node-{here}\", not by this one: retry it there\n")
    );
    let out = retry(&cluster.engines[here]);
    assert!(out.status.success(), "{out:?}");
    let start = Instant::now();
    loop {
        let statuses: Vec<String> = cluster
            .engines
            .iter()
            .map(|engine| result_on(engine).map(|result| result.status).unwrap_or_default())
            .collect();
        if statuses == ["confirmed", "confirmed"] {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "after the retry: {statuses:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cluster.completions().get(&id), Some(&1));
}

/// Ordered relay across the cluster: one engine holds a consumer's lease
/// and settles all its ordered results in nonce order, whichever engines
/// took them in and ran them. Killed (-9), it leaves the lease to go
/// quiet; another engine takes it over and carries on in order, and each
/// result settles once.
#[test]
fn ordered_results_settle_in_nonce_order_across_engines_and_through_the_death_of_their_relayer() {
    let nats = NatsCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ChainCluster::start(&nats, dir.path(), 3, "");
    let program = cluster.engines[0].submit_program("square-root");
    for engine in &cluster.engines {
        assert!(engine.holds_within(&program, Duration::from_secs(30)), "the program did not reach every engine");
    }
    let signer = app_signer();
    let consumer = cluster.consumer();
    let params = ConsumerParams { consumer: HexBytes(consumer.to_vec()) };
    let first = cluster.engines[0].client().call::<NonceReply>(Call::NextNonce(params)).unwrap().nonce;

    // 90 ordered jobs, odd nonces first, then even ones, round-robin.
    let jobs: Vec<_> = (first..first + 90).map(|nonce| u64_job(program, consumer, nonce, 10_000 + nonce)).collect();
    let (odd, even): (Vec<_>, Vec<_>) = jobs.iter().partition(|job| (job.nonce - first) % 2 == 1);
    for (i, job) in odd.into_iter().chain(even).enumerate() {
        let mut params = job.sign(&signer);
        params.relay_strategy = RelayStrategy::Ordered;
        cluster.engines[i % 3].client().call::<JobIdParams>(Call::SubmitJob(params)).expect("submit");
    }
    let nonce_of: HashMap<B256, u64> = jobs.iter().map(|job| (job.job_id().to_b256(), job.nonce)).collect();

    // One engine holds the lease and relays; once it has settled some, it
    // dies.
    let start = Instant::now();
    let holder = loop {
        let holding: Vec<usize> = (0..3)
            .filter(|i| status(&cluster.engines[*i]).cluster.expect("cluster status").leases_held_here == 1)
            .collect();
        let settled = cluster.completions().len();
        match holding.as_slice() {
            [holder] if settled >= 10 => break *holder,
            [_] | [] => {}
            held => panic!("more than one engine holds the consumer's lease: {held:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no engine relayed the ordered results");
        std::thread::sleep(Duration::from_millis(50));
    };
    let dead = cluster.engines.remove(holder);
    let _ = dead.kill9();

    let start = Instant::now();
    let settled = loop {
        let settled: Vec<u64> =
            cluster.completed_in_order().iter().filter_map(|id| nonce_of.get(id).copied()).collect();
        if settled.len() >= 90 {
            break settled;
        }
        assert!(start.elapsed() < Duration::from_secs(180), "{} of 90 settled: {settled:?}", settled.len());
        std::thread::sleep(Duration::from_millis(200));
    };
    // Each once, in nonce order.
    assert_eq!(settled, (first..first + 90).collect::<Vec<_>>());
    let holders: Vec<u64> =
        cluster.engines.iter().map(|engine| status(engine).cluster.expect("cluster status").leases_held_here).collect();
    assert_eq!(holders.iter().sum::<u64>(), 1, "a survivor took the lease over: {holders:?}");
}

/// What someone with access to the servers puts on the relay queue is
/// not trusted: bytes that are no job ID are dropped, a job ID with no
/// recorded result is offered again for a while and never sent, and the
/// cluster's own results settle meanwhile.
#[test]
fn a_relay_message_that_is_no_recorded_result_is_never_sent() {
    let nats = NatsCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let cluster = ChainCluster::start(&nats, dir.path(), 1, "");
    let engine = &cluster.engines[0];
    engine.submit_program("square-root");
    let unknown = B256::repeat_byte(0x77);
    cluster.runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.urls()[0].as_str()).await.unwrap());
        for payload in [b"not a job ID".to_vec(), unknown.to_vec()] {
            js.publish("coprocessor.relay", payload.into()).await.unwrap().await.unwrap();
        }
    });
    let id = cluster.request_onchain(49);
    let start = Instant::now();
    while cluster.completions().get(&id) != Some(&1) {
        assert!(start.elapsed() < Duration::from_secs(60), "the onchain job did not settle");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = engine.log();
    assert!(log.contains("refused: a message in COPROCESSOR_RELAY: not a job ID: 12 bytes"), "{log}");
    assert!(log.contains(&format!("job {unknown}: no result recorded yet")), "{log}");
    assert_eq!(cluster.completions().len(), 1, "only the onchain job settled");
}
