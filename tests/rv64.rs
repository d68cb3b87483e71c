//! rv64im guests: the same example guest built as an ELF32 (rv32im) and as
//! an ELF64 (rv64im, `programs/elf/rv64/`) gives the same output through
//! `coprocessor exec` and through the engine, which registers and runs an
//! rv64im program like any other; the ISA shows in results, program
//! listings and metrics.

mod common;

use common::engine::{u64_job, Engine};
use common::{abi_u64, coprocessor, exec_json, guest, hex};
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{codes, Call, HexBytes, JobIdParams, NoParams, Reply, SubmitProgram};
use serde_json::json;
use std::io::{Read, Write};

#[test]
fn exec_runs_fibonacci_both_ways_with_the_same_output_and_shows_the_isa() {
    let input = hex(&abi_u64(90));
    let (rv32_code, rv32) = exec_json("fibonacci", &["--input", &input]);
    let (rv64_code, rv64) = exec_json("rv64/fibonacci", &["--input", &input]);
    assert_eq!((rv32_code, rv64_code), (0, 0));
    assert_eq!((rv32["isa"].as_str(), rv64["isa"].as_str()), (Some("rv32im"), Some("rv64im")));
    assert_eq!(rv64["status"], "done");
    assert_eq!(rv64["output"], hex(&abi_u64(2_880_067_194_370_816_120)));
    assert_eq!(rv64["output"], rv32["output"]);
    let cycles = |v: &serde_json::Value| v["cycles"].as_u64().expect("cycles");
    assert!(cycles(&rv64) < cycles(&rv32), "u64 arithmetic takes fewer rv64 instructions");

    let path = guest("rv64/fibonacci");
    let out = coprocessor(&["exec", path.to_str().expect("utf-8 path"), "--input", &input]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|line| line == "isa:         rv64im"), "{text}");
}

#[test]
fn the_engine_registers_and_runs_an_rv64_program_like_an_rv32_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let rv32 = engine.submit_program("fibonacci");
    let rv64 = engine.submit_program("rv64/fibonacci");
    assert_ne!(rv32, rv64);
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let mut results = Vec::new();
    for (nonce, program) in [rv32, rv64].into_iter().enumerate() {
        let request = u64_job(program, signer.address(), nonce as u64, 90);
        client.call::<serde_json::Value>(Call::SubmitJob(request.sign(&signer))).expect("job accepted");
        results.push(engine.wait_result(&mut client, &request.job_id().0));
    }
    let (rv32, rv64) = (&results[0], &results[1]);
    assert_eq!((rv32.status.as_str(), rv64.status.as_str()), ("done", "done"));
    assert_eq!(rv64.output.as_ref().map(|o| &o.0), Some(&abi_u64(2_880_067_194_370_816_120)));
    assert_eq!(rv64.output, rv32.output);
    let (_, exec) = exec_json("rv64/fibonacci", &["--input", &hex(&abi_u64(90))]);
    assert_eq!(rv64.cycles, exec["cycles"].as_u64(), "the engine and exec count the same cycles");
    assert_eq!(rv64.peak_memory_bytes, exec["peakMemoryBytes"].as_u64());
}

#[test]
fn results_listings_and_metrics_show_each_jobs_isa() {
    let prom = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[metrics]\nprometheus = \"127.0.0.1:{prom}\"\n");
    let engine = Engine::start_with(&dir.path().join("data"), Some(&config), &[]);
    let data = engine.data_dir.to_str().expect("utf-8 path").to_owned();
    let mut client = engine.client();

    // Registering answers the ISA: over JSON-RPC, and in the CLI's `0x<id> <isa>`.
    let elf = common::guest_elf("rv64/fibonacci");
    let registered =
        client.call_json(&Call::SubmitProgram(SubmitProgram { elf: HexBytes(elf.clone()), name: None })).unwrap();
    let rv64 = registered["programId"].as_str().expect("programId").to_owned();
    assert_eq!(registered, json!({"programId": rv64, "isa": "rv64im", "name": ""}));
    let out = coprocessor(&["program", "submit", guest("fibonacci").to_str().unwrap(), "--data-dir", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rv32 = text.strip_suffix(" rv32im\n").unwrap_or_else(|| panic!("{text:?}")).to_owned();
    let out =
        coprocessor(&["program", "submit", guest("rv64/fibonacci").to_str().unwrap(), "--json", "--data-dir", &data]);
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same program again (the CLI names it after its file).
    assert_eq!(again, json!({"programId": rv64, "isa": "rv64im", "name": "fibonacci"}));

    // Listing: the IDs as before, and each program with its ISA, sorted by ID.
    let mut sorted = [(rv32.clone(), "rv32im"), (rv64.clone(), "rv64im")];
    sorted.sort();
    let listed = client.call_json(&Call::ListPrograms(NoParams {})).unwrap();
    assert_eq!(listed["programIds"], json!([sorted[0].0, sorted[1].0]));
    for (i, (id, isa)) in sorted.iter().enumerate() {
        let program = &listed["programs"][i];
        assert_eq!((&program["programId"], &program["isa"]), (&json!(id), &json!(isa)), "{program}");
    }
    let out = coprocessor(&["program", "list", "--data-dir", &data]);
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(
        rows.iter().map(|row| (row[1], row[2])).collect::<Vec<_>>(),
        [(sorted[0].0.as_str(), sorted[0].1), (sorted[1].0.as_str(), sorted[1].1)]
    );

    // Two rv32 jobs and three rv64 jobs (one of them failing at its cycle
    // limit: a failed run counts too), through each way a result comes back.
    let id =
        |text: &str| coprocessor_actors::program::ProgramId(::hex::decode(&text[2..]).unwrap().try_into().unwrap());
    let (rv32_id, rv64_id) = (id(&rv32), id(&rv64));
    let signer = engine.dev_signer();
    let consumer = signer.address();
    let mut results: Vec<(&str, serde_json::Value)> = Vec::new();
    // getResult over JSON-RPC, once executed.
    for (nonce, program, isa, n) in [(0, rv32_id, "rv32im", 90), (1, rv64_id, "rv64im", 90)] {
        let request = u64_job(program, consumer, nonce, n);
        client.call_json(&Call::SubmitJob(request.sign(&signer))).expect("job accepted");
        let job_id = request.job_id().0;
        engine.wait_result(&mut client, &job_id);
        let result = client.call_json(&Call::GetResult(JobIdParams { job_id: HexBytes(job_id.to_vec()) })).unwrap();
        results.push((isa, result));
    }
    // `wait: true` over JSON-RPC, a failure included.
    let mut failing = u64_job(rv64_id, consumer, 2, 90);
    failing.max_cycles = 100;
    let mut params = failing.sign(&signer);
    params.wait = true;
    let failed = client.call_json(&Call::SubmitJob(params)).unwrap();
    assert_eq!((failed["status"].as_str(), failed["cycles"].as_u64()), (Some("failed"), Some(100)), "{failed}");
    assert!(failed["failureReason"].as_str().is_some_and(|r| r.contains("cycle limit")), "{failed}");
    results.push(("rv64im", failed));
    // `wait: true` on the fast path (bincode).
    let mut fast = engine.fast_client();
    for (nonce, program, isa, n) in [(3, rv32_id, "rv32im", 10), (4, rv64_id, "rv64im", 10)] {
        let mut params = u64_job(program, consumer, nonce, n).sign(&signer);
        params.wait = true;
        let Reply::Result(result) = fast.call(Call::SubmitJob(params)).expect("fast path") else {
            panic!("not a result");
        };
        assert_eq!(result.isa.map(|isa| isa.to_string()).as_deref(), Some(isa));
        assert_eq!(result.status, "done");
        results.push((isa, serde_json::to_value(&*result).unwrap()));
    }
    for (isa, result) in &results {
        assert_eq!(result["isa"], *isa, "{result}");
    }
    // getResult answers the same ISA for the fast path's jobs, over both encodings.
    let last = results[4].1["jobId"].as_str().unwrap().to_owned();
    let last_id = JobIdParams { job_id: HexBytes(::hex::decode(&last[2..]).unwrap()) };
    assert_eq!(client.call_json(&Call::GetResult(last_id.clone())).unwrap()["isa"], "rv64im");
    let Reply::Result(result) = fast.call(Call::GetResult(last_id)).unwrap() else { panic!("not a result") };
    assert_eq!(result.isa, Some(coprocessor_actors::program::Isa::Rv64im));

    // The CLI shows it.
    let first = results[0].1["jobId"].as_str().unwrap().to_owned();
    let out = coprocessor(&["job", "status", &first, "--data-dir", &data]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "done\nisa: rv32im\n");
    let out = coprocessor(&["job", "result", &last, "--data-dir", &data]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nstatus   done\nisa      rv64im\n"), "{text}");
    let out = coprocessor(&["job", "result", &last, "--json", "--data-dir", &data]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["isa"], "rv64im");

    // A job ID no request was ever accepted for has no program, so no ISA.
    let stranger = Signer::random();
    let refused = u64_job(rv64_id, stranger.address(), 0, 90);
    let err = client.call_json(&Call::SubmitJob(refused.sign(&stranger))).unwrap_err();
    assert_eq!(err.code(), Some(codes::BAD_SIGNATURE));
    let rejected =
        client.call_json(&Call::GetResult(JobIdParams { job_id: HexBytes(refused.job_id().0.to_vec()) })).unwrap();
    assert_eq!((rejected["status"].as_str(), &rejected["isa"]), (Some("rejected"), &serde_json::Value::Null));

    // Metrics count exactly what ran, per ISA, with the results' cycles.
    let cycles = |isa: &str| -> u64 {
        results.iter().filter(|(i, _)| *i == isa).map(|(_, r)| r["cycles"].as_u64().expect("cycles")).sum()
    };
    let (rv32_cycles, rv64_cycles) = (cycles("rv32im"), cycles("rv64im"));
    assert!(rv32_cycles > 0 && rv64_cycles > 100);
    let metrics = client.call_json(&Call::Metrics(NoParams {})).unwrap();
    assert_eq!(metrics["engine"]["executorJobsByIsa"], json!({"rv32im": 2, "rv64im": 3}));
    assert_eq!(metrics["engine"]["executorCyclesByIsa"], json!({"rv32im": rv32_cycles, "rv64im": rv64_cycles}));
    let snapshot = engine.metrics();
    assert_eq!(snapshot.engine.executor_jobs_by_isa.values().sum::<u64>(), 5);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", prom)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let expected = format!(
        "# TYPE coprocessor_executor_jobs counter\n\
         coprocessor_executor_jobs_total{{isa=\"rv32im\"}} 2\n\
         coprocessor_executor_jobs_total{{isa=\"rv64im\"}} 3\n\
         # HELP coprocessor_executor_cycles Guest instructions those jobs ran, by ISA\n\
         # TYPE coprocessor_executor_cycles counter\n\
         coprocessor_executor_cycles_total{{isa=\"rv32im\"}} {rv32_cycles}\n\
         coprocessor_executor_cycles_total{{isa=\"rv64im\"}} {rv64_cycles}\n"
    );
    assert!(text.contains(&expected), "{text}");
    let out = coprocessor(&["metrics", "--data-dir", &data]);
    let table = String::from_utf8(out.stdout).unwrap();
    let line = format!("\nisa        rv32im 2 jobs {rv32_cycles} cycles  rv64im 3 jobs {rv64_cycles} cycles\n");
    assert!(table.contains(&line), "{table}");
}
