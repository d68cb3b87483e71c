//! Settlement on a real local EVM node (hardhat, started per test on a
//! free 127.0.0.1 port): onchain and offchain jobs end up in the consumer
//! contracts, ordered relay keeps a stateful consumer's roots in step, a
//! node outage loses nothing and doubles nothing, and refusals say why.

mod common;

use alloy::primitives::{keccak256, B256, U256};
use alloy::sol_types::SolValue;
use common::chain::{Link, Stack};
use common::engine::u64_job;
use common::hex;
use coprocessor::request::JobRequest;
use coprocessor_actors::wire::{Call, JobIdParams, JobResult, RelayStrategy};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

#[test]
fn an_onchain_request_is_executed_settled_and_stored_by_the_consumer() {
    let stack = Stack::start(Link::Direct, "");
    let id = stack.request_square_root(1_000_001);

    let result = stack.wait_status(id.as_slice(), "confirmed", SETTLE);
    assert_eq!(stack.stored_square_root(1_000_001), Some(U256::from(1000u64)));
    assert_eq!(stack.onchain_state(id), 3, "COMPLETED");
    assert_eq!(stack.completions(id), 1);
    let tx = result.tx_hash.expect("the settling transaction");
    assert_eq!(tx.0.len(), 32);
    let output = result.output.expect("output").0;
    assert_eq!(output, (U256::from(1_000_001u64), U256::from(1000u64)).abi_encode());
}

#[test]
fn an_offchain_request_answers_at_once_and_its_result_lands_onchain() {
    let stack = Stack::start(Link::Direct, "");
    let consumer = stack.examples.square_root_consumer;
    let mut params = u64_job(stack.square_root, consumer, 7, 144).sign(&stack.engine.dev_signer());
    params.wait = true;
    let result: JobResult = stack.engine.client().call(Call::SubmitJob(params)).expect("submit");
    assert_eq!(result.status, "done", "the result comes back before settlement");
    assert_eq!(result.output.expect("output").0, (U256::from(144u64), U256::from(12u64)).abi_encode());

    let id = result.job_id.0;
    stack.wait_status(&id, "confirmed", SETTLE);
    assert_eq!(stack.stored_square_root(144), Some(U256::from(12u64)));
    assert_eq!(stack.completions(B256::from_slice(&id)), 1);
}

#[test]
fn clob_batches_settle_in_nonce_order_and_the_state_root_advances_each_time() {
    let stack = Stack::start(Link::Direct, "");
    let consumer = stack.examples.clob_consumer;
    let signer = stack.engine.dev_signer();
    // Fifty batches, each from the state the previous one leaves.
    let mut state = clob::EMPTY_STATE.to_vec();
    let mut generator = clob::OrderGenerator::new(42);
    let mut requests = Vec::new();
    let mut roots = Vec::new();
    for nonce in 1..=50u64 {
        let orders = generator.next_batch(20);
        let root = keccak256(&state);
        let onchain_input = clob::onchain_input(&root.0, &orders);
        let (next, _) = clob::step(&state, &clob::encode_orders(&orders)).expect("valid batch");
        let request = JobRequest {
            nonce,
            max_cycles: 50_000_000,
            consumer,
            program_id: stack.clob,
            onchain_input,
            offchain_input: state.clone(),
        };
        state = next;
        roots.push(keccak256(&state));
        requests.push(request);
    }
    // Submitted out of order: odd nonces first, then even ones.
    let mut client = stack.engine.client();
    let (odd, even): (Vec<_>, Vec<_>) = requests.iter().partition(|r| r.nonce % 2 == 1);
    for request in odd.into_iter().chain(even) {
        let mut params = request.sign(&signer);
        params.relay_strategy = RelayStrategy::Ordered;
        client.call::<JobIdParams>(Call::SubmitJob(params)).expect("submit batch");
    }
    for request in &requests {
        stack.wait_status(request.job_id().0.as_slice(), "confirmed", SETTLE);
    }
    let clob = stack.clob_consumer();
    assert_eq!(stack.block_on(clob.batchCount().call()).expect("batchCount"), U256::from(50u64));
    assert_eq!(stack.block_on(clob.getLatestStateRoot().call()).expect("root"), *roots.last().expect("50 roots"));
    // Each settlement advanced the root from the previous one, in nonce order.
    let filter = alloy::rpc::types::Filter::new()
        .address(consumer)
        .event_signature(<coprocessor_actors::protocol::bindings::clob_consumer::ClobConsumer::BatchSettled as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        .from_block(0);
    let logs = stack.block_on(alloy::providers::Provider::get_logs(&stack.owner, &filter)).expect("logs");
    let settled: Vec<B256> = logs
        .iter()
        .map(|log| {
            log.log_decode::<coprocessor_actors::protocol::bindings::clob_consumer::ClobConsumer::BatchSettled>()
                .expect("event")
                .inner
                .data
                .stateRoot
        })
        .collect();
    assert_eq!(settled, roots);
}

#[test]
fn a_node_down_for_ten_seconds_loses_nothing_and_settles_each_job_once() {
    let mut stack = Stack::start(Link::Proxied, "");
    let consumer = stack.examples.square_root_consumer;
    let signer = stack.engine.dev_signer();
    let mut client = stack.engine.client();
    let mut ids = Vec::new();
    // Some jobs before the outage, settled or in flight when it starts.
    // Onchain and offchain jobs share the consumer's nonces, and an
    // onchain request takes the highest settled one plus one. These nonces
    // are never that (k·1000 + 1), so the two kinds cannot collide.
    for i in 1..=10u64 {
        let job = u64_job(stack.square_root, consumer, 1000 * i, i * i);
        ids.push(job.job_id().to_b256());
        client.call::<JobIdParams>(Call::SubmitJob(job.sign(&signer))).expect("submit");
    }
    // Onchain requests go straight to the node; the engine cannot see them.
    let onchain: Vec<B256> = (100..105u64).map(|n| stack.request_square_root(n)).collect();

    // The node disappears for 10 s: connections refused, the node frozen.
    stack.proxy.as_mut().expect("proxied").down();
    stack.node.signal(libc_sigstop());
    // An offchain request cannot be checked meanwhile: retry later, and it
    // is not remembered as refused.
    let waiting = u64_job(stack.square_root, consumer, 77_000, 3);
    let err = client.call::<JobIdParams>(Call::SubmitJob(waiting.sign(&signer))).expect_err("chain unavailable");
    assert!(err.to_string().starts_with("cannot check the request onchain: node unreachable"), "{err}");
    let unknown = stack
        .engine
        .client()
        .call::<JobResult>(Call::GetResult(JobIdParams { job_id: waiting.job_id().0.to_vec().into() }));
    assert_eq!(unknown.expect_err("unknown").to_string(), format!("no job {}", hex(waiting.job_id().0.as_slice())));
    std::thread::sleep(Duration::from_secs(10));
    stack.node.signal(libc_sigcont());
    stack.proxy.as_mut().expect("proxied").up();
    // The node drops the keep-alive connections that idled through the
    // freeze; the test's own client reconnects.
    std::thread::sleep(Duration::from_secs(1));

    // And more work after it.
    let more: Vec<B256> = (105..110u64).map(|n| stack.request_square_root(n)).collect();
    for id in ids.iter().chain(&onchain).chain(&more) {
        stack.wait_status(id.as_slice(), "confirmed", SETTLE);
        assert_eq!(stack.onchain_state(*id), 3);
        assert_eq!(stack.completions(*id), 1, "job {id} settled once");
    }
    for n in (1..=10u64).map(|n| n * n).chain(100..110) {
        assert!(stack.stored_square_root(n).is_some(), "root of {n} stored");
    }
}

#[test]
fn refusals_say_why_in_job_status() {
    let stack = Stack::start(Link::Direct, "");
    let consumer = stack.examples.square_root_consumer;
    let mut client = stack.engine.client();

    // A key that is not the consumer's offchain signer: EIP-1271 says no.
    let stranger = coprocessor_actors::protocol::eip191::Signer::random();
    let job = u64_job(stack.square_root, consumer, 1, 4);
    let err = client.call::<JobIdParams>(Call::SubmitJob(job.sign(&stranger))).expect_err("bad signer");
    let expected = format!("bad request signature: consumer {consumer} rejects it (EIP-1271 isValidSignature)");
    assert_eq!(err.to_string(), expected);
    let status = status_of(&stack, job.job_id().to_b256());
    assert_eq!((status.status.as_str(), status.rejection.as_deref()), ("rejected", Some(expected.as_str())));

    // The same nonce again, once settled: the chain has it.
    let signer = stack.engine.dev_signer();
    client.call::<JobIdParams>(Call::SubmitJob(job.sign(&signer))).expect("first use");
    stack.wait_status(job.job_id().0.as_slice(), "confirmed", SETTLE);
    let replay = u64_job(stack.square_root, consumer, 1, 9);
    let err = client.call::<JobIdParams>(Call::SubmitJob(replay.sign(&signer))).expect_err("replayed nonce");
    let expected = format!("nonce 1 already used onchain by consumer {consumer}");
    assert_eq!(err.to_string(), expected);
    let status = status_of(&stack, replay.job_id().to_b256());
    assert_eq!((status.status.as_str(), status.rejection.as_deref()), ("confirmed", Some(expected.as_str())));

    // Cancelled in the block that created it: the engine never runs it.
    stack.node_rpc("evm_setAutomine", serde_json::json!([false]));
    let next: u64 = stack.block_on(stack.square_root_consumer().getNextNonce().call()).expect("nonce");
    let id = coprocessor_actors::job::JobId::of(next, consumer).to_b256();
    let sent = stack.block_on(async {
        let request = stack.square_root_consumer().requestSquareRoot(U256::from(49u64)).send().await.expect("request");
        let cancel = stack.square_root_consumer().cancel(id).send().await.expect("cancel");
        (request, cancel)
    });
    stack.node_rpc("evm_mine", serde_json::json!([]));
    stack.node_rpc("evm_setAutomine", serde_json::json!([true]));
    let _ = sent;
    assert_eq!(stack.onchain_state(id), 2, "CANCELLED");
    let result = stack.wait_status(id.as_slice(), "cancelled", SETTLE);
    assert_eq!(result.output, None, "never executed");
    let out = common::coprocessor(&[
        "job",
        "status",
        &hex(id.as_slice()),
        "--data-dir",
        stack.engine.data_dir.to_str().expect("utf-8"),
    ]);
    // The job never ran, but its program (and so its ISA) is known.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cancelled\nisa: rv32im\n");
}

#[test]
fn a_job_whose_submission_keeps_failing_is_dead_lettered_and_retried() {
    let stack = Stack::start(Link::Direct, "max_relay_attempts = 2\n");
    // The JobManager stops accepting the engine's relayer.
    let manager =
        || coprocessor_actors::protocol::bindings::JobManager::new(stack.deployment.job_manager, stack.fresh_owner());
    let relayer = stack.block_on(manager().relayer().call()).expect("relayer");
    let stranger = alloy::primitives::Address::repeat_byte(0x42);
    let set = |who| {
        stack.block_on(async {
            manager().setRelayer(who).send().await.expect("send").get_receipt().await.expect("receipt")
        })
    };
    assert!(set(stranger).status());

    let id = stack.request_square_root(81);
    let result = stack.wait_status(id.as_slice(), "dead-lettered", SETTLE);
    assert!(
        result.relay_error.as_deref().is_some_and(|e| e.contains("JobManager.submitResult: caller is not the relayer")),
        "{:?}",
        result.relay_error
    );
    let data_dir = stack.engine.data_dir.to_str().expect("utf-8").to_owned();
    let out = common::coprocessor(&["job", "status", &hex(id.as_slice()), "--data-dir", &data_dir]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("dead-lettered: "), "{out:?}");

    // Fixed onchain, then pushed again by hand.
    assert!(set(relayer).status());
    let out = common::coprocessor(&["job", "retry", &hex(id.as_slice()), "--data-dir", &data_dir]);
    assert!(out.status.success(), "{out:?}");
    stack.wait_status(id.as_slice(), "confirmed", SETTLE);
    assert_eq!(stack.stored_square_root(81), Some(U256::from(9u64)));
    let out = common::coprocessor(&["job", "retry", &hex(id.as_slice()), "--data-dir", &data_dir]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: job {} is confirmed, not dead-lettered\n", hex(id.as_slice()))
    );
}

fn status_of(stack: &Stack, id: B256) -> JobResult {
    stack.engine.client().call(Call::GetResult(JobIdParams { job_id: id.to_vec().into() })).expect("getResult")
}

fn libc_sigstop() -> i32 {
    19
}

fn libc_sigcont() -> i32 {
    18
}

#[test]
fn pipelined_offchain_requests_are_each_answered_for_themselves_and_the_accepted_ones_settle() {
    use coprocessor_actors::protocol::bindings::IJobManager;
    use coprocessor_actors::protocol::eip191::Signer;
    use coprocessor_actors::wire::{codes, HexBytes, Reply, RpcError};

    let mut stack = Stack::start(Link::Proxied, "");
    let consumer = stack.examples.square_root_consumer;
    let signer = stack.engine.dev_signer();
    let stranger = Signer::random();
    // A nonce an onchain request took.
    let used: u64 = stack.block_on(stack.square_root_consumer().getNextNonce().call()).expect("nonce");
    let onchain = stack.request_square_root(2);
    assert_eq!(onchain, coprocessor_actors::job::JobId::of(used, consumer).to_b256());

    // 200 requests, a few of them bad, each expecting its own answer.
    let mut requests = Vec::new();
    let mut params_all = Vec::new();
    let mut expected: Vec<Result<Reply, RpcError>> = Vec::new();
    let refused = |code, message: String| Err(RpcError { code, message });
    let rejected_by_consumer =
        format!("bad request signature: consumer {consumer} rejects it (EIP-1271 isValidSignature)");
    for i in 0..200u64 {
        let n = 1_000 + i;
        let nonce = if i % 50 == 23 { used } else { 1_000 + i };
        let job = u64_job(stack.square_root, consumer, nonce, n);
        let mut params = job.sign(if i % 40 == 7 { &stranger } else { &signer });
        let outcome = match i {
            // Refused locally: too short, the malleable twin, v = 0.
            11 => {
                params.signature.0.truncate(64);
                refused(codes::BAD_SIGNATURE, "bad request signature: signature must be 65 bytes, got 64".into())
            }
            111 => {
                params.signature = HexBytes(malleable_twin(&params.signature.0));
                let message = "bad request signature: signature s is over half the curve order (a malleable signature)";
                refused(codes::BAD_SIGNATURE, message.into())
            }
            191 => {
                params.signature.0[64] -= 27;
                let message =
                    format!("bad request signature: signature v must be 27 or 28, got {}", params.signature.0[64]);
                refused(codes::BAD_SIGNATURE, message)
            }
            // Refused by the consumer's isValidSignature.
            _ if i % 40 == 7 => refused(codes::BAD_SIGNATURE, rejected_by_consumer.clone()),
            // The nonce is used onchain.
            _ if i % 50 == 23 => {
                refused(codes::NONCE_USED, format!("nonce {used} already used onchain by consumer {consumer}"))
            }
            _ => Ok(Reply::JobId(JobIdParams { job_id: HexBytes(job.job_id().0.to_vec()) })),
        };
        requests.push((job, n));
        params_all.push(params);
        expected.push(outcome);
    }
    let answers = common::chain::pipeline_answers(&stack.engine.socket(), 4, 64, params_all);
    assert_eq!(answers.len(), 200);
    for (i, (answer, expected)) in answers.iter().zip(&expected).enumerate() {
        assert_eq!(answer, expected, "request {i}");
    }
    assert_eq!(expected.iter().filter(|e| e.is_ok()).count(), 188);

    // Each accepted job settles onchain and the consumer stores its root.
    // (Fresh node clients: the node closes connections that idled through
    // the wait.)
    let accepted: Vec<_> = requests.iter().zip(&expected).filter(|(_, e)| e.is_ok()).map(|(r, _)| r).collect();
    for (job, _) in &accepted {
        stack.wait_status(job.job_id().0.as_slice(), "confirmed", SETTLE);
    }
    let manager = IJobManager::new(stack.deployment.job_manager, stack.fresh_owner());
    let roots = stack.square_root_consumer();
    for (job, n) in &accepted {
        let state = stack.block_on(manager.getJobMetadata(job.job_id().to_b256()).call()).expect("getJobMetadata");
        assert_eq!(state.status, 3, "COMPLETED");
        let root = stack.block_on(roots.getSquareRoot(U256::from(*n)).call()).expect("getSquareRoot");
        assert_eq!((root.known, root.root), (true, U256::from(n.isqrt())), "root of {n}");
    }
    // Refusals say why in job status.
    for i in [7, 11] {
        let status = status_of(&stack, requests[i].0.job_id().to_b256());
        let message = expected[i].as_ref().expect_err("refused").message.as_str();
        assert_eq!((status.status.as_str(), status.rejection.as_deref()), ("rejected", Some(message)));
    }

    // With the node gone, a malformed signature is still refused at once
    // (the node is never asked), and a well-formed one cannot be checked.
    stack.proxy.as_mut().expect("proxied").down();
    let mut client = stack.engine.client();
    let mut short = u64_job(stack.square_root, consumer, 5_000, 9).sign(&signer);
    short.signature.0.truncate(64);
    let err = client.call::<JobIdParams>(Call::SubmitJob(short)).expect_err("refused locally");
    assert_eq!(
        (err.code(), err.to_string()),
        (Some(codes::BAD_SIGNATURE), "bad request signature: signature must be 65 bytes, got 64".into())
    );
    let good = u64_job(stack.square_root, consumer, 5_001, 9).sign(&signer);
    let err = client.call::<JobIdParams>(Call::SubmitJob(good)).expect_err("chain unavailable");
    assert_eq!(err.code(), Some(codes::CHAIN_UNAVAILABLE));
    assert!(err.to_string().starts_with("cannot check the request onchain: node unreachable: "), "{err}");
}

/// The other valid signature of the same key over the same digest:
/// `s' = n - s`, `v` flipped (ECDSA.tryRecover refuses it).
fn malleable_twin(signature: &[u8]) -> Vec<u8> {
    let order =
        U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).expect("n");
    let s = U256::from_be_slice(&signature[32..64]);
    let mut twin = signature.to_vec();
    twin[32..64].copy_from_slice(&(order - s).to_be_bytes::<32>());
    twin[64] = if signature[64] == 27 { 28 } else { 27 };
    twin
}

/// `job request --call` requests a job through any function of any
/// consumer, its arguments parsed by type as `cast send` does, then follows
/// the `JobCreated` that transaction emitted: here the square-root
/// consumer's own `requestSquareRoot(uint256)`.
#[test]
fn job_request_calls_any_request_function_of_a_consumer_and_follows_its_job() {
    let stack = Stack::start(Link::Direct, "");
    stack.engine.submit_program("square-root");
    let (rpc, consumer) = (stack.node.url(), stack.examples.square_root_consumer.to_string());
    let request = |call: &[&str]| {
        let mut args = vec!["job", "request", "--rpc", rpc.as_str(), "--consumer", consumer.as_str()];
        args.extend_from_slice(call);
        common::coprocessor(&args)
    };

    let out = request(&["--call", "requestSquareRoot(uint256)", "144", "--wait", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["result"], hex(&[common::abi_u64(144), common::abi_u64(12)].concat()));
    let id = answer["jobId"].as_str().expect("jobId");
    assert_eq!(stack.wait_status(&alloy::hex::decode(id).expect("hex"), "confirmed", SETTLE).status, "confirmed");

    // Refused before anything is sent, saying which and why.
    let stderr = |call: &[&str]| String::from_utf8_lossy(&request(call).stderr).into_owned();
    assert_eq!(
        stderr(&["--call", "requestSquareRoot(uint256)"]),
        "error: --call requestSquareRoot(uint256) takes 1 argument, got 0\n"
    );
    assert!(stderr(&["--call", "requestSquareRoot(uint256)", "-144"])
        .starts_with("error: --call argument 1 of requestSquareRoot(uint256) (uint256): \"-144\": "),);
    // A function that requests no job: the transaction goes through, and
    // the command says no job came of it.
    assert_eq!(
        stderr(&["--call", "getNextNonce()"]),
        format!("error: getNextNonce() on {consumer} emitted no JobCreated event: no job was requested\n")
    );
}

/// A node that mines each transaction as it arrives (hardhat's automine)
/// answers one that reverted with an error, after mining it. Such a result
/// counts failed attempts and is dead-lettered, instead of being sent
/// again and again: here a result of a kind already learned (so not
/// simulated first), sent alone, after the JobManager stopped taking the
/// engine's relayer.
#[test]
fn a_result_whose_transaction_reverts_on_arrival_is_dead_lettered_not_sent_for_ever() {
    let stack = Stack::start(Link::Direct, "max_relay_attempts = 2\nmax_batch_items = 1\n");
    let first = stack.request_square_root(16);
    stack.wait_status(first.as_slice(), "confirmed", SETTLE);
    let manager =
        coprocessor_actors::protocol::bindings::JobManager::new(stack.deployment.job_manager, stack.fresh_owner());
    let stranger = alloy::primitives::Address::repeat_byte(0x42);
    let set = stack.block_on(async { manager.setRelayer(stranger).send().await.expect("send").get_receipt().await });
    assert!(set.expect("receipt").status());

    let second = stack.request_square_root(25);
    let result = stack.wait_status(second.as_slice(), "dead-lettered", SETTLE);
    let reason = result.relay_error.unwrap_or_default();
    assert!(reason.starts_with("the node ran its transaction, which reverted: "), "{reason}");
    assert!(reason.contains("JobManager.submitResult: caller is not the relayer"), "{reason}");
}
