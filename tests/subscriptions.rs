//! Pushed results: `coproc_subscribe` sends each durable status change of
//! a consumer's jobs (or of given jobs) on the connection, in order, and
//! drops a subscriber that does not read, with a clear last word.

mod common;

use alloy::primitives::Address;
use common::engine::{u64_job, Engine};
use coprocessor_actors::wire::{codes, Call, HexBytes, JobFilter, JobIdParams, SubscribeParams};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn consumer(address: Address) -> JobFilter {
    JobFilter { consumer: Some(HexBytes(address.to_vec())), job_ids: None }
}

#[test]
fn a_subscriber_sees_every_status_of_its_100_jobs_in_order_and_nothing_of_another_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let (mine, theirs) = (signer.address(), Address::repeat_byte(0xbb));
    let mut subscription = engine.client().subscribe(consumer(mine)).unwrap();
    assert_eq!(subscription.id(), "0x0000000000000001");

    // 100 jobs of ours and 30 of another consumer's, interleaved.
    let mut client = engine.client();
    let mut ours = Vec::new();
    for nonce in 0..130u64 {
        let owner = if matches!(nonce % 13, 2 | 5 | 11) { theirs } else { mine };
        let job = u64_job(program, owner, nonce, nonce + 1);
        let _: JobIdParams = client.call(Call::SubmitJob(job.sign(&signer))).unwrap();
        if owner == mine {
            ours.push(job.job_id().0.to_vec());
        }
    }
    assert_eq!(ours.len(), 100);

    let mut seen: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    for _ in 0..200 {
        let change = subscription.next_change().unwrap();
        assert!(ours.contains(&change.job_id.0), "a job of another consumer: {change:?}");
        if change.status == "done" {
            assert_eq!(change.cycles, engine.wait_result(&mut client, &change.job_id.0).cycles, "{change:?}");
        }
        seen.entry(change.job_id.0).or_default().push(change.status);
    }
    assert_eq!(seen.len(), 100);
    assert!(seen.values().all(|statuses| statuses == &["pending", "done"]), "{seen:?}");
    // Nothing else is waiting: the next change is a new job's.
    let last = u64_job(program, mine, 500, 7);
    let _: JobIdParams = client.call(Call::SubmitJob(last.sign(&signer))).unwrap();
    let change = subscription.next_change().unwrap();
    assert_eq!((change.job_id.0, change.status.as_str()), (last.job_id().0.to_vec(), "pending"));

    // Following job IDs: only those.
    let watched = u64_job(program, theirs, 600, 9);
    let filter = JobFilter { consumer: None, job_ids: Some(vec![HexBytes(watched.job_id().0.to_vec())]) };
    let mut by_id = engine.client().subscribe(filter).unwrap();
    for nonce in [601, 602] {
        let _: JobIdParams = client.call(Call::SubmitJob(u64_job(program, theirs, nonce, 1).sign(&signer))).unwrap();
    }
    let _: JobIdParams = client.call(Call::SubmitJob(watched.sign(&signer))).unwrap();
    let statuses: Vec<String> = (0..2).map(|_| by_id.next_change().unwrap()).map(|change| change.status).collect();
    assert_eq!(statuses, ["pending", "done"]);
}

/// The way `job watch` and `--wait` follow a job: subscribe, then read
/// its status. A change that lands between the two is in one or the other,
/// never in neither, however the store writer's groups fall.
#[test]
fn subscribe_then_read_never_misses_a_change_that_falls_between() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let socket = engine.socket();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut client = coprocessor::client::Client::connect(&socket).unwrap();
        let mut missed_none = 0;
        for nonce in 0..300u64 {
            let job = u64_job(program, signer.address(), nonce, nonce);
            let _: JobIdParams = client.call(Call::SubmitJob(job.sign(&signer))).unwrap();
            let id = HexBytes(job.job_id().0.to_vec());
            let filter = JobFilter { consumer: None, job_ids: Some(vec![id.clone()]) };
            let mut subscription = coprocessor::client::Client::connect(&socket).unwrap().subscribe(filter).unwrap();
            let now: coprocessor_actors::wire::JobResult =
                client.call(Call::GetResult(JobIdParams { job_id: id })).unwrap();
            if now.status != "done" {
                while subscription.next_change().unwrap().status != "done" {}
            }
            missed_none += 1;
        }
        done.send(missed_none).unwrap();
    });
    // A missed change hangs the follower: give it far more than it needs.
    let followed = finished.recv_timeout(Duration::from_secs(240)).expect("a job's change was missed: still waiting");
    assert_eq!(followed, 300);
}

/// One JSON-RPC line on a raw connection, and its answer.
fn request(stream: &mut UnixStream, reader: &mut BufReader<UnixStream>, line: &str) -> serde_json::Value {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn a_subscriber_that_does_not_read_is_dropped_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start_with(&dir.path().join("data"), Some("[api]\nsubscription_backlog = 8\n"), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut stream = UnixStream::connect(engine.socket()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let subscribe = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"coproc_subscribe","params":["jobs",{{"consumer":"{}"}}]}}"#,
        signer.address()
    );
    let answer = request(&mut stream, &mut reader, &subscribe);
    let id = answer["result"].as_str().expect("a subscription ID").to_owned();

    // 2,000 jobs while the subscriber reads nothing.
    let mut client = engine.client();
    let jobs: Vec<_> = (0..2000u64).map(|nonce| u64_job(program, signer.address(), nonce, nonce)).collect();
    common::pipeline(&engine.socket(), 2, 256, jobs.iter().map(|job| job.sign(&signer)).collect());
    engine.wait_result(&mut client, &jobs[1999].job_id().0);

    // What was written before the socket filled, then the last word.
    let mut results = 0;
    let error = loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let message: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (&message["method"], &message["params"]["subscription"]),
            (&"coproc_subscription".into(), &id.as_str().into())
        );
        match message["params"].get("error") {
            Some(error) => break error.clone(),
            None => results += 1,
        }
    };
    assert!(results < 4000, "{results} notifications: never dropped");
    assert_eq!(error["code"], codes::SUBSCRIPTION_DROPPED);
    assert_eq!(
        error["message"],
        "subscription dropped: 8 notifications unread (api.subscription_backlog): the client does not read; \
         subscribe again"
    );
    // Nothing more comes, and the connection still answers.
    reader.get_ref().set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut line = String::new();
    assert!(reader.read_line(&mut line).is_err(), "after the drop: {line}");
    reader.get_ref().set_read_timeout(None).unwrap();
    let unsubscribe = format!(r#"{{"jsonrpc":"2.0","id":2,"method":"coproc_unsubscribe","params":["{id}"]}}"#);
    assert_eq!(request(&mut stream, &mut reader, &unsubscribe)["result"], false);
    let again = request(&mut stream, &mut reader, &subscribe);
    let second = again["result"].as_str().expect("a second subscription").to_owned();
    let unsubscribe = format!(r#"{{"jsonrpc":"2.0","id":3,"method":"coproc_unsubscribe","params":["{second}"]}}"#);
    assert_eq!(request(&mut stream, &mut reader, &unsubscribe)["result"], true);
}

#[test]
fn job_watch_follows_a_job_to_its_final_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let program = engine.submit_program("square-root");
    let data_arg = data.to_str().unwrap();
    let out = common::coprocessor(&[
        "job",
        "submit",
        "--program",
        &common::hex(&program.0),
        "--input",
        &common::hex(&common::abi_u64(81)),
        "--data-dir",
        data_arg,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // Without a chain, done is final: watch prints it and ends.
    let out = common::coprocessor(&["job", "watch", &id, "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().ends_with(&format!("{id} done\n")));
    let out = common::coprocessor(&["job", "watch", "--data-dir", data_arg]);
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "error: name job IDs, or --consumer ADDRESS\n");
}

#[test]
fn a_subscription_that_cannot_be_served_is_refused_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[api]\nmax_subscriptions_per_connection = 2\n";
    let engine = Engine::start_with(&dir.path().join("data"), Some(config), &[]);
    let mut client = engine.client();
    let refused = |client: &mut coprocessor::client::Client, params: serde_json::Value| {
        let answer = client.raw("coproc_subscribe", params).unwrap();
        (answer["error"]["code"].as_i64().unwrap(), answer["error"]["message"].as_str().unwrap().to_owned())
    };
    let invalid = i64::from(codes::INVALID_PARAMS);
    assert_eq!(
        refused(&mut client, serde_json::json!(["blocks", {"consumer": "0x00"}])),
        (invalid, "unknown subscription \"blocks\": the one kind is \"jobs\"".to_owned())
    );
    assert_eq!(
        refused(&mut client, serde_json::json!(["jobs", {}])),
        (invalid, "the filter must be {consumer} or {jobIds}, exactly one of them".to_owned())
    );
    assert_eq!(
        refused(&mut client, serde_json::json!(["jobs", {"consumer": "0x1234"}])),
        (invalid, "consumer must be a 20-byte address, got 2 bytes".to_owned())
    );
    assert_eq!(
        refused(&mut client, serde_json::json!(["jobs", {"jobIds": []}])),
        (invalid, "jobIds must name 1 to 1024 jobs, got 0".to_owned())
    );
    assert_eq!(
        refused(&mut client, serde_json::json!(["jobs", {"jobIds": ["0x12"]}])),
        (invalid, "a jobId must be 32 bytes, got 1".to_owned())
    );
    // Two per connection here: the third waits for one to go.
    let mine = serde_json::json!(["jobs", {"consumer": format!("{}", Address::repeat_byte(1))}]);
    for _ in 0..2 {
        assert!(client.raw("coproc_subscribe", mine.clone()).unwrap()["result"].is_string());
    }
    assert_eq!(
        refused(&mut client, mine),
        (
            i64::from(codes::BUSY),
            "2 subscriptions on this connection (api.max_subscriptions_per_connection); unsubscribe first".to_owned()
        )
    );
    // The fast path has no notifications.
    let filter = JobFilter { consumer: None, job_ids: Some(vec![HexBytes(vec![0; 32])]) };
    let err = engine.fast_client().call(Call::Subscribe(SubscribeParams("jobs".into(), filter))).unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_REQUEST));
    assert_eq!(
        err.to_string(),
        "coproc_subscribe and coproc_unsubscribe are for JSON-RPC connections, not the fast path"
    );
}
