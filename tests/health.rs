//! Health and readiness, as an operator's probes see them: `coproc_health`
//! on the socket, `GET /healthz` and `GET /readyz` on the metrics listener.

mod common;

use common::chain::{Link, Stack};
use common::engine::Engine;
use coprocessor::devnet::free_port;
use coprocessor_actors::wire::{Call, NoParams, StatusReply};
use coprocessor_actors::Health;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `GET path` on the metrics listener: the status line's code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics listener");
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    (code, body.to_owned())
}

/// Polls `/readyz` until its code is `code` (30 s at most); returns the body.
fn readyz_becomes(port: u16, code: u16) -> Health {
    let start = Instant::now();
    loop {
        let (got, body) = get(port, "/readyz");
        if got == code {
            return serde_json::from_str(&body).expect("the checks as JSON");
        }
        assert!(start.elapsed() < Duration::from_secs(30), "/readyz still {got} after 30 s: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_engine_without_a_chain_is_healthy_and_ready_and_says_so_on_every_probe() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port().unwrap();
    let engine = Engine::start_with(&data, Some(&format!("[metrics]\nprometheus = \"127.0.0.1:{port}\"\n")), &[]);
    let health: Health = engine.client().call(Call::Health(NoParams {})).unwrap();
    assert!(health.healthy && health.ready, "{health:?}");
    assert_eq!(health.checks.keys().collect::<Vec<_>>(), ["api", "store"]);
    let socket = data.join("coprocessor.ipc");
    assert_eq!(health.checks["api"].detail, format!("accepting on {}", socket.display()));
    let store = &health.checks["store"].detail;
    assert!(
        store.starts_with("open, ") && store.ends_with(&format!(" bytes free under {}", data.display())),
        "{store}"
    );

    let (code, body) = get(port, "/readyz");
    assert_eq!(code, 200);
    let readyz: Health = serde_json::from_str(&body).unwrap();
    assert_eq!((readyz.healthy, readyz.ready), (true, true));
    assert_eq!(get(port, "/healthz").0, 200);
    assert!(get(port, "/metrics").1.contains("coprocessor_jobs_accepted_total 0"));
    assert_eq!(get(port, "/nope"), (404, "not found: GET /metrics, /healthz or /readyz\n".to_owned()));

    // `coprocessor status`: the build, what the node holds, and the checks.
    let data_arg = data.to_str().unwrap();
    let out = common::coprocessor(&["status", "--json", "--data-dir", data_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let both: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let commit = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().unwrap();
    let commit = String::from_utf8(commit.stdout).unwrap();
    assert_eq!(both["status"]["gitCommit"], commit.trim());
    assert_eq!(both["status"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!((&both["status"]["jobsPending"], &both["status"]["jobsDeadLettered"]), (&0.into(), &0.into()));
    assert_eq!(both["status"]["onchain"], serde_json::Value::Null);
    assert_eq!(both["health"]["ready"], true);
    let out = common::coprocessor(&["status", "--data-dir", data_arg]);
    let human = String::from_utf8(out.stdout).unwrap();
    assert!(human.starts_with("engine      ready\n"), "{human}");
    assert!(human.contains("\ncheck api   ok   accepting on "), "{human}");
}

#[test]
fn readyz_fails_while_the_chain_node_is_unreachable_and_recovers_after() {
    let port = free_port().unwrap();
    let mut stack = Stack::start(Link::Proxied, &format!("[metrics]\nprometheus = \"127.0.0.1:{port}\"\n"));
    let ready = readyz_becomes(port, 200);
    let chain = &ready.checks["chain"];
    assert!(chain.ok && chain.detail.starts_with("head "), "{chain:?}");
    assert!(chain.detail.ends_with(" behind the newest it may read (at most 64)"), "{chain:?}");
    // What the node and the relayer report: hardhat's chain, the one
    // relayer key with the funds the deployment gave it and nothing spent.
    let status: StatusReply = stack.engine.client().call(Call::Status(NoParams {})).unwrap();
    let onchain = status.onchain.expect("a chain");
    assert_eq!(onchain.chain_id, Some(31337));
    assert!(onchain.listener_lag_blocks.is_some_and(|lag| lag <= 64), "{onchain:?}");
    assert_eq!(onchain.relayers.len(), 1);
    assert_eq!(onchain.relayers[0].balance_wei.as_deref(), Some("1000000000000000000000"));
    assert_eq!(onchain.awaiting_relay, 0);

    // The node goes away: not ready (a restart would not help: healthy).
    stack.proxy.as_mut().expect("proxied").down();
    let down = readyz_becomes(port, 503);
    assert!(down.healthy && !down.ready, "{down:?}");
    let url = format!("http://127.0.0.1:{}", stack.proxy.as_ref().unwrap().port);
    let chain = &down.checks["chain"];
    assert!(!chain.ok && chain.detail.starts_with(&format!("the node at {url} does not answer: ")), "{chain:?}");
    assert!(down.checks["store"].ok && down.checks["api"].ok, "{down:?}");
    assert_eq!(get(port, "/healthz").0, 200);
    let over_socket: Health = stack.engine.client().call(Call::Health(NoParams {})).unwrap();
    assert!(!over_socket.ready && !over_socket.checks["chain"].ok, "{over_socket:?}");
    // Status still answers; what only the node knows is null.
    let status: StatusReply = stack.engine.client().call(Call::Status(NoParams {})).unwrap();
    let onchain = status.onchain.expect("a chain");
    assert_eq!((onchain.chain_id, onchain.head, onchain.listener_lag_blocks), (None, None, None));
    assert_eq!(onchain.relayers[0].balance_wei, None);

    // Back: ready again by itself.
    stack.proxy.as_mut().unwrap().up();
    let back = readyz_becomes(port, 200);
    assert!(back.ready && back.checks["chain"].ok, "{back:?}");
}
