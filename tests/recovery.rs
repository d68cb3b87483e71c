//! Durability: no acknowledged job is lost to `kill -9` or SIGTERM, and
//! none is executed into two results.

mod common;

use common::engine::{u64_job, Engine};
use coprocessor_actors::program::ProgramImage;
use coprocessor_actors::wire::{Call, JobResult, Reply};
use coprocessor_actors::{Store, Transition};
use coprocessor_actors::{Vm, DEFAULT_MAX_INPUT_BYTES};
use std::collections::HashMap;

/// Submits `count` fibonacci jobs (a few ms each) pipelined on one fast
/// connection; returns (job ID, n) of each acknowledged one, reading only
/// the first `read_acks` acknowledgements.
fn submit_fibonacci_jobs(engine: &Engine, count: u64, read_acks: u64) -> Vec<(Vec<u8>, u64)> {
    let program = engine.submit_program("fibonacci");
    let signer = engine.dev_signer();
    let mut fast = engine.fast_client();
    let mut sent = HashMap::new();
    for nonce in 0..count {
        let n = 1_000_000 + nonce;
        let mut request = u64_job(program, signer.address(), nonce, n);
        request.max_cycles = 100_000_000;
        sent.insert(fast.send(Call::SubmitJob(request.sign(&signer))).unwrap(), (request.job_id().0.to_vec(), n));
    }
    fast.flush().unwrap();
    (0..read_acks)
        .map(|_| {
            let (id, reply) = fast.recv().unwrap();
            assert!(matches!(reply, Ok(Reply::JobId(_))), "{reply:?}");
            sent.remove(&id).unwrap()
        })
        .collect()
}

/// What the guest gives for `n`, run in-process on the same VM `exec` uses.
fn expected(n: u64) -> (Vec<u8>, u64) {
    let elf = std::fs::read(common::guest("fibonacci")).unwrap();
    let image = ProgramImage::parse(&elf, elf.len()).unwrap();
    let mut vm = Vm::new(&image, DEFAULT_MAX_INPUT_BYTES).unwrap();
    let limits = coprocessor_actors::job::JobLimits { max_cycles: 100_000_000, ..Default::default() };
    let outcome = vm.run(&common::abi_u64(n), &[], &limits).unwrap();
    (outcome.output, outcome.cycles)
}

/// Every acknowledged job is done with the right result.
fn assert_all_done(engine: &Engine, acked: &[(Vec<u8>, u64)]) {
    let mut client = engine.client();
    for (id, n) in acked {
        let result: JobResult = engine.wait_result(&mut client, id);
        let (output, cycles) = expected(*n);
        assert_eq!(result.status, "done", "job 0x{}", hex::encode(id));
        assert_eq!(result.output.unwrap().0, output);
        assert_eq!(result.cycles, Some(cycles));
    }
}

/// Per job, the number of `Executed` records in the log.
fn executed_records(data_dir: &std::path::Path) -> HashMap<coprocessor_actors::job::JobId, usize> {
    let store = Store::open(&data_dir.join("db")).unwrap();
    let mut counts = HashMap::new();
    for item in store.log_range(0, u64::MAX) {
        let (_, record) = item.unwrap();
        if let Transition::Executed(_) = record.transition {
            *counts.entry(record.job_id).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn kill_9_with_500_jobs_in_flight_loses_nothing_and_runs_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let acked = submit_fibonacci_jobs(&engine, 500, 500);
    let metrics: coprocessor_actors::MetricsSnapshot =
        engine.client().call(Call::Metrics(coprocessor_actors::wire::NoParams {})).unwrap();
    assert!(metrics.engine.jobs_done < 400, "only {} of 500 should be done before the kill", metrics.engine.jobs_done);
    let parts = engine.kill9();

    let engine = Engine::respawn(parts);
    assert_all_done(&engine, &acked);
    let data_dir = engine.data_dir.clone();
    assert!(engine.terminate().success());

    let counts = executed_records(&data_dir);
    for (id, _) in &acked {
        let id = coprocessor_actors::job::JobId::try_from(id.as_slice()).unwrap();
        assert_eq!(counts.get(&id), Some(&1), "job {id} executed records");
    }
    assert!(counts.values().all(|&n| n == 1));
}

#[test]
fn sigterm_under_load_exits_0_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let acked = submit_fibonacci_jobs(&engine, 300, 100);
    let status = engine.terminate();
    assert!(status.success(), "{status}");
    assert!(!data.join("coprocessor.ipc").exists(), "the socket file is removed");

    let engine = Engine::start(&data);
    assert_all_done(&engine, &acked);
}
