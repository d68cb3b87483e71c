//! Reorgs on a real hardhat node: `evm_snapshot` before a `JobCreated`
//! lands, `evm_revert` after the engine has seen it, and a different
//! history mined in its place (without the job, with it again, or with its
//! job ID taken by a different request, since the consumer's nonce goes
//! back with the revert). Blocks are mined by the tests (automine off).
//!
//! `confirmations = 1` acts on the head block (the shallowest setting the
//! config allows): a reorg must be noticed (the listener checks the hash of
//! the last block it read; the relayer checks every job onchain before it
//! sends it), a vanished job never settles, and one that reappears is
//! executed and settled once. `confirmations = k` acts only on blocks k
//! deep: a reorg shallower than k never reaches the engine.

mod common;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use common::chain::{Link, Stack};
use coprocessor_actors::job::JobId;
use coprocessor_actors::wire::{Call, JobIdParams, JobResult};
use serde_json::json;
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(90);

/// How long a negative check watches: many poll intervals (100 ms) of the
/// listener and the relayer.
const WATCH: Duration = Duration::from_millis(1500);

fn mine(stack: &Stack) {
    stack.node_rpc("evm_mine", json!([]));
}

fn head(stack: &Stack) -> u64 {
    stack.block_on(stack.fresh_owner().get_block_number()).expect("block number")
}

fn snapshot(stack: &Stack) -> serde_json::Value {
    stack.node_rpc("evm_snapshot", json!([]))
}

fn revert(stack: &Stack, snapshot: serde_json::Value) {
    let reverted = stack.node_rpc("evm_revert", json!([snapshot]));
    assert_eq!(reverted, json!(true), "evm_revert");
}

/// The ID the consumer's next request gets.
fn next_id(stack: &Stack) -> B256 {
    let nonce: u64 = stack.block_on(stack.square_root_consumer().getNextNonce().call()).expect("getNextNonce");
    JobId::of(nonce, stack.examples.square_root_consumer).to_b256()
}

/// Sends `requestSquareRoot(n)` to the mempool (mined by the caller); the
/// transaction hash.
fn request(stack: &Stack, n: u64) -> B256 {
    let consumer = stack.square_root_consumer();
    let call = consumer.requestSquareRoot(U256::from(n)).gas(500_000);
    *stack.block_on(call.send()).expect("request").tx_hash()
}

/// The block a mined transaction is in.
fn mined_in(stack: &Stack, tx: B256) -> u64 {
    let receipt = stack.block_on(stack.fresh_owner().get_transaction_receipt(tx)).expect("receipt");
    let receipt = receipt.expect("the request is mined");
    assert!(receipt.status(), "the request succeeded");
    receipt.block_number.expect("block")
}

/// A transfer of 1 wei: a block that differs from the reverted history.
fn transfer(stack: &Stack) {
    let tx = TransactionRequest::default().with_to(Address::repeat_byte(0x11)).with_value(U256::from(1u64));
    let _pending = stack.block_on(stack.fresh_owner().send_transaction(tx)).expect("transfer");
}

/// The engine's view of a job, if it knows it.
fn status(stack: &Stack, id: B256) -> Option<JobResult> {
    stack.engine.client().call::<JobResult>(Call::GetResult(JobIdParams { job_id: id.to_vec().into() })).ok()
}

/// Waits until `check` holds, mining a block before every look when `mining`.
fn wait_until(stack: &Stack, what: &str, mining: bool, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if mining {
            mine(stack);
        }
        if check() {
            return;
        }
        assert!(start.elapsed() < SETTLE, "{what}: not after {SETTLE:?}\n{}", stack.engine.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The relayer key's mined transaction count.
fn relayer_sent(stack: &Stack) -> u64 {
    let key = coprocessor_actors::keys::load(&stack.engine.data_dir.join(coprocessor_actors::keys::RELAYER_KEY))
        .expect("relayer key")
        .address();
    stack.block_on(stack.fresh_owner().get_transaction_count(key)).expect("count")
}

/// Requests `n` at the next nonce, mines it, and waits until the engine has
/// executed the job and its settlement is in the mempool (not mined).
fn request_until_submitted(stack: &Stack, n: u64) -> (B256, u64) {
    let id = next_id(stack);
    let tx = request(stack, n);
    mine(stack);
    let block = mined_in(stack, tx);
    wait_until(stack, "the job's settlement is sent", false, || {
        status(stack, id).is_some_and(|result| result.status == "submitted")
    });
    (id, block)
}

#[test]
fn confirmations_1_a_job_reorged_away_is_marked_not_retried_forever_and_settles_once_if_it_comes_back() {
    let stack = Stack::start(Link::Direct, "confirmations = 1\nmax_relay_attempts = 2\n");
    stack.node_rpc("evm_setAutomine", json!([false]));
    let before = snapshot(&stack);
    let (id, block) = request_until_submitted(&stack, 1_000_001);
    let root = status(&stack, id).expect("known").output.expect("executed");
    assert!(!root.0.is_empty());

    // The block with the JobCreated (and the mempool with our settlement)
    // are gone; a different history is mined in their place.
    revert(&stack, before);
    assert_eq!(head(&stack), block - 1);
    assert_eq!(stack.onchain_state(id), 0, "the job does not exist onchain");
    transfer(&stack);
    let sent_before = relayer_sent(&stack);
    wait_until(&stack, "the job is marked", true, || {
        status(&stack, id).is_some_and(|result| result.status == "dead-lettered")
    });
    let result = status(&stack, id).expect("known");
    let reason = result.relay_error.expect("a reason");
    assert!(reason.contains("onchain state is 0"), "{reason}");
    assert_eq!(stack.completions(id), 0, "never settled");
    assert_eq!(stack.onchain_state(id), 0);
    // Not retried: nothing more is sent for it.
    let sent = relayer_sent(&stack);
    for _ in 0..10 {
        mine(&stack);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(relayer_sent(&stack), sent, "no transaction after it is marked");
    assert!(sent - sent_before <= 1, "at most the settlement that was in flight went again: {}", sent - sent_before);
    assert_eq!(status(&stack, id).expect("known").status, "dead-lettered");

    // It comes back, long after: the same request at the same nonce.
    assert_eq!(next_id(&stack), id);
    let tx = request(&stack, 1_000_001);
    mine(&stack);
    mined_in(&stack, tx);
    wait_until(&stack, "settled", true, || status(&stack, id).is_some_and(|result| result.status == "confirmed"));
    assert_eq!(stack.completions(id), 1);
    assert_eq!(stack.stored_square_root(1_000_001), Some(U256::from(1000u64)));
}

#[test]
fn confirmations_1_a_job_that_reappears_in_another_block_is_settled_once() {
    let stack = Stack::start(Link::Direct, "confirmations = 1\nmax_relay_attempts = 2\n");
    stack.node_rpc("evm_setAutomine", json!([false]));
    let before = snapshot(&stack);
    let (id, block) = request_until_submitted(&stack, 4_000_000);
    revert(&stack, before);
    // The same request, a block later: the consumer's nonce went back with
    // the revert, so it is the same job ID with the same input.
    transfer(&stack);
    mine(&stack);
    let again = next_id(&stack);
    assert_eq!(again, id, "the reverted nonce is the consumer's next one again");
    let tx = request(&stack, 4_000_000);
    mine(&stack);
    assert_eq!(mined_in(&stack, tx), block + 1, "it reappears one block later");
    wait_until(&stack, "settled", true, || status(&stack, id).is_some_and(|result| result.status == "confirmed"));
    assert_eq!(stack.completions(id), 1);
    assert_eq!(stack.stored_square_root(4_000_000), Some(U256::from(2000u64)));
}

#[test]
fn confirmations_1_a_block_under_the_cursor_replaced_by_a_reorg_is_read_again() {
    let stack = Stack::start(Link::Direct, "confirmations = 1\nmax_relay_attempts = 2\n");
    stack.node_rpc("evm_setAutomine", json!([false]));
    let before = snapshot(&stack);
    let (first, block) = request_until_submitted(&stack, 9_000_000);
    revert(&stack, before);
    // In the new history another request comes first, in the same block
    // number the listener had read: it takes the job ID (the consumer's
    // nonce went back) with a different input, and the original request
    // follows in that block with the next ID.
    let nonce: u64 = stack.block_on(stack.square_root_consumer().getNextNonce().call()).expect("getNextNonce");
    assert_eq!(JobId::of(nonce, stack.examples.square_root_consumer).to_b256(), first);
    let second = JobId::of(nonce + 1, stack.examples.square_root_consumer).to_b256();
    let taken = request(&stack, 16_000_000);
    let again = request(&stack, 9_000_000);
    mine(&stack);
    assert_eq!((mined_in(&stack, taken), mined_in(&stack, again)), (block, block));

    // The listener notices that its last block is not the chain's any
    // more, reads that block again, and finds the request with the new ID.
    wait_until(&stack, "settled", true, || status(&stack, second).is_some_and(|result| result.status == "confirmed"));
    assert_eq!(stack.completions(second), 1);
    assert_eq!(stack.stored_square_root(9_000_000), Some(U256::from(3000u64)));
    assert!(
        stack.engine.log().contains("reading again from the last block still on the chain"),
        "{}",
        stack.engine.log()
    );

    // The first ID now names a different request. The engine keeps one
    // job per ID (the one it executed), says so, and the JobManager
    // refuses its result: it is dead-lettered, never settled with the old
    // input. (The new request of that ID is not executed: see the report.)
    wait_until(&stack, "marked", true, || status(&stack, first).is_some_and(|result| result.status == "dead-lettered"));
    let reason = status(&stack, first).expect("known").relay_error.expect("reason");
    assert_eq!(
        reason,
        "JobManager.submitResult: onchain input signed by coprocessor doesn't match onchain input submitted with job"
    );
    assert!(stack.engine.log().contains("a JobCreated gives a known job ID to a different request"));
    assert_eq!(stack.completions(first), 0);
    assert_eq!(stack.onchain_state(first), 1, "still pending onchain");
}

#[test]
fn confirmations_3_acts_only_on_blocks_3_deep() {
    let stack = Stack::start(Link::Direct, "confirmations = 3\n");
    stack.node_rpc("evm_setAutomine", json!([false]));
    let before = snapshot(&stack);
    let id = next_id(&stack);
    let tx = request(&stack, 25);
    mine(&stack);
    mined_in(&stack, tx);
    // 1 and 2 deep: not admitted.
    for depth in 1..=2 {
        std::thread::sleep(WATCH);
        assert!(status(&stack, id).is_none(), "admitted {depth} deep");
        if depth < 2 {
            mine(&stack);
        }
    }
    // Reorged away 2 deep: the engine never hears of it.
    revert(&stack, before);
    for _ in 0..4 {
        transfer(&stack);
        mine(&stack);
    }
    std::thread::sleep(WATCH);
    assert!(status(&stack, id).is_none(), "a job reorged away before it was 3 deep is never admitted");

    // The ID again with another input, taken 3 deep this time.
    assert_eq!(next_id(&stack), id);
    let tx = request(&stack, 36);
    mine(&stack);
    mined_in(&stack, tx);
    mine(&stack);
    std::thread::sleep(WATCH);
    assert!(status(&stack, id).is_none(), "admitted 2 deep");
    mine(&stack);
    wait_until(&stack, "admitted and sent 3 deep", false, || {
        status(&stack, id).is_some_and(|result| result.status == "submitted")
    });
    // Its settlement counts only once 3 deep too.
    mine(&stack);
    std::thread::sleep(WATCH);
    assert_eq!(stack.completions(id), 1, "the settlement is mined");
    assert_eq!(status(&stack, id).expect("known").status, "submitted", "not confirmed 1 deep");
    mine(&stack);
    std::thread::sleep(WATCH);
    assert_eq!(status(&stack, id).expect("known").status, "submitted", "not confirmed 2 deep");
    mine(&stack);
    wait_until(&stack, "confirmed 3 deep", false, || {
        status(&stack, id).is_some_and(|result| result.status == "confirmed")
    });
    assert_eq!(stack.stored_square_root(36), Some(U256::from(6u64)));
    assert_eq!(stack.stored_square_root(25), None);
}
