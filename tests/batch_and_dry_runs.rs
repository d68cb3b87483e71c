//! Two ways to use the engine beyond one signed job per call:
//! `coproc_submitJobs` (many signed requests, each answered on its own) and
//! `coproc_call` (a dry run: a registered program on given inputs, exactly
//! as a job would run, with nothing stored, signed or relayed).

mod common;

use common::engine::{u64_job, Engine};
use common::{abi_u64, exec_json, hex};
use coprocessor::client::Client;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{
    codes, BatchJob, BatchReply, Call, CallParams, HexBytes, NoParams, ReplayParams, ReplayReply, RpcError, RunReply,
    SubmitJob, SubmitJobs,
};

fn batch_job(job: SubmitJob) -> BatchJob {
    BatchJob {
        request: job.request,
        signature: job.signature,
        offchain_input: job.offchain_input,
        relay_strategy: job.relay_strategy,
    }
}

fn refusal(code: i32, message: String) -> Option<RpcError> {
    Some(RpcError::new(code, message))
}

#[test]
fn a_batch_of_1000_with_10_bad_requests_accepts_exactly_the_990_others() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let stranger = Signer::random();

    // Ten bad requests among a thousand, each refused as coproc_submitJob
    // would refuse it alone; `expected[i]` is request i's refusal.
    let mut jobs = Vec::new();
    let mut expected = vec![None; 1000];
    for i in 0..1000u64 {
        let mut request = u64_job(program, signer.address(), i, i * 31 + 7);
        let mut key = &signer;
        match i {
            100 | 101 => key = &stranger,
            200 | 201 => request.program_id = ProgramId([9; 32]),
            // Nonces already in the batch: the same job IDs.
            300 | 301 => request.nonce = 599 - i,
            400 | 401 => request.max_cycles = 1 << 40,
            _ => {}
        }
        let mut job = batch_job(request.sign(key));
        match i {
            500 | 501 => job.request = HexBytes(vec![0xab; 7]),
            _ => {}
        }
        expected[i as usize] = match i {
            100 | 101 => {
                refusal(codes::BAD_SIGNATURE, format!("signer {} is not allowed for offchain jobs", stranger.address()))
            }
            200 | 201 => refusal(codes::UNKNOWN_PROGRAM, format!("program 0x{} is not registered", "09".repeat(32))),
            300 | 301 => refusal(
                codes::NONCE_USED,
                format!("nonce {} already used by consumer {}", 599 - i, signer.address().to_string().to_lowercase()),
            ),
            400 | 401 => {
                refusal(codes::TOO_LARGE, "maxCycles 1099511627776 is over the limit of 10000000000".to_owned())
            }
            _ => None,
        };
        jobs.push(job);
    }

    let mut client = engine.client();
    let reply: BatchReply = client.call(Call::SubmitJobs(SubmitJobs { jobs })).unwrap();
    assert_eq!(reply.results.len(), 1000);
    let mut accepted = Vec::new();
    for (i, item) in reply.results.iter().enumerate() {
        match (i, &item.job_id, &item.error) {
            (500 | 501, None, Some(err)) => {
                assert_eq!(err.code, codes::INVALID_PARAMS);
                assert!(err.message.starts_with("request is not an ABI-encoded OffchainJobRequest"), "{err:?}");
            }
            (_, None, error) => assert_eq!(error, &expected[i], "request {i}"),
            (_, Some(id), None) => {
                assert_eq!(expected[i], None, "request {i} was accepted");
                accepted.push(id.0.clone());
            }
            (_, Some(_), Some(_)) => panic!("request {i} has both a job ID and an error"),
        }
    }
    assert_eq!(accepted.len(), 990);

    // Every accepted job runs to its result; the engine counts 990 jobs
    // accepted and 10 requests refused.
    for id in &accepted {
        assert_eq!(engine.wait_result(&mut client, id).status, "done");
    }
    let metrics = engine.metrics();
    assert_eq!(metrics.engine.jobs_accepted, 990);
    assert_eq!(metrics.engine.requests_rejected, 10);

    // Over api.max_batch_jobs, the whole call is refused.
    let jobs = (0..1025).map(|i| batch_job(u64_job(program, signer.address(), 5000 + i, 1).sign(&signer))).collect();
    let err = client.call::<BatchReply>(Call::SubmitJobs(SubmitJobs { jobs })).unwrap_err();
    assert_eq!(err.code(), Some(codes::TOO_LARGE));
    assert_eq!(err.to_string(), "a batch of 1025 jobs is over api.max_batch_jobs (1024); split it");
}

#[test]
fn a_batch_answers_in_json_with_only_the_field_each_item_has() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let good = batch_job(u64_job(program, signer.address(), 0, 9).sign(&signer));
    let reused = good.clone();
    let mut client = engine.client();
    let response =
        client.raw("coproc_submitJobs", serde_json::json!({"jobs": [good, reused]})).expect("a batch answer");
    let id = hex(u64_job(program, signer.address(), 0, 9).job_id().0.as_slice());
    let message = format!("nonce 0 already used by consumer {}", signer.address().to_string().to_lowercase());
    assert_eq!(
        response["result"],
        serde_json::json!({"results": [{"jobId": id}, {"error": {"code": codes::NONCE_USED, "message": message}}]})
    );
}

fn dry_run(client: &mut Client, program: ProgramId, input: &[u8], max_cycles: Option<u64>) -> RunReply {
    let params = CallParams {
        program_id: HexBytes(program.0.to_vec()),
        onchain_input: HexBytes(input.to_vec()),
        offchain_input: HexBytes(vec![]),
        max_cycles,
    };
    client.call(Call::CallProgram(params)).expect("a dry run")
}

#[test]
fn a_dry_run_matches_exec_and_leaves_no_trace_of_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let program = engine.submit_program("square-root");
    let mut client = engine.client();
    let input = abi_u64(1 << 40);

    let ran = dry_run(&mut client, program, &input, None);
    let (code, exec) = exec_json("square-root", &["--input", &hex(&input)]);
    assert_eq!(code, 0);
    let mut ran_json = serde_json::to_value(&ran).unwrap();
    let mut exec = exec;
    for outcome in [&mut ran_json, &mut exec] {
        outcome.as_object_mut().unwrap().remove("wallMicros");
    }
    assert_eq!(ran_json, exec);
    assert_eq!(ran.status, "done");

    // With one cycle too few, the run fails exactly as exec's does.
    let short = ran.cycles - 1;
    let failed = dry_run(&mut client, program, &input, Some(short));
    let (code, exec) = exec_json("square-root", &["--input", &hex(&input), "--max-cycles", &short.to_string()]);
    assert_eq!(code, 1);
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.failure_reason.as_deref(), exec["failureReason"].as_str());
    assert_eq!(failed.cycles, short);

    // The CLI prints what exec prints.
    let data_arg = data.to_str().unwrap();
    let out = common::coprocessor(&[
        "job",
        "call",
        "--program",
        &hex(&program.0),
        "--input",
        &hex(&input),
        "--json",
        "--data-dir",
        data_arg,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    printed.as_object_mut().unwrap().remove("wallMicros");
    assert_eq!(printed, ran_json);

    // No job: nothing accepted, executed or logged, only the dry runs.
    let metrics = engine.metrics();
    assert_eq!((metrics.engine.jobs_accepted, metrics.engine.jobs_done, metrics.engine.jobs_failed), (0, 0, 0));
    assert_eq!(metrics.engine.dry_runs, 3);
    let replay: ReplayReply = client.call(Call::Replay(ReplayParams::default())).unwrap();
    assert_eq!(replay.replayed, 0);
    let snapshot = client.call::<serde_json::Value>(Call::Metrics(NoParams {})).unwrap();
    assert_eq!(snapshot["engine"]["dryRuns"], 3);
}

#[test]
fn a_dry_run_is_refused_like_a_job_it_could_not_be() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[api]\ncalls_per_second = 2\n";
    let engine = Engine::start_with(&dir.path().join("data"), Some(config), &[]);
    let program = engine.submit_program("square-root");
    let mut client = engine.client();
    let call = |program_id: ProgramId, max_cycles: Option<u64>| {
        Call::CallProgram(CallParams {
            program_id: HexBytes(program_id.0.to_vec()),
            onchain_input: HexBytes(abi_u64(4)),
            offchain_input: HexBytes(vec![]),
            max_cycles,
        })
    };
    let refused = |client: &mut Client, call: Call| client.call::<RunReply>(call).unwrap_err().to_string();
    assert_eq!(
        refused(&mut client, call(ProgramId([9; 32]), None)),
        format!("program 0x{} is not registered", "09".repeat(32))
    );
    assert_eq!(
        refused(&mut client, call(program, Some(1 << 40))),
        "maxCycles 1099511627776 is over the limit of 10000000000"
    );
    // Two a second, engine-wide: the third in a row waits its turn.
    dry_run(&mut client, program, &abi_u64(4), None);
    dry_run(&mut client, program, &abi_u64(4), None);
    let message = refused(&mut client, call(program, None));
    assert!(message.starts_with("dry runs are over api.calls_per_second (2/s, engine-wide); retry in "), "{message}");
    assert!(message.ends_with(" ms"), "{message}");
}
