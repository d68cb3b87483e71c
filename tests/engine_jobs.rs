//! The engine end to end: programs and jobs over the socket, results that
//! match `coprocessor exec`, signatures by the operator.

mod common;

use alloy::sol_types::SolType;
use common::engine::{u64_job, Engine};
use common::{exec_json, hex};
use coprocessor_actors::protocol::abi::OffchainResultWithMetadata;
use coprocessor_actors::protocol::eip191::recover;
use coprocessor_actors::wire::{Call, JobResult, Reply};
use std::collections::HashMap;

#[test]
fn a_thousand_jobs_match_exec_and_are_signed_by_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let operator = engine.operator();

    // Pipeline every request on one fast-path connection, then read the acks.
    let mut fast = engine.fast_client();
    let mut requests = HashMap::new();
    for nonce in 0..1000u64 {
        let n = nonce * nonce * 7919 + nonce;
        let request = u64_job(program, signer.address(), nonce, n);
        let id = fast.send(Call::SubmitJob(request.sign(&signer))).unwrap();
        requests.insert(id, (request, n));
    }
    fast.flush().unwrap();
    let mut jobs = Vec::new();
    for _ in 0..1000 {
        let (id, reply) = fast.recv().unwrap();
        let Ok(Reply::JobId(job)) = reply else { panic!("job {id} refused: {reply:?}") };
        let (request, n) = requests.remove(&id).unwrap();
        assert_eq!(job.job_id.0, request.job_id().0.to_vec());
        jobs.push((job.job_id.0, n));
    }

    let mut client = engine.client();
    let results: Vec<(JobResult, u64)> = jobs.iter().map(|(id, n)| (engine.wait_result(&mut client, id), *n)).collect();

    // Every result equals `coprocessor exec` of the same input (2 at a time).
    let elf_checks: Vec<_> = results.chunks(results.len() / 2).map(|chunk| chunk.to_vec()).collect();
    std::thread::scope(|scope| {
        for chunk in elf_checks {
            scope.spawn(move || {
                for (result, n) in chunk {
                    let (code, exec) = exec_json("square-root", &["--input", &hex(&common::abi_u64(n))]);
                    assert_eq!(code, 0);
                    assert_eq!(result.status, "done");
                    assert_eq!(
                        Some(hex(&result.output.as_ref().unwrap().0)),
                        exec["output"].as_str().map(str::to_owned)
                    );
                    assert_eq!(result.cycles, exec["cycles"].as_u64());
                    assert_eq!(result.exit_code.map(u64::from), exec["exitCode"].as_u64());
                    assert_eq!(result.peak_memory_bytes, exec["peakMemoryBytes"].as_u64());
                }
            });
        }
    });

    // Every signature recovers to the operator, over the offchain result ABI.
    for (result, n) in &results {
        let signed = &result.result_with_metadata.as_ref().unwrap().0;
        assert_eq!(recover(signed, &result.signature.as_ref().unwrap().0), Ok(operator));
        let decoded = <OffchainResultWithMetadata as SolType>::abi_decode(signed).unwrap();
        assert_eq!(decoded.jobID.as_slice(), result.job_id.0.as_slice());
        assert_eq!(decoded.programID.as_ref(), program.0.as_slice());
        assert_eq!(decoded.onchainInputHash, alloy::primitives::keccak256(common::abi_u64(*n)));
        assert_eq!(decoded.result.as_ref(), result.output.as_ref().unwrap().0.as_slice());
    }
}

#[test]
fn the_cli_submits_a_job_and_waits_for_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let data_arg = data.to_str().unwrap();
    let elf = common::guest("square-root");
    let out = common::coprocessor(&["program", "submit", elf.to_str().unwrap(), "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `0x<id> <isa>`, in both commands.
    let registered = String::from_utf8(out.stdout).unwrap();
    let (program, isa) = registered.trim().split_once(' ').expect("id and isa");
    let program = program.to_owned();
    assert_eq!(isa, "rv32im");
    let listed = common::coprocessor(&["program", "list", "--data-dir", data_arg]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    let row: Vec<&str> = listed.lines().nth(1).expect("a program").split_whitespace().collect();
    assert_eq!(row[..3], ["square-root", program.as_str(), "rv32im"], "{listed}");

    // 2^128 + 1: the integer square root is 2^64.
    let input = "0x0000000000000000000000000000000100000000000000000000000000000001";
    let out = common::coprocessor(&[
        "job",
        "submit",
        "--program",
        &program,
        "--input",
        input,
        "--wait",
        "--json",
        "--data-dir",
        data_arg,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, exec) = exec_json("square-root", &["--input", input]);
    assert_eq!(result["status"], "done");
    assert_eq!(result["output"], exec["output"]);
    assert_eq!(result["cycles"], exec["cycles"]);
    assert_eq!(result["isa"], "rv32im");
    let job_id = result["jobId"].as_str().unwrap().to_owned();

    // The next submit takes the next nonce by itself; status and result read back.
    let out = common::coprocessor(&["job", "submit", "--program", &program, "--input", input, "--data-dir", data_arg]);
    let second = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_ne!(second, job_id);
    let mut client = engine.client();
    engine.wait_result(&mut client, &::hex::decode(&second[2..]).unwrap());
    let status = common::coprocessor(&["job", "status", &job_id, "--data-dir", data_arg]);
    assert_eq!(String::from_utf8(status.stdout).unwrap(), "done\nisa: rv32im\n");
    let human = common::coprocessor(&["job", "result", &job_id, "--data-dir", data_arg]);
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains(&format!("output   {}", exec["output"].as_str().unwrap())), "{human}");
    assert!(human.contains("\nstatus   done\nisa      rv32im\n"), "{human}");

    // Errors are one line and a non-zero exit.
    let out = common::coprocessor(&["job", "status", "0x1234", "--data-dir", data_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "error: \"0x1234\" is not a job ID (32 bytes of hex)\n");
    let unknown = format!("0x{}", "ab".repeat(32));
    let out = common::coprocessor(&["job", "status", &unknown, "--data-dir", data_arg]);
    assert_eq!(String::from_utf8(out.stderr).unwrap(), format!("error: no job {unknown}\n"));
    let out = common::coprocessor(&["metrics", "--data-dir", dir.path().join("nowhere").to_str().unwrap()]);
    assert!(String::from_utf8(out.stderr).unwrap().starts_with("error: cannot connect to"));
}

#[test]
fn a_second_engine_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let out = common::coprocessor(&["run", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: opening the store: sled: "), "{stderr}");
    assert!(stderr.contains("could not acquire lock"), "{stderr}");
    // The first engine is unharmed.
    engine.operator();
}

/// The engine in the test's own process: `Engine::in_process` runs
/// `coprocessor_actors::run` on a thread and stops it through its shutdown
/// future; everything else is the socket, as with the binary.
#[test]
fn an_in_process_engine_runs_a_signed_job_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::in_process(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();

    // A request signed by the dev consumer; with `wait`, the answer is the
    // job's durable result rather than its ID.
    let mut params = u64_job(program, signer.address(), 0, 1_000_001).sign(&signer);
    params.wait = true;
    let result: JobResult = engine.client().call(Call::SubmitJob(params)).unwrap();

    assert_eq!(result.status, "done");
    // square-root outputs abi.encode(uint256 n, uint256 floor(sqrt(n))).
    let expected = [common::abi_u64(1_000_001), common::abi_u64(1000)].concat();
    assert_eq!(result.output.unwrap().0, expected);
    assert!(engine.terminate().success());
}
