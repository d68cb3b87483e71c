//! Settlement as a real chain's fee market and failures make it, on a
//! real hardhat node per test: a stuck transaction is replaced with higher
//! fees, a dropped one is sent again, a kill -9 with results in flight
//! loses and doubles nothing, a batch's poisoned items are skipped while
//! the others settle, and two engines on one JobManager settle each job
//! once between them.
//!
//! Blocks are mined by the tests here (automine off) wherever the order of
//! events onchain matters.

mod common;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::SolEvent;
use common::chain::{Link, Stack};
use common::engine::{u64_job, Engine};
use coprocessor_actors::protocol::bindings::i_batch_settlement::IBatchSettlement::ResultSkipped;
use coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCompleted;
use coprocessor_actors::protocol::bindings::{IBatchSettlement, SquareRootConsumer};
use coprocessor_actors::wire::{Call, JobIdParams, JobResult};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(90);

/// Test consumers (each artifact in its own module: they share the
/// MockConsumer ABI).
mod reverting {
    alloy::sol!(
        #[sol(rpc)]
        RevertingConsumer,
        "contracts/out/RevertingConsumer.json"
    );
}
mod burner {
    alloy::sol!(
        #[sol(rpc)]
        GasBurnerConsumer,
        "contracts/out/GasBurnerConsumer.json"
    );
}

/// Turns automine off: transactions wait in the mempool until
/// [`mine`] or interval mining.
fn manual_mining(stack: &Stack) {
    stack.node_rpc("evm_setAutomine", json!([false]));
}

fn mine(stack: &Stack) {
    stack.node_rpc("evm_mine", json!([]));
}

/// Mines a block every 200 ms on a thread until the returned guard drops.
struct Miner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Miner {
    fn start(url: String) -> Miner {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let provider = alloy::providers::ProviderBuilder::new().connect_http(url.parse().expect("url"));
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = runtime.block_on(provider.raw_request::<_, serde_json::Value>("evm_mine".into(), json!([])));
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Miner { stop, thread: Some(thread) }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The engine's view of a job.
fn status(engine: &Engine, id: &[u8]) -> Option<JobResult> {
    engine.client().call::<JobResult>(Call::GetResult(JobIdParams { job_id: id.to_vec().into() })).ok()
}

/// Waits until `check` holds, mining a block every `mine_every` if set.
fn wait_until(stack: &Stack, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}\n{}", stack.engine.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submits an offchain square-root job for `consumer` (signed by the
/// engine's dev signer, which every test consumer accepts).
fn submit(stack: &Stack, engine: &Engine, consumer: Address, nonce: u64, n: u64) -> B256 {
    let job = u64_job(stack.square_root, consumer, nonce, n);
    let id = job.job_id().to_b256();
    engine.client().call::<JobIdParams>(Call::SubmitJob(job.sign(&stack.engine.dev_signer()))).expect("submit");
    id
}

/// The transaction the engine last sent for a job, once it is `submitted`.
fn submitted_tx(stack: &Stack, id: B256) -> B256 {
    let mut tx = None;
    wait_until(stack, "job submitted", SETTLE, || {
        tx = status(&stack.engine, id.as_slice())
            .filter(|result| result.status == "submitted")
            .and_then(|result| result.tx_hash)
            .map(|hash| B256::from_slice(&hash.0));
        tx.is_some()
    });
    tx.expect("tx")
}

#[test]
fn a_stuck_transaction_is_replaced_with_higher_fees_and_settles_once() {
    let stack = Stack::start(Link::Direct, "replace_after_blocks = 2\n");
    manual_mining(&stack);
    let id = submit(&stack, &stack.engine, stack.examples.square_root_consumer, 5, 81);
    let first = submitted_tx(&stack, id);
    let old = stack.block_on(stack.fresh_owner().get_transaction_by_hash(first)).expect("tx").expect("first tx known");

    // A fee spike: the next block's base fee is 200 gwei, far above what
    // the transaction offers, so blocks go by without it until the relayer
    // replaces it.
    stack.node_rpc("hardhat_setNextBlockBaseFeePerGas", json!([format!("{:#x}", 200_000_000_000u64)]));
    mine(&stack);
    let spiked = stack.block_on(stack.fresh_owner().get_block_by_number(alloy::eips::BlockNumberOrTag::Latest));
    let spiked = spiked.expect("block").expect("latest block");
    assert_eq!(spiked.transactions.len(), 0, "the spike keeps the transaction out");
    wait_until(&stack, "confirmed", SETTLE, || {
        mine(&stack);
        std::thread::sleep(Duration::from_millis(200));
        status(&stack.engine, id.as_slice()).is_some_and(|result| result.status == "confirmed")
    });
    let result = status(&stack.engine, id.as_slice()).expect("status");
    let replacement = result.tx_hash.map(|hash| B256::from_slice(&hash.0)).expect("settling transaction");
    assert_ne!(replacement, first, "settled by a replacement");
    let new = stack
        .block_on(stack.fresh_owner().get_transaction_by_hash(replacement))
        .expect("tx")
        .expect("replacement known");
    use alloy::consensus::Transaction;
    assert_eq!(new.inner.nonce(), old.inner.nonce(), "a replacement takes the same nonce");
    assert!(new.inner.max_fee_per_gas() >= 200_000_000_000 / 8 * 7, "it offers the new base fee");
    assert!(
        new.inner.max_priority_fee_per_gas().unwrap_or(0) * 8 >= old.inner.max_priority_fee_per_gas().unwrap_or(0) * 9,
        "tip +12.5% at least"
    );
    assert_eq!(stack.completions(id), 1);
    assert!(stack.engine.metrics().engine.relay_replacements >= 1);
}

#[test]
fn a_dropped_transaction_is_sent_again_and_settles_once() {
    let stack = Stack::start(Link::Direct, "");
    manual_mining(&stack);
    let id = submit(&stack, &stack.engine, stack.examples.square_root_consumer, 6, 64);
    let tx = submitted_tx(&stack, id);
    let dropped: bool = serde_json::from_value(stack.node_rpc("hardhat_dropTransaction", json!([tx]))).expect("bool");
    assert!(dropped, "the node had the transaction");
    // The relayer sees the gap in its account's nonces and sends it again.
    wait_until(&stack, "sent again", SETTLE, || {
        stack.block_on(stack.fresh_owner().get_transaction_by_hash(tx)).expect("tx").is_some()
    });
    mine(&stack);
    let result = stack.wait_status(id.as_slice(), "confirmed", SETTLE);
    assert_eq!(result.tx_hash.map(|hash| B256::from_slice(&hash.0)), Some(tx));
    assert_eq!(stack.completions(id), 1);
}

#[test]
fn kill_9_with_200_results_in_flight_then_restart_settles_each_job_once() {
    let mut stack = Stack::start(Link::Direct, "");
    manual_mining(&stack);
    let consumer = stack.examples.square_root_consumer;
    let ids: Vec<B256> = (1..=200u64).map(|i| submit(&stack, &stack.engine, consumer, 10_000 + i, i)).collect();
    // Most results are out, in the mempool, when the engine dies.
    wait_until(&stack, "results in flight", SETTLE, || stack.engine.metrics().engine.relay_in_flight > 0);
    wait_until(&stack, "every job executed", SETTLE, || {
        ids.iter().all(|id| {
            status(&stack.engine, id.as_slice()).is_some_and(|r| r.status != "pending" && r.status != "running")
        })
    });
    let in_flight = stack.engine.metrics().engine.relay_in_flight;
    let node = stack.fresh_owner();
    let killed = stack.engine.kill9();
    // Some settle while it is down.
    stack.runtime.block_on(node.raw_request::<_, serde_json::Value>("evm_mine".into(), json!([]))).expect("mine");
    stack.engine = Engine::respawn(killed);
    let _miner = Miner::start(stack.node.url());
    for id in &ids {
        stack.wait_status(id.as_slice(), "confirmed", SETTLE);
    }
    for id in &ids {
        assert_eq!(stack.completions(*id), 1, "job {id} settled once");
    }
    assert!(in_flight > 0, "transactions were in flight at the kill");
}

#[test]
fn a_batch_skips_its_poisoned_items_and_settles_the_others() {
    // Results wait a second for others, so the poisoned ones share a batch
    // with good ones.
    let stack = Stack::start(Link::Direct, "max_relay_attempts = 1\nbatch_wait_ms = 1000\n");
    let dev = stack.engine.dev_signer().address();
    let owner = stack.fresh_owner();
    let reverting = stack
        .block_on(reverting::RevertingConsumer::deploy(owner.clone(), stack.deployment.job_manager, dev))
        .expect("deploy RevertingConsumer");
    let burner = stack
        .block_on(burner::GasBurnerConsumer::deploy(owner.clone(), stack.deployment.job_manager, dev))
        .expect("deploy GasBurnerConsumer");
    let square_root = stack.examples.square_root_consumer;
    // One result first, so the relayer knows what an offchain result costs
    // (its one simulation); the poisoned ones then go into batches.
    let warm = submit(&stack, &stack.engine, square_root, 1, 4);
    stack.wait_status(warm.as_slice(), "confirmed", SETTLE);

    manual_mining(&stack);
    // An onchain job, requested and mined, then executed by the engine.
    let app = SquareRootConsumer::new(square_root, owner.clone());
    let request = app.requestSquareRoot(U256::from(49u64));
    let pending = stack.block_on(request.send()).expect("request");
    mine(&stack);
    let receipt = stack.block_on(pending.get_receipt()).expect("receipt");
    let cancelled = receipt.inner.logs().iter().find_map(|log| {
        log.log_decode::<coprocessor_actors::protocol::bindings::i_job_manager::IJobManager::JobCreated>().ok()
    });
    let cancelled = cancelled.expect("JobCreated").inner.data.jobID;
    let good: Vec<B256> = (0..3u64).map(|i| submit(&stack, &stack.engine, square_root, 100 + i, 100 + i)).collect();
    let rejected = submit(&stack, &stack.engine, reverting.address().to_owned(), 1, 9);
    let burned = submit(&stack, &stack.engine, burner.address().to_owned(), 1, 16);
    for id in good.iter().chain([&cancelled, &rejected, &burned]) {
        submitted_tx(&stack, *id);
    }
    // The consumer cancels its onchain job with a high tip: it is mined
    // before the batch that carries the job.
    // An explicit gas limit: an estimate would run against the mempool,
    // where the relayer's batch already settled the job.
    let cancel =
        app.cancel(cancelled).gas(200_000).max_priority_fee_per_gas(50_000_000_000).max_fee_per_gas(100_000_000_000);
    let cancel = stack.block_on(cancel.send()).expect("cancel");
    mine(&stack);
    assert!(stack.block_on(cancel.get_receipt()).expect("receipt").status(), "cancel mined first");
    let _miner = Miner::start(stack.node.url());

    for id in &good {
        stack.wait_status(id.as_slice(), "confirmed", SETTLE);
        assert_eq!(stack.completions(*id), 1);
    }
    stack.wait_status(cancelled.as_slice(), "cancelled", SETTLE);
    let result = stack.wait_status(rejected.as_slice(), "dead-lettered", SETTLE);
    assert_eq!(result.relay_error.as_deref(), Some("RevertingConsumer: result rejected"));
    let result = stack.wait_status(burned.as_slice(), "dead-lettered", SETTLE);
    assert_eq!(result.relay_error.as_deref(), Some("JobManager.submitResults: item ran out of gas"));
    for id in [cancelled, rejected, burned] {
        assert_eq!(stack.completions(id), 0, "poisoned job {id} never completed");
    }
    // They were skipped inside batches that settled other results.
    let skipped = logs::<ResultSkipped>(&stack);
    let completed: HashSet<B256> = logs::<JobCompleted>(&stack).into_iter().map(|(tx, _)| tx).collect();
    let skipped_ids: HashSet<B256> = skipped.iter().map(|(_, id)| *id).collect();
    assert!(skipped_ids.contains(&cancelled) && skipped_ids.contains(&rejected), "{skipped:?}");
    assert!(skipped.iter().any(|(tx, _)| completed.contains(tx)), "a batch both skipped and settled: {skipped:?}");
}

/// `(transaction, job ID)` of every event `E` of the JobManager.
fn logs<E: SolEvent>(stack: &Stack) -> Vec<(B256, B256)> {
    let filter = Filter::new().address(stack.deployment.job_manager).event_signature(E::SIGNATURE_HASH).from_block(0);
    let logs = stack.block_on(stack.fresh_owner().get_logs(&filter)).expect("logs");
    logs.iter().filter_map(|log| Some((log.transaction_hash?, *log.topics().get(1)?))).collect()
}

#[test]
fn two_engines_on_one_job_manager_settle_each_job_once() {
    let stack = Stack::start(Link::Direct, "");
    // A second engine: the same operator key (the JobManager trusts one),
    // its own relayer, authorized onchain by the owner and funded.
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    for key in [coprocessor_actors::keys::OPERATOR_KEY, coprocessor_actors::keys::DEV_CONSUMER_KEY] {
        std::fs::copy(stack.engine.data_dir.join(key), data.join(key)).expect("copy key");
    }
    let relayer = coprocessor_actors::keys::load_or_generate(&data.join(coprocessor_actors::keys::RELAYER_KEY))
        .expect("relayer key")
        .address();
    let owner = stack.fresh_owner();
    let batch = IBatchSettlement::new(stack.deployment.job_manager, owner.clone());
    stack.block_on(async {
        let authorized = batch.setRelayerAuthorized(relayer, true).send().await.expect("authorize");
        assert!(authorized.get_receipt().await.expect("receipt").status());
        let fund = TransactionRequest::default().with_to(relayer).with_value(U256::from(10u64).pow(U256::from(20u64)));
        assert!(owner.send_transaction(fund).await.expect("fund").get_receipt().await.expect("receipt").status());
    });
    let config = format!(
        "[chain]\nrpc_url = \"{}\"\njob_manager = \"{}\"\npoll_interval_ms = 100\nrpc_timeout_ms = 2000\n",
        stack.node.url(),
        stack.deployment.job_manager
    );
    let other = Engine::start_with(&data, Some(&config), &[]);
    other.submit_program("square-root");

    // 50 onchain jobs, seen by both listeners; then 50 offchain ones, each
    // sent to both engines before any block can settle it.
    let onchain: Vec<B256> = (1..=50u64).map(|n| stack.request_square_root(1000 + n)).collect();
    manual_mining(&stack);
    let consumer = stack.examples.square_root_consumer;
    let offchain: Vec<B256> = (1..=50u64)
        .map(|i| {
            let id = submit(&stack, &stack.engine, consumer, 1_000_000 + i, i);
            assert_eq!(submit(&stack, &other, consumer, 1_000_000 + i, i), id);
            id
        })
        .collect();
    let _miner = Miner::start(stack.node.url());
    let settled = |engine: &Engine, id: &B256| {
        status(engine, id.as_slice()).map(|r| r.status).filter(|s| s == "confirmed" || s == "already-settled")
    };
    for id in onchain.iter().chain(&offchain) {
        wait_until(&stack, "settled on both engines", SETTLE, || {
            settled(&stack.engine, id).is_some() && settled(&other, id).is_some()
        });
        assert_eq!(stack.completions(*id), 1, "job {id} settled once");
        let mine = [settled(&stack.engine, id), settled(&other, id)];
        let confirmed = mine.iter().filter(|s| s.as_deref() == Some("confirmed")).count();
        assert_eq!(confirmed, 1, "exactly one engine settled job {id}: {mine:?}");
    }
    for engine in [&stack.engine, &other] {
        let metrics = engine.metrics().engine;
        assert_eq!(metrics.jobs_dead_lettered, 0, "no dead letter from the race");
    }
}

#[test]
fn a_second_relayer_key_is_a_second_nonce_lane() {
    // One result per transaction, so that the lanes have many to share.
    let stack = Stack::start(Link::Direct, "max_batch_items = 1\nrelayer_keys = [\"relayer-2.key\"]\n");
    let second = coprocessor_actors::keys::load_or_generate(&stack.engine.data_dir.join("relayer-2.key"))
        .expect("the engine made the second key")
        .address();
    let owner = stack.fresh_owner();
    stack.block_on(async {
        let fund = TransactionRequest::default().with_to(second).with_value(U256::from(10u64).pow(U256::from(20u64)));
        assert!(owner.send_transaction(fund).await.expect("fund").get_receipt().await.expect("receipt").status());
    });
    let consumer = stack.examples.square_root_consumer;
    let ids: Vec<B256> = (1..=60u64).map(|i| submit(&stack, &stack.engine, consumer, 500 + i, i)).collect();
    for id in &ids {
        stack.wait_status(id.as_slice(), "confirmed", SETTLE);
        assert_eq!(stack.completions(*id), 1);
    }
    let first = coprocessor_actors::keys::load_or_generate(&stack.engine.data_dir.join("relayer.key"))
        .expect("first key")
        .address();
    let sent = |account: Address| stack.block_on(owner.get_transaction_count(account)).expect("count");
    assert!(sent(first) > 0 && sent(second) > 0, "both keys settled results: {} and {}", sent(first), sent(second));
}
