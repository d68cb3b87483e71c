//! Bad input over the socket: each gets its JSON-RPC error, and the engine
//! serves the next good request on the same connection.

mod common;

use common::engine::{u64_job, Engine};
use common::rss_kib;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{codes, Call, HexBytes, SubmitJob};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Small limits, so oversized input is cheap to send.
const CONFIG: &str = r#"
[limits]
max_input_bytes = 4096
default_max_cycles = 1000000
max_job_cycles = 50000000
[api]
max_frame_bytes = 131072
"#;

/// A raw JSON-RPC connection: lines in, lines out.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn connect(engine: &Engine) -> Raw {
        let stream = UnixStream::connect(engine.socket()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Raw { writer: stream.try_clone().unwrap(), reader: BufReader::new(stream) }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line:?}"))
    }

    fn request(&mut self, request: Value) -> Value {
        self.send(format!("{request}\n").as_bytes());
        self.recv()
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.request(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
    }

    /// The engine still answers a good request on this connection.
    fn still_serves(&mut self) {
        let response = self.call("coproc_status", json!({}));
        assert_eq!(response["result"]["version"], env!("CARGO_PKG_VERSION"), "{response}");
    }
}

fn error(response: &Value) -> (i64, String) {
    let error = &response["error"];
    (
        error["code"].as_i64().unwrap_or_else(|| panic!("no error in {response}")),
        error["message"].as_str().unwrap().to_owned(),
    )
}

fn submit(raw: &mut Raw, params: &SubmitJob) -> Value {
    let (method, params) = coprocessor_actors::wire::Method::encode(&Call::SubmitJob(params.clone()));
    raw.call(method, params)
}

#[test]
fn malformed_requests_get_json_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start_with(&dir.path().join("data"), Some(CONFIG), &[]);
    let mut raw = Raw::connect(&engine);

    raw.send(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \n");
    let response = raw.recv();
    assert_eq!(error(&response).0, i64::from(codes::PARSE_ERROR));
    assert_eq!(response["id"], Value::Null);
    raw.still_serves();

    let response = raw.call("coproc_doesNotExist", json!({}));
    assert_eq!(error(&response), (i64::from(codes::METHOD_NOT_FOUND), "method not found: coproc_doesNotExist".into()));

    let response = raw.call("coproc_getResult", json!({"jobId": 42}));
    let (code, message) = error(&response);
    assert_eq!(code, i64::from(codes::INVALID_PARAMS));
    assert!(message.starts_with("invalid params: invalid type: integer `42`"), "{message}");

    let response = raw.call("coproc_getResult", json!({"jobId": "0x12"}));
    assert_eq!(error(&response), (i64::from(codes::INVALID_PARAMS), "jobId must be 32 bytes, got 1".into()));

    let response = raw.call("coproc_getResult", json!({"jobId": format!("0x{}", "00".repeat(32))}));
    assert_eq!(error(&response).0, i64::from(codes::UNKNOWN_JOB));

    let response = raw.request(json!({"jsonrpc": "1.0", "id": 7, "method": "coproc_status"}));
    assert_eq!(
        error(&response),
        (i64::from(codes::INVALID_REQUEST), "invalid request: jsonrpc must be \"2.0\"".into())
    );
    assert_eq!(response["id"], 7);

    let response = raw.request(json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "coproc_status"}));
    assert_eq!(error(&response).0, i64::from(codes::INVALID_REQUEST));

    let response = raw.call("coproc_submitProgram", json!({"elf": "0x7f454c46"}));
    let (code, message) = error(&response);
    assert_eq!(code, i64::from(codes::INVALID_PROGRAM));
    assert!(message.starts_with("invalid program: "), "{message}");

    // A frame over api.max_frame_bytes is refused; the connection goes on.
    let mut huge = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"coproc_status\",\"params\":{\"x\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 200_000));
    huge.extend_from_slice(b"\"}}\n");
    raw.send(&huge);
    assert_eq!(error(&raw.recv()), (i64::from(codes::INVALID_REQUEST), "frame over the limit of 131072 bytes".into()));
    raw.still_serves();
}

#[test]
fn ids_notifications_and_batches_follow_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let mut raw = Raw::connect(&engine);

    let response = raw.request(json!({"jsonrpc": "2.0", "id": "abc", "method": "coproc_status"}));
    assert_eq!(response["id"], "abc");
    assert_eq!(response["jsonrpc"], "2.0");

    // A notification gets no response: the next line answers the next request.
    raw.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"coproc_status\"}\n");
    let response = raw.request(json!({"jsonrpc": "2.0", "id": 2, "method": "coproc_metrics"}));
    assert_eq!(response["id"], 2);
    assert!(response["result"]["actors"]["executor"].is_object(), "{response}");

    let response = raw.request(json!([
        {"jsonrpc": "2.0", "id": 1, "method": "coproc_status"},
        {"jsonrpc": "2.0", "method": "coproc_status"},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"}
    ]));
    let responses = response.as_array().unwrap();
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["id"], 1);
    assert_eq!(responses[1]["error"]["code"], codes::METHOD_NOT_FOUND);
    assert_eq!(error(&raw.request(json!([]))).0, i64::from(codes::INVALID_REQUEST));

    // A complete value with no newline is answered too (geth-style IPC).
    raw.send(br#"{"jsonrpc":"2.0","id":9,"method":"coproc_status"}"#);
    assert_eq!(raw.recv()["id"], 9);

    // Pipelined requests on one connection are all answered.
    for id in 0..50 {
        raw.send(format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"coproc_status\"}}\n").as_bytes());
    }
    let mut ids: Vec<i64> = (0..50).map(|_| raw.recv()["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..50).collect::<Vec<_>>());
}

#[test]
fn bad_job_requests_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start_with(&dir.path().join("data"), Some(CONFIG), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut raw = Raw::connect(&engine);
    let job = |nonce| u64_job(program, signer.address(), nonce, 49);

    // A signature over other bytes recovers to some other address.
    let mut params = job(1).sign(&signer);
    params.signature = HexBytes(signer.sign(b"something else").to_vec());
    let (code, message) = error(&submit(&mut raw, &params));
    assert_eq!(code, i64::from(codes::BAD_SIGNATURE));
    assert!(message.ends_with("is not allowed for offchain jobs"), "{message}");

    let mut params = job(1).sign(&signer);
    params.signature = HexBytes(vec![1; 64]);
    assert_eq!(
        error(&submit(&mut raw, &params)),
        (i64::from(codes::BAD_SIGNATURE), "bad request signature: signature must be 65 bytes, got 64".into())
    );

    let stranger = Signer::random();
    let (code, message) = error(&submit(&mut raw, &job(1).sign(&stranger)));
    assert_eq!(code, i64::from(codes::BAD_SIGNATURE));
    assert_eq!(message, format!("signer {} is not allowed for offchain jobs", stranger.address()));

    let mut unknown = job(1);
    unknown.program_id = ProgramId([9; 32]);
    let (code, message) = error(&submit(&mut raw, &unknown.sign(&signer)));
    assert_eq!(
        (code, message),
        (i64::from(codes::UNKNOWN_PROGRAM), format!("program 0x{} is not registered", "09".repeat(32)))
    );

    let mut big = job(1);
    big.onchain_input = vec![0; 4097];
    assert_eq!(
        error(&submit(&mut raw, &big.sign(&signer))),
        (i64::from(codes::TOO_LARGE), "onchain input is 4097 bytes, over the limit of 4096".into())
    );
    let mut big = job(1);
    big.offchain_input = vec![0; 5000];
    assert_eq!(
        error(&submit(&mut raw, &big.sign(&signer))),
        (i64::from(codes::TOO_LARGE), "offchain input is 5000 bytes, over the limit of 4096".into())
    );
    let mut greedy = job(1);
    greedy.max_cycles = 50_000_001;
    assert_eq!(
        error(&submit(&mut raw, &greedy.sign(&signer))),
        (i64::from(codes::TOO_LARGE), "maxCycles 50000001 is over the limit of 50000000".into())
    );

    let mut params = job(1).sign(&signer);
    params.offchain_input = HexBytes(b"not what was hashed".to_vec());
    assert_eq!(
        error(&submit(&mut raw, &params)),
        (i64::from(codes::INVALID_PARAMS), "offchainInputHash is not keccak256 of offchainInput".into())
    );

    let mut params = job(1).sign(&signer);
    params.request = HexBytes(vec![1, 2, 3]);
    let (code, message) = error(&submit(&mut raw, &params));
    assert_eq!(code, i64::from(codes::INVALID_PARAMS));
    assert!(message.starts_with("request is not an ABI-encoded OffchainJobRequest"), "{message}");

    // Nothing above was accepted: nonce 1 is still free, once.
    let accepted = submit(&mut raw, &job(1).sign(&signer));
    assert!(accepted["result"]["jobId"].is_string(), "{accepted}");
    let (code, message) = error(&submit(&mut raw, &job(1).sign(&signer)));
    assert_eq!(code, i64::from(codes::NONCE_USED));
    assert_eq!(message, format!("nonce 1 already used by consumer 0x{}", hex::encode(signer.address())));

    // With no chain nothing is relayed, so nothing can be retried.
    let job_id = accepted["result"]["jobId"].clone();
    let retried = raw.call("coproc_retryJob", json!({ "jobId": job_id }));
    assert_eq!(
        error(&retried),
        (i64::from(codes::NOT_DEAD_LETTERED), "the engine has no chain; nothing is relayed".into())
    );
    raw.still_serves();
}

#[test]
fn the_same_nonce_sent_concurrently_is_accepted_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let params = u64_job(program, signer.address(), 77, 1 << 40).sign(&signer);
    let outcomes: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (engine, params) = (&engine, params.clone());
                scope.spawn(move || submit(&mut Raw::connect(engine), &params))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = outcomes.iter().filter(|r| r["result"]["jobId"].is_string()).count();
    let refused = outcomes.iter().filter(|r| r["error"]["code"] == codes::NONCE_USED).count();
    assert_eq!((accepted, refused), (1, 15), "{outcomes:?}");
}

#[test]
fn a_full_queue_answers_busy_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[queue]\nmax_jobs = 4\nmax_bytes = 1048576\n";
    let engine = Engine::start_with(&dir.path().join("data"), Some(config), &[]);
    let program = engine.submit_program("fibonacci");
    let signer = engine.dev_signer();
    // Each job loops 20M times (~0.1 s): the queue fills at once.
    let mut fast = engine.fast_client();
    for nonce in 0..40u64 {
        let mut request = u64_job(program, signer.address(), nonce, 20_000_000);
        request.max_cycles = 1_000_000_000;
        fast.send(Call::SubmitJob(request.sign(&signer))).unwrap();
    }
    fast.flush().unwrap();
    let mut accepted = 0;
    let mut busy = 0;
    for _ in 0..40 {
        match fast.recv().unwrap().1 {
            Ok(_) => accepted += 1,
            Err(err) if err.code == codes::BUSY => {
                assert!(err.message.starts_with("busy: "), "{}", err.message);
                busy += 1;
            }
            Err(err) => panic!("unexpected {err:?}"),
        }
    }
    assert!(accepted >= 4 && busy >= 1 && accepted + busy == 40, "accepted {accepted}, busy {busy}");
    let metrics: coprocessor_actors::MetricsSnapshot =
        engine.client().call(Call::Metrics(coprocessor_actors::wire::NoParams {})).unwrap();
    assert_eq!(metrics.engine.jobs_busy, busy);
}

#[test]
fn a_slow_client_and_a_thousand_idle_connections_stall_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let idle: Vec<UnixStream> = (0..1000).map(|_| UnixStream::connect(engine.socket()).unwrap()).collect();
    let mut slow = UnixStream::connect(engine.socket()).unwrap();
    let request = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"coproc_status\"}\n";
    // The slow client sends its request a byte a second; meanwhile a second
    // client gets 100 answers.
    let mut fast = Raw::connect(&engine);
    for (i, byte) in request.iter().enumerate() {
        slow.write_all(&[*byte]).unwrap();
        if i < 3 {
            for _ in 0..33 {
                fast.still_serves();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let mut answer = String::new();
    BufReader::new(&slow).read_line(&mut answer).unwrap();
    assert!(answer.contains("\"version\""), "{answer}");
    drop(idle);
    let mut probe = [0u8; 1];
    slow.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    assert!(slow.read(&mut probe).is_err(), "no stray bytes after the answer");
}

#[test]
fn the_same_protocol_is_served_on_loopback_tcp() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[api]\ntcp = \"127.0.0.1:{port}\"\n");
    let engine = Engine::start_with(&dir.path().join("data"), Some(&config), &[]);
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // TCP clients present the api token first (tests/security.rs has the rest).
    let token = std::fs::read_to_string(engine.data_dir.join("api.token")).unwrap();
    let auth = json!({"jsonrpc": "2.0", "id": "auth", "method": "coproc_auth", "params": {"token": token.trim()}});
    writer.write_all(format!("{auth}\n").as_bytes()).unwrap();
    writer.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"tcp\",\"method\":\"coproc_status\"}\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), json!({"jsonrpc": "2.0", "id": "auth", "result": {}}));
    line.clear();
    reader.read_line(&mut line).unwrap();
    let response: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(response["id"], "tcp");
    assert_eq!(response["result"]["version"], env!("CARGO_PKG_VERSION"));
}

/// Resident memory of a process, in KiB.
#[test]
fn a_client_that_never_reads_holds_bounded_memory_and_stalls_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let before = rss_kib(engine.pid());
    // 40,000 pipelined metrics requests (~1.3 KB answers, ~50 MB in all),
    // never read. The engine stops reading this client once its answers
    // fill the socket and its 1,024 request slots.
    let mut greedy = UnixStream::connect(engine.socket()).unwrap();
    greedy.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"coproc_metrics\"}\n";
    let mut written = 0;
    for _ in 0..40_000 {
        if greedy.write_all(request).is_err() {
            break; // the engine stopped reading us: that is the point
        }
        written += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut other = Raw::connect(&engine);
    other.still_serves();
    let grown = rss_kib(engine.pid()).saturating_sub(before);
    assert!(grown < 32 * 1024, "engine grew by {grown} KiB after {written} unread requests");
}
