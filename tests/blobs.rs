//! Offchain inputs as EIP-4844 blobs, as InfinityVM's node posts them: the
//! operator signs the versioned hashes of the blobs that carry an offchain
//! job's input (lz4-compressed), the relayer sends them with the
//! transaction that settles the job, and the JobManager checks and records
//! them. A real hardhat node (Cancun rules: blob transactions), a real
//! engine (`chain.offchain_input_da = "auto"` finds them supported).

mod common;

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use common::chain::{Link, Stack};
use common::engine::u64_job;
use coprocessor_actors::protocol::abi::OffchainResultWithMetadata;
use coprocessor_actors::protocol::bindings::JobManager;
use coprocessor_actors::protocol::blobs;
use coprocessor_actors::wire::{codes, Call, JobIdParams, JobResult};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(60);

/// Bytes that hardly compress (a xorshift stream).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn an_offchain_input_goes_onchain_in_blobs_with_its_result() {
    let stack = Stack::start(Link::Direct, "");
    let signer = stack.engine.dev_signer();
    let consumer = stack.examples.square_root_consumer;
    let input = noise(100 * 1024, 7);
    let mut job = u64_job(stack.square_root, consumer, 11, 81);
    job.offchain_input = input.clone();
    let mut params = job.sign(&signer);
    params.wait = true;
    let result: JobResult = stack.engine.client().call(Call::SubmitJob(params)).expect("submit");
    assert_eq!(result.status, "done");

    // The operator signed the hashes of the blobs the input makes: 100 KiB
    // of noise takes one blob.
    let expected = blobs::versioned_hashes(&input, blobs::MAX_BLOBS_PER_JOB).expect("blobs");
    assert_eq!(expected.len(), 1);
    let signed = result.result_with_metadata.expect("signed result").0;
    let signed = <OffchainResultWithMetadata as alloy::sol_types::SolType>::abi_decode(&signed).expect("decodes");
    assert_eq!(signed.versionedBlobHashes, expected);

    // Settled by a blob transaction carrying exactly them, and recorded.
    let id = B256::from_slice(&result.job_id.0);
    let confirmed = stack.wait_status(id.as_slice(), "confirmed", SETTLE);
    let tx_hash = B256::from_slice(&confirmed.tx_hash.expect("tx").0);
    let tx = stack.block_on(stack.owner.get_transaction_by_hash(tx_hash)).expect("rpc").expect("the transaction");
    assert_eq!(alloy::consensus::Transaction::blob_versioned_hashes(&tx), Some(&expected[..]));
    let manager = JobManager::new(stack.deployment.job_manager, stack.fresh_owner());
    let recorded = stack.block_on(manager.jobIDToBlobhashes(id, U256::ZERO).call()).expect("jobIDToBlobhashes");
    assert_eq!(recorded, expected[0]);
    assert_eq!(stack.stored_square_root(81), Some(U256::from(9u64)));

    // What the blobs with those hashes hold decodes back to the input.
    let data = blobs::blob_data(&input, blobs::MAX_BLOBS_PER_JOB).expect("blob data");
    let sidecar = blobs::sidecar(&data).expect("kzg").expect("blobs");
    assert_eq!(sidecar.versioned_hashes().collect::<Vec<_>>(), expected);
    assert_eq!(blobs::decode(&sidecar.blobs, input.len()).expect("decodes"), input);

    // An input that takes more blobs than a job may have is refused at
    // submission, saying why.
    let mut big = u64_job(stack.square_root, consumer, 12, 4);
    big.offchain_input = noise(6 * 127_000, 9);
    let needs = blobs::blob_data(&big.offchain_input, usize::MAX).expect("blob data");
    assert_eq!(needs.blobs, 7);
    let err = stack.engine.client().call::<JobIdParams>(Call::SubmitJob(big.sign(&signer))).expect_err("too large");
    assert_eq!(err.code(), Some(codes::TOO_LARGE), "{err}");
    let message = err.to_string();
    let compressed = needs.compressed.len();
    assert!(message.starts_with(&format!("the offchain input takes 7 blobs compressed ({compressed} ")), "{message}");
    assert!(
        message.ends_with(
            "bytes), more than the 6 allowed per job (chain.max_blobs_per_job): it is posted onchain as blobs"
        ),
        "{message}"
    );
}

#[test]
fn the_blob_fee_ceiling_holds_a_result_back_and_job_status_says_why() {
    let stack = Stack::start(Link::Direct, "max_fee_per_blob_gas_wei = 0\n");
    let signer = stack.engine.dev_signer();
    let consumer = stack.examples.square_root_consumer;
    let mut held = u64_job(stack.square_root, consumer, 21, 49);
    held.offchain_input = noise(1000, 3);
    let held_id = held.job_id().to_b256();
    stack.engine.client().call::<JobIdParams>(Call::SubmitJob(held.sign(&signer))).expect("submit");
    // A result with no input to post settles meanwhile.
    let free = u64_job(stack.square_root, consumer, 22, 64);
    stack.engine.client().call::<JobIdParams>(Call::SubmitJob(free.sign(&signer))).expect("submit");
    stack.wait_status(free.job_id().0.as_slice(), "confirmed", SETTLE);

    let data_dir = stack.engine.data_dir.to_str().expect("utf-8").to_owned();
    let start = Instant::now();
    let status = loop {
        let out = common::coprocessor(&["job", "status", &format!("{held_id}"), "--data-dir", &data_dir]);
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        if status.contains("waiting: ") {
            break status;
        }
        assert!(start.elapsed() < SETTLE, "{status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines[0], "done", "{status}");
    let waiting = lines.iter().find(|line| line.starts_with("waiting: ")).expect("why");
    assert!(waiting.starts_with("waiting: the blob base fee, "), "{waiting}");
    assert!(waiting.ends_with("is above the blob fee ceiling of 0 wei (chain.max_fee_per_blob_gas_wei)"), "{waiting}");
    assert_eq!(stack.completions(held_id), 0, "nothing was paid for it");
}

#[test]
fn without_blob_posting_an_offchain_input_stays_offchain() {
    let stack = Stack::start(Link::Direct, "offchain_input_da = \"none\"\n");
    let mut job = u64_job(stack.square_root, stack.examples.square_root_consumer, 31, 16);
    job.offchain_input = noise(2000, 5);
    let mut params = job.sign(&stack.engine.dev_signer());
    params.wait = true;
    let result: JobResult = stack.engine.client().call(Call::SubmitJob(params)).expect("submit");
    let signed = result.result_with_metadata.expect("signed result").0;
    let signed = <OffchainResultWithMetadata as alloy::sol_types::SolType>::abi_decode(&signed).expect("decodes");
    assert!(signed.versionedBlobHashes.is_empty());
    stack.wait_status(&result.job_id.0, "confirmed", SETTLE);
    let manager = JobManager::new(stack.deployment.job_manager, stack.fresh_owner());
    let id = B256::from_slice(&result.job_id.0);
    assert!(stack.block_on(manager.jobIDToBlobhashes(id, U256::ZERO).call()).is_err(), "no hashes recorded");
}
