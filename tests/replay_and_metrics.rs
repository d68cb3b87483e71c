//! Replay from the job log, supervision, and metrics.

mod common;

use common::engine::{u64_job, Engine};
use coprocessor_actors::wire::{codes, Call, NoParams, PanicParams, Reply};
use coprocessor_actors::MetricsSnapshot;
use coprocessor_actors::Store;
use std::io::{Read, Write};

/// Submits `count` square-root jobs; every tenth has a malformed input and
/// fails. Waits for all of them and returns their IDs.
fn run_jobs(engine: &Engine, count: u64) -> Vec<Vec<u8>> {
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut fast = engine.fast_client();
    for nonce in 0..count {
        let mut request = u64_job(program, signer.address(), nonce, nonce * 1_000_003);
        if nonce % 10 == 0 {
            request.onchain_input = vec![1, 2, 3];
        }
        fast.send(Call::SubmitJob(request.sign(&signer))).unwrap();
    }
    fast.flush().unwrap();
    let ids: Vec<Vec<u8>> = (0..count)
        .map(|_| match fast.recv().unwrap().1 {
            Ok(Reply::JobId(job)) => job.job_id.0,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut client = engine.client();
    let failed = ids.iter().filter(|id| engine.wait_result(&mut client, id).status == "failed").count();
    assert_eq!(failed as u64, count / 10);
    ids
}

fn replay(data_dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["replay", "--data-dir", data_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = common::coprocessor(&args);
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn replay_matches_every_job_and_finds_a_corrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let ids = run_jobs(&engine, 200);

    // Over the socket, against the running engine.
    assert_eq!(replay(&data, &[]), (0, "replayed 200  matched 200  mismatched 0\n".into()));
    // A range of the log: records 1..=40 hold 40 transitions of the first jobs.
    let (code, text) = replay(&data, &["--from", "1", "--to", "40"]);
    assert_eq!(code, 0);
    assert!(text.starts_with("replayed ") && text.contains("mismatched 0"), "{text}");
    let (_, none) = replay(&data, &["--program", &format!("0x{}", "00".repeat(32))]);
    assert_eq!(none, "replayed 0  matched 0  mismatched 0\n");
    assert!(engine.terminate().success());

    // Against the stopped engine's data dir.
    assert_eq!(replay(&data, &[]), (0, "replayed 200  matched 200  mismatched 0\n".into()));

    // Corrupt one stored result in a copy: replay names exactly that job.
    let copy = dir.path().join("copy");
    let status = std::process::Command::new("cp").arg("-r").arg(&data).arg(&copy).status().unwrap();
    assert!(status.success());
    let victim = coprocessor_actors::job::JobId::try_from(ids[57].as_slice()).unwrap();
    {
        let store = Store::open(&copy.join("db")).unwrap();
        let mut result = store.result(&victim).unwrap().unwrap();
        result.output[0] ^= 1;
        assert!(store.overwrite_result(&victim, &result).unwrap(), "the victim was executed");
        store.flush().unwrap();
    }
    let (code, text) = replay(&copy, &[]);
    assert_eq!(code, 1);
    assert_eq!(text, format!("replayed 200  matched 199  mismatched 1\nmismatch {victim}\n"));
}

fn metrics(engine: &Engine) -> MetricsSnapshot {
    engine.client().call(Call::Metrics(NoParams {})).unwrap()
}

#[test]
fn a_panicking_actor_is_restarted_and_jobs_still_complete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start_with(&dir.path().join("data"), None, &[("COPROCESSOR_FAULT_INJECTION", "1")]);
    run_jobs(&engine, 10);
    for actor in ["executor", "submitter", "registry"] {
        let mut client = engine.client();
        let _: serde_json::Value = client.call(Call::Panic(PanicParams { actor: actor.into() })).unwrap();
    }
    // The panics are handled asynchronously; wait for all three restarts.
    let start = std::time::Instant::now();
    let snapshot = loop {
        let snapshot = metrics(&engine);
        if ["executor", "submitter", "registry"].iter().all(|a| snapshot.actors[*a].restarts == 1) {
            break snapshot;
        }
        assert!(start.elapsed().as_secs() < 30, "restarts not seen: {snapshot:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(snapshot.actors["executor"].errors >= 1);
    // Later work completes: new programs and jobs on the restarted actors.
    let engine_after = &engine;
    let program = engine_after.submit_program("fibonacci");
    let signer = engine.dev_signer();
    let mut request = u64_job(program, signer.address(), 1000, 90);
    request.max_cycles = 10_000_000;
    let mut params = request.sign(&signer);
    params.wait = true;
    let result: coprocessor_actors::wire::JobResult = engine.client().call(Call::SubmitJob(params)).unwrap();
    assert_eq!(result.status, "done");
    assert_eq!(metrics(&engine).engine.jobs_done, 10 - 1 + 1);
}

#[test]
fn fault_injection_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let err =
        engine.client().call::<serde_json::Value>(Call::Panic(PanicParams { actor: "executor".into() })).unwrap_err();
    assert_eq!(err.code(), Some(codes::METHOD_NOT_FOUND));
}

#[test]
fn metrics_count_jobs_and_serve_prometheus_text() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[metrics]\nprometheus = \"127.0.0.1:{port}\"\n");
    let engine = Engine::start_with(&dir.path().join("data"), Some(&config), &[]);
    run_jobs(&engine, 30);
    let snapshot = metrics(&engine);
    assert_eq!((snapshot.engine.jobs_accepted, snapshot.engine.jobs_done, snapshot.engine.jobs_failed), (30, 27, 3));
    let executor = snapshot.actors["executor"];
    assert_eq!((executor.received, executor.handled, executor.mailbox, executor.restarts), (30, 30, 0, 0));
    assert!(executor.p50_micros > 0 && executor.p99_micros >= executor.p50_micros, "{executor:?}");
    assert!(snapshot.engine.sled_bytes > 0);

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("\ncoprocessor_jobs_done_total 27\n"), "{text}");
    assert!(text.contains("coprocessor_actor_handled_total{actor=\"executor\"} 30\n"), "{text}");

    // The CLI shows the same figures.
    let out = common::coprocessor(&["metrics", "--json", "--data-dir", engine.data_dir.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["engine"]["jobsDone"], 27);
    let out = common::coprocessor(&["metrics", "--data-dir", engine.data_dir.to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("jobs       accepted 30  done 27  failed 3"), "{table}");
}
