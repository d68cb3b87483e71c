//! Real `nats-server` processes with JetStream, clustered on loopback, for
//! the cluster-mode tests: started on free ports, each in its own store
//! dir, and killed by PID (SIGKILL) when the cluster drops or the test asks.
//!
//! ```ignore
//! let nats = NatsCluster::start(3);
//! let config = nats.engine_config("node-1");   // a [cluster] section
//! nats.kill(0);                                // kill -9 one server
//! ```
#![allow(dead_code, unreachable_pub)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh cluster may take to elect its JetStream leader.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// One server.
struct Server {
    child: Option<Child>,
    port: u16,
    cluster_port: u16,
    monitor_port: u16,
}

/// A JetStream cluster of `nats-server`s on 127.0.0.1.
pub struct NatsCluster {
    servers: Vec<Server>,
    dir: tempfile::TempDir,
    /// One cluster at a time per test binary: three servers and three
    /// engines per test already fill two cores, and free ports handed out
    /// to concurrent tests could collide.
    _turn: Option<std::sync::MutexGuard<'static, ()>>,
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl NatsCluster {
    /// Starts `n` servers routed to each other (one alone is a plain
    /// JetStream server) and waits until JetStream answers on every one.
    pub fn start(n: usize) -> NatsCluster {
        // A test that failed while holding the turn poisons it; the next may go.
        NatsCluster::start_with(n, Some(NatsCluster::turn()))
    }

    /// A second cluster beside one this thread already holds the turn
    /// with (a benchmark comparing the two).
    pub fn start_beside(_first: &NatsCluster, n: usize) -> NatsCluster {
        NatsCluster::start_with(n, None)
    }

    fn start_with(n: usize, turn: Option<std::sync::MutexGuard<'static, ()>>) -> NatsCluster {
        // A free port is free only until someone takes it: between our probe
        // and the server's bind, an outgoing connection anywhere on the
        // machine may get it as its ephemeral port (found in CI: "bind:
        // address already in use"). Such a cluster is thrown away and started
        // again on other ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::tempdir().expect("temp dir");
            let servers = (0..n)
                .map(|_| Server {
                    child: None,
                    port: free_port(),
                    cluster_port: free_port(),
                    monitor_port: free_port(),
                })
                .collect();
            let mut cluster = NatsCluster { servers, dir, _turn: None };
            for i in 0..n {
                cluster.spawn(i);
            }
            match (0..n).try_for_each(|i| cluster.try_wait_ready(i)) {
                Ok(()) => {
                    cluster._turn = turn;
                    return cluster;
                }
                Err(log) if attempt < 5 && log.contains("address already in use") => continue,
                Err(log) => panic!("{log}"),
            }
        }
    }

    /// Starts server `i` on its ports and store dir.
    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> =
            self.servers.iter().map(|server| format!("nats://127.0.0.1:{}", server.cluster_port)).collect();
        let server = &self.servers[i];
        let store = self.dir.path().join(format!("nats-{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("nats-{i}.log")))
            .expect("log file");
        let mut command = Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p", &server.port.to_string(), "-m", &server.monitor_port.to_string()])
            .args(["-n", &format!("nats-{i}"), "-js", "-sd"])
            .arg(&store);
        if self.servers.len() > 1 {
            command
                .args(["--cluster_name", "coprocessor-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", server.cluster_port)])
                .args(["--routes", &routes.join(",")]);
        }
        // Killed with this process, if it dies before dropping the cluster.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server (make test installs it)");
        self.servers[i].child = Some(child);
    }

    /// Starts again every server that was killed (same ports, same store
    /// dirs) and waits until JetStream answers on every one.
    pub fn restart_killed(&mut self) {
        let killed: Vec<usize> = (0..self.servers.len()).filter(|&i| self.servers[i].child.is_none()).collect();
        for &i in &killed {
            self.spawn(i);
        }
        for i in 0..self.servers.len() {
            if let Err(log) = self.try_wait_ready(i) {
                panic!("{log}");
            }
        }
    }

    /// The turn of a test that starts NATS servers some other way (`coprocessor
    /// dev --cluster`): held until dropped.
    pub fn turn() -> std::sync::MutexGuard<'static, ()> {
        TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `nats://127.0.0.1:PORT` of every server.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|server| format!("nats://127.0.0.1:{}", server.port)).collect()
    }

    /// A `[cluster]` section over every server, for an engine named `node`.
    pub fn engine_config(&self, node: &str) -> String {
        let servers: Vec<String> = self.urls().iter().map(|url| format!("\"{url}\"")).collect();
        format!("[cluster]\nservers = [{}]\nnode_name = \"{node}\"\n", servers.join(", "))
    }

    /// kill -9 of server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What server `i` logged.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("nats-{i}.log"))).unwrap_or_default()
    }

    /// Waits until server `i` says JetStream is healthy (`/healthz`: a
    /// JetStream leader is elected and the server is current). Errs, with
    /// what the server logged, when it is not after `READY_LIMIT` or when it
    /// has exited.
    fn try_wait_ready(&mut self, i: usize) -> Result<(), String> {
        let start = Instant::now();
        let monitor = self.servers[i].monitor_port;
        while start.elapsed() < READY_LIMIT {
            if coprocessor::devnet::cluster::healthz(monitor) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.servers[i].child.as_mut().map(Child::try_wait) {
                return Err(format!("nats-server {i} exited ({status}):\n{}", self.log(i)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("nats-server {i} not ready after {READY_LIMIT:?}:\n{}", self.log(i)))
    }

    /// The store dir of the servers.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
