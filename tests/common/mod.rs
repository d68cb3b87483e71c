//! Shared helpers for the integration tests and the benchmarks (which
//! include this module with `#[path = "../tests/common/mod.rs"]`).
#![allow(dead_code, unreachable_pub)]

use coprocessor::client::FastClient;
use coprocessor_actors::wire::{Call, Reply, SubmitJob};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a built example guest (`make guests` builds them).
pub fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("programs/elf").join(format!("{name}.elf"));
    assert!(path.exists(), "{} is missing: run `make guests` first", path.display());
    path
}

/// The ELF of a built example guest.
pub fn guest_elf(name: &str) -> Vec<u8> {
    let path = guest(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// `abi.encode(uint64 n)`: one big-endian 32-byte word.
pub fn abi_u64(n: u64) -> Vec<u8> {
    let mut word = vec![0u8; 32];
    word[24..].copy_from_slice(&n.to_be_bytes());
    word
}

pub fn hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// No CLI command a test runs takes this long; one that does is hung, and
/// the test fails instead of holding up the whole suite.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Runs `coprocessor ARGS...` and returns its output.
pub fn coprocessor(args: &[&str]) -> Output {
    output_within(Command::new(env!("CARGO_BIN_EXE_coprocessor")).args(args), COMMAND_LIMIT)
}

/// Runs `command` to its end and returns its output; kills it and panics,
/// with what it printed so far, if it runs longer than `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("run {command:?}: {err}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
            panic!(
                "{command:?} still ran after {limit:?}; killed it.\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: stdout.join().expect("stdout reader"), stderr: stderr.join().expect("stderr reader") }
}

/// Runs `coprocessor exec ELF ARGS... --json`; returns (exit status, JSON).
pub fn exec_json(elf: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let path = guest(elf);
    let mut all = vec!["exec", path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    all.push("--json");
    let out = coprocessor(&all);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().expect("exit code"), json)
}

/// The two encodings of the socket API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON-RPC 2.0, one request per line.
    Json,
    /// The bincode fast path.
    Fast,
}

/// Splits `requests` into one chunk per connection.
fn chunked(requests: Vec<SubmitJob>, connections: usize) -> Vec<Vec<SubmitJob>> {
    let per = requests.len().div_ceil(connections.max(1)).max(1);
    let mut chunks: Vec<Vec<SubmitJob>> = Vec::new();
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        chunks.push(requests.by_ref().take(per).collect());
    }
    chunks
}

/// Sends `requests` over `connections` pipelined fast-path connections,
/// with at most `window` outstanding on each; returns when every answer is
/// in (each must be a job ID or a result).
pub fn pipeline(socket: &Path, connections: usize, window: usize, requests: Vec<SubmitJob>) {
    pipeline_as(Encoding::Fast, socket, connections, window, requests);
}

/// [`pipeline`] in either encoding. JSON lines are encoded before the
/// first is sent, as an independent client would have them ready.
pub fn pipeline_as(encoding: Encoding, socket: &Path, connections: usize, window: usize, requests: Vec<SubmitJob>) {
    let acked = std::sync::atomic::AtomicUsize::new(0);
    let acked = &acked;
    std::thread::scope(|scope| {
        for chunk in chunked(requests, connections) {
            match encoding {
                Encoding::Fast => scope.spawn(move || pipeline_fast(socket, window, chunk, acked)),
                Encoding::Json => scope.spawn(move || pipeline_json(socket, window, chunk)),
            };
        }
    });
}

/// [`pipeline`], counting the answers into `acked` as they come (for a
/// caller that watches progress from another thread).
pub fn pipeline_counting(
    socket: &Path,
    connections: usize,
    window: usize,
    requests: Vec<SubmitJob>,
    acked: &std::sync::atomic::AtomicUsize,
) {
    std::thread::scope(|scope| {
        for chunk in chunked(requests, connections) {
            scope.spawn(move || pipeline_fast(socket, window, chunk, acked));
        }
    });
}

fn pipeline_fast(socket: &Path, window: usize, chunk: Vec<SubmitJob>, acked: &std::sync::atomic::AtomicUsize) {
    let mut client = FastClient::connect(socket).expect("connect");
    let total = chunk.len();
    let (mut sent, mut received) = (0, 0);
    let mut chunk = chunk.into_iter();
    while received < total {
        while sent < total && sent - received < window {
            let Some(params) = chunk.next() else { break };
            client.send(Call::SubmitJob(params)).expect("send");
            sent += 1;
        }
        client.flush().expect("flush");
        let (_, reply) = client.recv().expect("recv");
        assert!(matches!(reply, Ok(Reply::JobId(_) | Reply::Result(_))), "{reply:?}");
        received += 1;
        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn pipeline_json(socket: &Path, window: usize, chunk: Vec<SubmitJob>) {
    use std::io::{BufRead, Write};
    let lines: Vec<Vec<u8>> = chunk
        .into_iter()
        .enumerate()
        .map(|(id, params)| {
            let (method, params) = coprocessor_actors::wire::Method::encode(&Call::SubmitJob(params));
            let mut line = serde_json::to_vec(
                &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .expect("encode");
            line.push(b'\n');
            line
        })
        .collect();
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    let mut writer = std::io::BufWriter::new(stream.try_clone().expect("clone"));
    let mut reader = std::io::BufReader::new(stream);
    let total = lines.len();
    let (mut sent, mut received) = (0, 0);
    let mut answer = String::new();
    while received < total {
        while sent < total && sent - received < window {
            writer.write_all(&lines[sent]).expect("send");
            sent += 1;
        }
        writer.flush().expect("flush");
        answer.clear();
        reader.read_line(&mut answer).expect("recv");
        let reply: serde_json::Value = serde_json::from_str(&answer).expect("a JSON answer");
        assert!(reply["result"].is_object(), "{answer}");
        received += 1;
    }
}

/// A process's resident memory, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

/// Bytes a directory takes on disk (allocated blocks, not file lengths).
pub fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => std::os::unix::fs::MetadataExt::blocks(&meta) * 512,
            Err(_) => 0,
        })
        .sum()
}

pub mod chain;
pub mod engine;
pub mod nats;

/// Sends each batch on its own connection with `wait`, the connections
/// together at `rate` jobs/s; each answer is the durable result. Returns
/// the submit-to-result latencies.
pub fn paced(socket: &Path, batches: Vec<Vec<SubmitJob>>, rate: f64) -> Vec<Duration> {
    let interval = Duration::from_secs_f64(batches.len() as f64 / rate);
    std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                let socket = socket.to_owned();
                scope.spawn(move || {
                    let sender = FastClient::connect(&socket).expect("connect");
                    let mut receiver = sender;
                    let start = Instant::now();
                    let mut sent_at = Vec::with_capacity(batch.len());
                    let mut latencies = Vec::with_capacity(batch.len());
                    // One thread: send on schedule, read whatever answers are ready.
                    let total = batch.len();
                    let mut batch = batch.into_iter();
                    let mut next = start;
                    while latencies.len() < total {
                        if sent_at.len() < total && Instant::now() >= next {
                            let Some(params) = batch.next() else { break };
                            sent_at.push(Instant::now());
                            receiver.send(Call::SubmitJob(params)).expect("send");
                            receiver.flush().expect("flush");
                            next += interval;
                            continue;
                        }
                        if latencies.len() < sent_at.len() {
                            let (id, reply) = receiver.recv().expect("recv");
                            assert!(matches!(reply, Ok(Reply::Result(_))), "{reply:?}");
                            latencies.push(sent_at[id as usize].elapsed());
                        } else {
                            std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        }
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("latency thread")).collect()
    })
}

/// The `q` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}
