//! The security model, enforced: private files and directories, the TCP
//! api token, per-signer quotas, and no secret in any output.
//!
//! Kept elsewhere (and still run): bad signatures, unauthorised signers and
//! replayed nonces refused before execution in `api_errors.rs`
//! (`bad_job_requests_are_refused_before_anything_runs`,
//! `the_same_nonce_sent_concurrently_is_accepted_exactly_once`) and, with a
//! chain, in `chain.rs`; isolation between jobs in the VM's tests
//! (`a_shorter_input_does_not_reveal_the_previous_one`,
//! `job_two_cannot_see_what_job_one_wrote`,
//! `isolation_holds_after_many_pages_were_touched`) and in `guests.rs`
//! (`a_warm_instance_gives_each_job_fresh_memory`).

mod common;

use common::engine::{u64_job, Engine};
use coprocessor::client::{Client, ClientError, FastClient};
use coprocessor_actors::keys;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{
    codes, Call, HexBytes, JobIdParams, JobResult, NoParams, Reply, StatusReply, SubmitJob,
};
use coprocessor_actors::MetricsSnapshot;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())).permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tcp_config(port: u16) -> String {
    format!("[api]\ntcp = \"127.0.0.1:{port}\"\n")
}

fn token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join(keys::API_TOKEN)).expect("api.token").trim().to_owned()
}

/// Runs `coprocessor run` on `data_dir` and expects it to refuse to start:
/// returns its stderr.
fn refused_start(data_dir: &Path, config: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coprocessor"));
    command.arg("run").arg("--data-dir").arg(data_dir);
    if let Some(text) = config {
        let path = data_dir.with_extension("toml");
        std::fs::write(&path, text).unwrap();
        command.arg("--config").arg(path);
    }
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start coprocessor");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            assert!(!status.success(), "the engine exited 0: {stderr}");
            return stderr;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the engine started on {} instead of refusing", data_dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw JSON-RPC connection over TCP.
struct Line {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Line {
    fn connect(port: u16) -> Line {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Line { writer: stream.try_clone().unwrap(), reader: BufReader::new(stream) }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// The next answer, or `None` once the engine has closed the connection.
    fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line:?}"))),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(err) => panic!("reading: {err}"),
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Option<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.send(format!("{request}\n").as_bytes());
        self.recv()
    }

    /// The connection is closed: no more answers, whatever is sent.
    fn assert_closed(&mut self) {
        let _ = self.writer.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"coproc_status\"}\n");
        assert_eq!(self.recv(), None, "the connection is still served");
    }
}

fn error_of(response: &Value) -> (i64, String) {
    let error = &response["error"];
    (
        error["code"].as_i64().unwrap_or_else(|| panic!("no error in {response}")),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

const NOT_AUTH: &str = "unauthorized: the first request of a TCP connection must be coproc_auth {\"token\": ...} \
                        with the engine's api token (<data_dir>/api.token)";
const WRONG_TOKEN: &str = "unauthorized: wrong api token";

#[test]
fn secrets_and_the_data_dir_are_private_and_the_token_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    let data = dir.path().join("nested/data");
    let port = free_port();
    let engine = Engine::start_with(&data, Some(&tcp_config(port)), &[]);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&engine.socket()), 0o600);
    for file in [keys::OPERATOR_KEY, keys::DEV_CONSUMER_KEY, keys::API_TOKEN] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let first = token(&data);
    assert_eq!(first.len(), 64);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{first}");
    // Nothing left behind by the atomic writes or the private bind.
    let mut names: Vec<String> =
        std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["api.token", "coprocessor.ipc", "db", "dev-consumer.key", "operator.key"]);
    let engine = engine.restart();
    assert_eq!(token(&data), first, "the token is kept across restarts");
    assert!(engine.terminate().success());
}

#[test]
fn a_data_dir_others_can_enter_is_tightened_and_one_they_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    chmod(&loose, 0o755);
    let engine = Engine::start(&loose);
    assert_eq!(mode(&loose), 0o700, "a readable data dir is made private");
    assert!(engine.terminate().success());

    for bits in [0o775, 0o757, 0o777] {
        let writable = dir.path().join(format!("writable-{bits:o}"));
        std::fs::create_dir(&writable).unwrap();
        chmod(&writable, bits);
        let stderr = refused_start(&writable, None);
        assert!(
            stderr.contains(&format!(
                "data dir {}: mode {bits:o} lets others write to it; refusing to trust its keys (chmod 700 it)",
                writable.display()
            )),
            "{stderr}"
        );
        assert_eq!(mode(&writable), bits, "a refused data dir is left as it was");
        assert!(!writable.join(keys::OPERATOR_KEY).exists(), "nothing is written into a refused data dir");
    }
}

#[test]
fn key_files_others_can_read_or_write_are_refused_naming_the_path_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let config = tcp_config(port);
    let engine = Engine::start_with(&data, Some(&config), &[]);
    assert!(engine.terminate().success());
    for (file, bits) in [(keys::OPERATOR_KEY, 0o640), (keys::DEV_CONSUMER_KEY, 0o604), (keys::API_TOKEN, 0o644)] {
        let path = data.join(file);
        chmod(&path, bits);
        let stderr = refused_start(&data, Some(&config));
        assert!(
            stderr.contains(&format!(
                "{}: mode {bits:o} lets others read or write the key; chmod 600 it",
                path.display()
            )),
            "{file}: {stderr}"
        );
        chmod(&path, 0o600);
    }
    // A relayer key too (read before the node is ever asked).
    let relayer = data.join(keys::RELAYER_KEY);
    std::fs::write(&relayer, format!("0x{}\n", "11".repeat(32))).unwrap();
    chmod(&relayer, 0o660);
    let chain = format!("[chain]\njob_manager = \"0x{}\"\nrpc_url = \"http://127.0.0.1:1\"\n", "22".repeat(20));
    let stderr = refused_start(&data, Some(&chain));
    assert!(
        stderr.contains(&format!("{}: mode 660 lets others read or write the key; chmod 600 it", relayer.display())),
        "{stderr}"
    );
    // All private again: it starts.
    chmod(&relayer, 0o600);
    let engine = Engine::start_with(&data, Some(&config), &[]);
    assert!(engine.terminate().success());
}

#[test]
fn tcp_is_loopback_only_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = refused_start(&data, Some("[api]\ntcp = \"0.0.0.0:8645\"\n"));
    assert!(
        stderr.contains(
            "invalid config: api.tcp must be a loopback address, got 0.0.0.0:8645 (or set api.tcp_allow_remote = true)"
        ),
        "{stderr}"
    );
    let port = free_port();
    let config = format!("[api]\ntcp = \"0.0.0.0:{port}\"\ntcp_allow_remote = true\n");
    let engine = Engine::start_with(&data, Some(&config), &[]);
    // Still behind the token.
    let mut line = Line::connect(port);
    assert_eq!(
        error_of(&line.call("coproc_status", json!({})).unwrap()),
        (i64::from(codes::UNAUTHORIZED), NOT_AUTH.into())
    );
    line.assert_closed();
    assert!(engine.terminate().success());
}

/// Fetches the Prometheus text from `port`.
fn prometheus(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("prometheus");
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_tcp_connection_must_authenticate_first_and_is_closed_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (port, prom) = (free_port(), free_port());
    let config = format!("[api]\ntcp = \"127.0.0.1:{port}\"\n[metrics]\nprometheus = \"127.0.0.1:{prom}\"\n");
    let engine = Engine::start_with(&data, Some(&config), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let token = token(&data);

    // Any other first request: refused and closed, before any work. A
    // valid, signed job as the first request is not even decoded.
    let job = u64_job(program, signer.address(), 1, 49).sign(&signer);
    let (method, params) = coprocessor_actors::wire::Method::encode(&Call::SubmitJob(job.clone()));
    let mut refusals = 0;
    for (name, first) in [
        ("status", json!({"jsonrpc": "2.0", "id": 5, "method": "coproc_status"}).to_string()),
        ("a job", json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params}).to_string()),
        (
            "a batch",
            json!([{"jsonrpc": "2.0", "id": 5, "method": "coproc_auth", "params": {"token": token}}]).to_string(),
        ),
        ("garbage", "hello".to_owned()),
    ] {
        let mut line = Line::connect(port);
        line.send(format!("{first}\n").as_bytes());
        let answer = line.recv().unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(error_of(&answer), (i64::from(codes::UNAUTHORIZED), NOT_AUTH.into()), "{name}");
        line.assert_closed();
        refusals += 1;
    }
    // A wrong token, in either case or length.
    let (first, rest) = token.split_at(1);
    let wrong = format!("{}{rest}", if first == "0" { "1" } else { "0" });
    for presented in [wrong.clone(), token[..63].to_owned(), String::new()] {
        let mut line = Line::connect(port);
        let answer = line.call("coproc_auth", json!({ "token": presented })).expect("an answer");
        assert_eq!(answer["id"], 1);
        assert_eq!(error_of(&answer), (i64::from(codes::UNAUTHORIZED), WRONG_TOKEN.into()));
        assert!(!answer.to_string().contains(&token), "the token is never echoed");
        line.assert_closed();
        refusals += 1;
    }
    // A first request over 4 KiB is not read whole.
    let mut line = Line::connect(port);
    line.send(
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"coproc_auth\",\"params\":{{\"token\":\"{}\"}}}}\n",
            "a".repeat(5000)
        )
        .as_bytes(),
    );
    let (code, message) = error_of(&line.recv().expect("an answer"));
    assert_eq!(
        (code, message.as_str()),
        (
            i64::from(codes::UNAUTHORIZED),
            "unauthorized: the first request of a TCP connection (coproc_auth) must fit in 4096 bytes"
        )
    );
    line.assert_closed();
    refusals += 1;

    // The fast path: the first frame must be Call::Auth.
    let mut fast = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fast.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut bytes = vec![coprocessor_actors::wire::FAST_PATH_MAGIC];
    bytes.extend(coprocessor_actors::fast_frame(&coprocessor_actors::wire::FastRequest {
        id: 9,
        call: Call::SubmitJob(job.clone()),
    }));
    fast.write_all(&bytes).unwrap();
    let mut len = [0u8; 4];
    fast.read_exact(&mut len).unwrap();
    let mut frame = vec![0u8; u32::from_le_bytes(len) as usize];
    fast.read_exact(&mut frame).unwrap();
    let (response, _): (coprocessor_actors::wire::FastResponse, _) =
        bincode::serde::decode_from_slice(&frame, bincode::config::standard()).unwrap();
    assert_eq!(response.id, 9);
    assert_eq!(response.result.unwrap_err().code, codes::UNAUTHORIZED);
    let mut rest = Vec::new();
    assert!(matches!(fast.read_to_end(&mut rest), Ok(0)) || rest.is_empty(), "closed after the refusal");
    refusals += 1;
    match FastClient::connect_tcp(&format!("127.0.0.1:{port}"), &wrong) {
        Err(ClientError::Unauthorized(err)) => {
            assert_eq!((err.code, err.message.as_str()), (codes::UNAUTHORIZED, WRONG_TOKEN))
        }
        other => panic!("a wrong token was not refused: {other:?}"),
    }
    refusals += 1;

    // None of those did any work: nothing was accepted.
    let metrics = engine.metrics();
    assert_eq!(metrics.engine.jobs_accepted, 0);
    assert_eq!(metrics.engine.api_auth_failures, refusals);
    let text = prometheus(prom);
    assert!(text.contains(&format!("\ncoprocessor_api_auth_failures_total {refusals}\n")), "{text}");

    // The right token: then the connection is served like the socket.
    let mut line = Line::connect(port);
    assert_eq!(
        line.call("coproc_auth", json!({ "token": token })).unwrap(),
        json!({"jsonrpc": "2.0", "id": 1, "result": {}})
    );
    let status = line.call("coproc_status", json!({})).unwrap();
    assert_eq!(status["result"]["version"], env!("CARGO_PKG_VERSION"), "{status}");
    let again = line.call("coproc_auth", json!({ "token": token })).unwrap();
    assert_eq!(error_of(&again).0, i64::from(codes::INVALID_REQUEST));
    let mut fast = FastClient::connect_tcp(&format!("127.0.0.1:{port}"), &token).expect("fast path with the token");
    assert!(matches!(fast.call(Call::SubmitJob(job)), Ok(Reply::JobId(_))));
    let mut client =
        Client::connect_tcp(&format!("127.0.0.1:{port}"), &format!("0x{}", token.to_uppercase())).expect("either case");
    let _: StatusReply = client.call(Call::Status(NoParams {})).unwrap();

    // The Unix socket needs no token, and takes none.
    let mut unix = engine.client();
    let _: StatusReply = unix.call(Call::Status(NoParams {})).unwrap();
    let err =
        unix.call::<Value>(Call::Auth(coprocessor_actors::wire::AuthParams { token: token.clone() })).unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_REQUEST));

    // The CLI: the token from the data dir, or --token.
    let addr = format!("127.0.0.1:{port}");
    let data_arg = data.to_str().unwrap();
    let out = common::coprocessor(&["metrics", "--json", "--tcp", &addr, "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snapshot: MetricsSnapshot = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snapshot.engine.api_auth_failures, refusals);
    let out = common::coprocessor(&["metrics", "--json", "--tcp", &addr, "--data-dir", data_arg, "--token", &wrong]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("error: the engine refused the api token: {WRONG_TOKEN}")
    );
    let out = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_coprocessor"))
            .args(["metrics", "--json", "--tcp", &addr, "--data-dir", dir.path().to_str().unwrap()])
            .env("COPROCESSOR_API_TOKEN", &token),
        common::COMMAND_LIMIT,
    );
    assert!(out.status.success(), "the token from the environment: {}", String::from_utf8_lossy(&out.stderr));
    assert!(engine.terminate().success());
}

#[test]
fn an_idle_tcp_connection_is_closed_after_the_auth_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let engine = Engine::start_with(&dir.path().join("data"), Some(&tcp_config(port)), &[]);
    let mut line = Line::connect(port);
    // Half a request, never finished.
    line.send(b"{\"jsonrpc\":\"2.0\",");
    let answer = line.recv().expect("a refusal");
    assert_eq!(error_of(&answer), (i64::from(codes::UNAUTHORIZED), "unauthorized: no coproc_auth within 10 s".into()));
    assert_eq!(line.recv(), None);
    assert_eq!(engine.metrics().engine.api_auth_failures, 1);
}

/// Submits over `client`; the error's code and message if refused.
fn submit(client: &mut Client, params: &SubmitJob) -> Result<(), (i32, String)> {
    client.call_json(&Call::SubmitJob(params.clone())).map(drop).map_err(|err| match err {
        ClientError::Rpc(err) => (err.code, err.message),
        other => panic!("{other}"),
    })
}

#[test]
fn a_signer_over_its_job_quota_is_refused_while_another_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let other = Signer::random();
    let config = format!(
        "[offchain]\nallowed_signers = [\"{}\"]\n[quota]\njobs_per_second = 1\njobs_burst = 3\ncycles_per_second = 0\n",
        other.address()
    );
    let engine = Engine::start_with(&dir.path().join("data"), Some(&config), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let start = Instant::now();
    submit(&mut client, &u64_job(program, signer.address(), 1, 49).sign(&signer)).unwrap();
    // Refusals after the charge (a replayed nonce) are refunded: replaying
    // someone's request cannot spend their quota.
    for _ in 0..5 {
        let (code, _) = submit(&mut client, &u64_job(program, signer.address(), 1, 49).sign(&signer)).unwrap_err();
        assert_eq!(code, codes::NONCE_USED);
    }
    let mut nonce = 2;
    let refusal = loop {
        match submit(&mut client, &u64_job(program, signer.address(), nonce, 49).sign(&signer)) {
            Ok(()) => nonce += 1,
            Err(refusal) => break refusal,
        }
        assert!(nonce < 1_000, "never refused");
    };
    let accepted = nonce - 1;
    // The burst, plus at most one a second since.
    let allowed = 3 + start.elapsed().as_secs() + 1;
    assert!((3..=allowed).contains(&accepted), "{accepted} accepted, {allowed} allowed");
    let (code, message) = refusal;
    assert_eq!(code, codes::QUOTA);
    let expected =
        format!("quota: signer {} is over its quota of 1 jobs per second (burst 3); retry in ", signer.address());
    assert!(message.starts_with(&expected) && message.ends_with(" ms"), "{message}");
    // Another signer is not held back.
    for nonce in 1..=3 {
        submit(&mut client, &u64_job(program, other.address(), nonce, 49).sign(&other)).expect("the other signer");
    }
    let metrics = engine.metrics();
    assert!(metrics.engine.quota_refused_jobs >= 1);
    assert_eq!(metrics.engine.quota_refused_cycles, 0);
    assert_eq!(metrics.engine.jobs_accepted, accepted + 3);
}

#[test]
fn a_signer_over_its_cycle_quota_is_refused_while_another_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let other = Signer::random();
    let config = format!(
        "[limits]\ndefault_max_cycles = 1000000\nmax_job_cycles = 2500000\n[offchain]\nallowed_signers = [\"{}\"]\n\
         [quota]\njobs_per_second = 0\ncycles_per_second = 1\ncycles_burst = 2500000\n",
        other.address()
    );
    let engine = Engine::start_with(&dir.path().join("data"), Some(&config), &[]);
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();
    // Each job asks for 1,000,000 cycles (and uses far fewer): charged by
    // what it asks for.
    submit(&mut client, &u64_job(program, signer.address(), 1, 49).sign(&signer)).unwrap();
    submit(&mut client, &u64_job(program, signer.address(), 2, 49).sign(&signer)).unwrap();
    let (code, message) = submit(&mut client, &u64_job(program, signer.address(), 3, 49).sign(&signer)).unwrap_err();
    assert_eq!(code, codes::QUOTA);
    let expected = format!(
        "quota: signer {} is over its quota of 1 cycles per second (burst 2500000): this job asks for 1000000 cycles; \
         retry in ",
        signer.address()
    );
    assert!(message.starts_with(&expected), "{message}");
    // A quota refusal is not a refusal of the request: it is not recorded
    // against the job, which can come back.
    let id = u64_job(program, signer.address(), 3, 49).job_id();
    let err = client.call::<JobResult>(Call::GetResult(JobIdParams { job_id: HexBytes(id.0.to_vec()) })).unwrap_err();
    assert_eq!(err.code(), Some(codes::UNKNOWN_JOB));
    // A smaller job still fits what is left.
    let mut small = u64_job(program, signer.address(), 3, 49);
    small.max_cycles = 400_000;
    submit(&mut client, &small.sign(&signer)).expect("a job that fits the rest");
    for nonce in 1..=2 {
        submit(&mut client, &u64_job(program, other.address(), nonce, 49).sign(&other)).expect("the other signer");
    }
    let metrics = engine.metrics();
    assert_eq!((metrics.engine.quota_refused_cycles, metrics.engine.quota_refused_jobs), (1, 0));
}

#[test]
fn refused_requests_never_reach_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&dir.path().join("data"));
    let program = engine.submit_program("square-root");
    let signer = engine.dev_signer();
    let mut client = engine.client();
    submit(&mut client, &u64_job(program, signer.address(), 1, 49).sign(&signer)).unwrap();
    let done = |engine: &Engine| {
        let start = Instant::now();
        loop {
            let metrics = engine.metrics();
            if metrics.engine.jobs_done + metrics.engine.jobs_failed == metrics.engine.jobs_accepted {
                return metrics;
            }
            assert!(start.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let before = done(&engine);
    let stranger = Signer::random();
    let mut forged = u64_job(program, signer.address(), 2, 49).sign(&signer);
    forged.signature = HexBytes(signer.sign(b"other bytes").to_vec());
    let refused = [
        (u64_job(program, signer.address(), 1, 49).sign(&signer), codes::NONCE_USED),
        (u64_job(program, stranger.address(), 2, 49).sign(&stranger), codes::BAD_SIGNATURE),
        (u64_job(program, signer.address(), 2, 49).sign(&stranger), codes::BAD_SIGNATURE),
        (forged, codes::BAD_SIGNATURE),
    ];
    for (params, code) in refused {
        assert_eq!(submit(&mut client, &params).unwrap_err().0, code);
    }
    let after = done(&engine);
    assert_eq!(after.engine.jobs_accepted, before.engine.jobs_accepted);
    assert_eq!(after.actors["executor"].received, before.actors["executor"].received, "nothing reached an executor");
    assert_eq!(after.engine.requests_rejected, before.engine.requests_rejected + 4);
}

/// Secrets, in every form they could be printed in.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let lower = hex::encode(secret);
    let upper = lower.to_uppercase();
    let mut forms = vec![secret.to_vec()];
    for text in [&lower, &upper] {
        forms.push(text.clone().into_bytes());
        // A truncated print (8 bytes at either end) gives it away too.
        forms.push(text.as_bytes()[..16].to_vec());
        forms.push(text.as_bytes()[text.len() - 16..].to_vec());
    }
    // The bytes as a Rust array would be debug-printed.
    forms.push(format!("{:?}", &secret[..8]).trim_end_matches(']').as_bytes().to_vec());
    forms
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The binary, with every output captured to files.
struct Traced {
    child: Child,
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn no_key_or_token_appears_in_any_output_of_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (port, prom) = (free_port(), free_port());
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!("[api]\ntcp = \"127.0.0.1:{port}\"\n[metrics]\nprometheus = \"127.0.0.1:{prom}\"\n"),
    )
    .unwrap();
    let (stdout_path, stderr_path) = (dir.path().join("engine.stdout"), dir.path().join("engine.stderr"));
    let child = Command::new(env!("CARGO_BIN_EXE_coprocessor"))
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .env("COPROCESSOR_FAULT_INJECTION", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start the engine");
    let mut engine = Traced { child };
    let socket = data.join("coprocessor.ipc");
    let start = Instant::now();
    let mut client = loop {
        if let Ok(client) = Client::connect(&socket) {
            break client;
        }
        assert!(engine.child.try_wait().unwrap().is_none(), "the engine exited");
        assert!(start.elapsed() < Duration::from_secs(60), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Everything the engine said, on every channel.
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keep = |name: &str, bytes: Vec<u8>| outputs.push((name.to_owned(), bytes));
    let secrets = [
        ("operator key", keys::load(&data.join(keys::OPERATOR_KEY)).unwrap().secret_bytes().to_vec()),
        ("dev consumer key", keys::load(&data.join(keys::DEV_CONSUMER_KEY)).unwrap().secret_bytes().to_vec()),
        ("api token", hex::decode(token(&data)).unwrap()),
    ];
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data-dir", data.to_str().unwrap()]);
        let mut command = Command::new(env!("CARGO_BIN_EXE_coprocessor"));
        let out = common::output_within(command.args(&all).env("RUST_LOG", "trace"), common::COMMAND_LIMIT);
        let mut bytes = out.stdout;
        bytes.extend(out.stderr);
        (out.status.success(), bytes)
    };
    let elf = common::guest("square-root");
    let (ok, out) = cli(&["program", "submit", elf.to_str().unwrap()]);
    assert!(ok, "{}", String::from_utf8_lossy(&out));
    let program_hex =
        String::from_utf8_lossy(&out).split_whitespace().find(|w| w.starts_with("0x")).unwrap().to_owned();
    keep("program submit", out);
    let (ok, out) = cli(&[
        "job",
        "submit",
        "--program",
        &program_hex,
        "--input",
        &common::hex(&common::abi_u64(49)),
        "--wait",
        "--json",
    ]);
    assert!(ok, "{}", String::from_utf8_lossy(&out));
    keep("job submit --wait", out);
    let program = coprocessor_actors::program::ProgramId(hex::decode(&program_hex[2..]).unwrap().try_into().unwrap());
    let signer = keys::load(&data.join(keys::DEV_CONSUMER_KEY)).unwrap();
    // Jobs over the socket and, with the token, over TCP.
    let mut ids = Vec::new();
    for nonce in 100..105 {
        let params = u64_job(program, signer.address(), nonce, nonce).sign(&signer);
        let answer = client.call_json(&Call::SubmitJob(params)).unwrap();
        keep("submit", answer.to_string().into_bytes());
        ids.push(answer["jobId"].as_str().unwrap().to_owned());
    }
    let token_text = token(&data);
    let mut fast = FastClient::connect_tcp(&format!("127.0.0.1:{port}"), &token_text).unwrap();
    let reply = fast.call(Call::SubmitJob(u64_job(program, signer.address(), 200, 7).sign(&signer))).unwrap();
    keep("fast submit", format!("{reply:?}").into_bytes());
    // Bad requests: a wrong token, no auth, malformed JSON, a bad signature,
    // a replayed nonce, an unknown method.
    let mut wrong = Line::connect(port);
    keep("wrong token", wrong.call("coproc_auth", json!({"token": "00".repeat(32)})).unwrap().to_string().into_bytes());
    let mut noauth = Line::connect(port);
    keep("no auth", noauth.call("coproc_metrics", json!({})).unwrap().to_string().into_bytes());
    let mut raw = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    raw.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\"\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}\n")
        .unwrap();
    let mut reader = BufReader::new(raw);
    for _ in 0..2 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        keep("malformed", line.into_bytes());
    }
    let mut bad = u64_job(program, signer.address(), 300, 1).sign(&signer);
    bad.signature = HexBytes(vec![7; 65]);
    keep("bad signature", format!("{:?}", client.call_json(&Call::SubmitJob(bad))).into_bytes());
    let replay = u64_job(program, signer.address(), 100, 100).sign(&signer);
    keep("replayed nonce", format!("{:?}", client.call_json(&Call::SubmitJob(replay))).into_bytes());
    // A panic in the executor, then a job after it.
    keep(
        "panic",
        format!(
            "{:?}",
            client.call_json(&Call::Panic(coprocessor_actors::wire::PanicParams { actor: "executor".into() }))
        )
        .into_bytes(),
    );
    let after = client.call_json(&Call::SubmitJob(u64_job(program, signer.address(), 400, 9).sign(&signer))).unwrap();
    ids.push(after["jobId"].as_str().unwrap().to_owned());
    // Results, status, metrics on every channel.
    for id in &ids {
        let (ok, out) = cli(&["job", "result", id, "--json"]);
        assert!(ok || String::from_utf8_lossy(&out).contains("pending"), "{}", String::from_utf8_lossy(&out));
        keep("job result", out);
        keep("job status", cli(&["job", "status", id]).1);
    }
    keep("metrics", cli(&["metrics"]).1);
    keep("metrics --tcp", cli(&["metrics", "--json", "--tcp", &format!("127.0.0.1:{port}")]).1);
    keep("status", format!("{:?}", client.call_json(&Call::Status(NoParams {}))).into_bytes());
    keep("metrics json", format!("{:?}", client.call_json(&Call::Metrics(NoParams {}))).into_bytes());
    let text = prometheus(prom);
    assert!(text.contains("coprocessor_api_auth_failures_total 2"), "{text}");
    keep("prometheus", text.into_bytes());
    // Stop it the operator's way.
    let pid = engine.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let stop = Instant::now();
    let status = loop {
        if let Some(status) = engine.child.try_wait().unwrap() {
            break status;
        }
        assert!(stop.elapsed() < Duration::from_secs(60), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    keep("engine stdout", std::fs::read(&stdout_path).unwrap());
    let stderr = std::fs::read(&stderr_path).unwrap();
    // The run did what it should have: traced, panicked, refused.
    let log = String::from_utf8_lossy(&stderr);
    assert!(log.contains("TRACE") && log.contains("injected fault"), "a thin log: {} bytes", log.len());
    keep("engine stderr", stderr);
    // And what it left on disk, but the secret files themselves.
    for path in files(&data) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if [keys::OPERATOR_KEY, keys::DEV_CONSUMER_KEY, keys::API_TOKEN].contains(&name.as_str()) {
            continue;
        }
        keep(&path.display().to_string(), std::fs::read(&path).unwrap());
    }
    let total: usize = outputs.iter().map(|(_, bytes)| bytes.len()).sum();
    // The search finds a secret where one is: in the secret files.
    for (file, (_, bytes)) in [keys::OPERATOR_KEY, keys::DEV_CONSUMER_KEY, keys::API_TOKEN].iter().zip(&secrets) {
        let text = std::fs::read(data.join(file)).unwrap();
        assert!(forms(bytes)[1..4].iter().all(|form| find(&text, form)), "{file}");
    }
    for (secret, bytes) in &secrets {
        for form in forms(bytes) {
            for (name, output) in &outputs {
                assert!(!find(output, &form), "the {secret} appears in {name} ({:?})", String::from_utf8_lossy(&form));
            }
        }
    }
    assert!(total > 100_000, "only {total} bytes of output were searched");
}
