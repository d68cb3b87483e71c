//! A local cluster for `coprocessor dev --cluster N`: N `nats-server`s
//! clustered with JetStream, and N engines (`coprocessor run` child
//! processes) on them, each in its own data dir with one operator key and
//! one dev consumer key for the whole cluster and a relayer key of its own
//! (two engines sending from one account would collide on its nonces), all
//! settling on one JobManager when given a chain.
//!
//! Every process runs in its own process group and is sent SIGTERM if this
//! process dies first; [`LocalCluster`] stops them (engines first, then the
//! servers: SIGTERM, SIGKILL after 10 s) when dropped.

use super::DevnetError;
use coprocessor_actors::keys;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server or an engine may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the cluster listens: NATS clients on `base..base+n`, routes on
/// the next `n` ports, monitoring on the `n` after.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The first client port (4222 by default, NATS's own).
    pub base: u16,
}

/// The chain the engines settle on.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// The node's JSON-RPC URL.
    pub rpc_url: String,
    /// The JobManager.
    pub job_manager: alloy::primitives::Address,
}

/// Creates each engine's data dir (`dir/node-i`) with its keys: the
/// cluster's operator and dev consumer keys (made once, in `dir`), and a
/// relayer key of its own. Returns the relayers' addresses, engine 0's
/// first.
pub fn prepare(dir: &Path, n: usize) -> Result<Vec<alloy::primitives::Address>, DevnetError> {
    let fail = |what: String| DevnetError::Node(what);
    let shared_keys = [keys::OPERATOR_KEY, keys::DEV_CONSUMER_KEY];
    for name in shared_keys {
        keys::load_or_generate(&dir.join(name)).map_err(|err| fail(err.to_string()))?;
    }
    let mut relayers = Vec::new();
    for i in 0..n {
        let node = dir.join(format!("node-{i}"));
        coprocessor_actors::create_data_dir(&node).map_err(|err| fail(format!("{}: {err}", node.display())))?;
        for name in shared_keys {
            std::fs::copy(dir.join(name), node.join(name)).map_err(|err| fail(format!("{name}: {err}")))?;
        }
        let relayer = keys::load_or_generate(&node.join(keys::RELAYER_KEY)).map_err(|err| fail(err.to_string()))?;
        relayers.push(relayer.address());
    }
    Ok(relayers)
}

/// A running local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    engines: Vec<Process>,
    servers: Vec<Process>,
    /// Each engine's data dir (`DIR/node-i`).
    pub nodes: Vec<PathBuf>,
    /// `nats://127.0.0.1:PORT` of each server.
    pub urls: Vec<String>,
}

#[derive(Debug)]
struct Process {
    child: Option<Child>,
    name: String,
}

impl LocalCluster {
    /// Starts `n` servers and `n` engines (`binary run --config …`) under
    /// `dir` (see [`prepare`]), settling on `chain` if given, and waits until
    /// every engine answers on its socket.
    pub fn start(
        binary: &Path,
        dir: &Path,
        n: usize,
        ports: Ports,
        chain: Option<&ChainLink>,
    ) -> Result<LocalCluster, DevnetError> {
        let fail = |what: String| DevnetError::Node(what);
        if !(1..=9).contains(&n) {
            return Err(fail(format!("--cluster {n}: a local cluster has 1 to 9 engines")));
        }
        let port = |offset: usize| -> Result<u16, DevnetError> {
            u16::try_from(usize::from(ports.base) + offset).map_err(|_| fail(format!("port {} + {offset}", ports.base)))
        };
        let mut cluster =
            LocalCluster { engines: Vec::new(), servers: Vec::new(), nodes: Vec::new(), urls: Vec::new() };
        let routes: Vec<String> =
            (0..n).map(|i| port(n + i).map(|p| format!("nats://127.0.0.1:{p}"))).collect::<Result<_, _>>()?;
        for i in 0..n {
            let (client, route, monitor) = (port(i)?, port(n + i)?, port(2 * n + i)?);
            for taken in [client, route, monitor] {
                if std::net::TcpListener::bind(("127.0.0.1", taken)).is_err() {
                    return Err(fail(format!("port {taken} is in use (another NATS?): choose --nats-port")));
                }
            }
            let store = dir.join(format!("nats-{i}"));
            let mut command = Command::new("nats-server");
            command
                .args(["-a", "127.0.0.1", "-p", &client.to_string(), "-m", &monitor.to_string()])
                .args(["-n", &format!("nats-{i}"), "-js", "-sd"])
                .arg(&store);
            if n > 1 {
                command
                    .args(["--cluster_name", "coprocessor-dev"])
                    .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
                    .args(["--routes", &routes.join(",")]);
            }
            let log = dir.join(format!("nats-{i}.log"));
            cluster.servers.push(Process::spawn(&mut command, format!("nats-server {i}"), &log)?);
            cluster.urls.push(format!("nats://127.0.0.1:{client}"));
        }
        for i in 0..n {
            wait_until(&format!("nats-server {i} (JetStream)"), || healthz(port(2 * n + i).unwrap_or(0)))?;
        }
        prepare(dir, n)?;
        let servers: Vec<String> = cluster.urls.iter().map(|url| format!("\"{url}\"")).collect();
        let chain = chain.map_or_else(String::new, |chain| {
            format!("[chain]\nrpc_url = \"{}\"\njob_manager = \"{}\"\n", chain.rpc_url, chain.job_manager)
        });
        for i in 0..n {
            let node = dir.join(format!("node-{i}"));
            let config = node.join("config.toml");
            let text = format!("[cluster]\nservers = [{}]\nnode_name = \"node-{i}\"\n{chain}", servers.join(", "));
            std::fs::write(&config, text).map_err(|err| fail(format!("{}: {err}", config.display())))?;
            let mut command = Command::new(binary);
            command.arg("run").arg("--config").arg(&config).arg("--data-dir").arg(&node);
            let log = dir.join(format!("node-{i}.log"));
            cluster.engines.push(Process::spawn(&mut command, format!("engine {i}"), &log)?);
            cluster.nodes.push(node);
        }
        for (i, node) in cluster.nodes.iter().enumerate() {
            let socket = node.join("coprocessor.ipc");
            wait_until(&format!("engine {i}"), || std::os::unix::net::UnixStream::connect(&socket).is_ok())?;
        }
        Ok(cluster)
    }

    /// Whether every process still runs (the name of one that exited).
    pub fn exited(&mut self) -> Option<String> {
        self.engines.iter_mut().chain(self.servers.iter_mut()).find_map(|process| {
            let child = process.child.as_mut()?;
            matches!(child.try_wait(), Ok(Some(_))).then(|| process.name.clone())
        })
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for process in self.engines.iter_mut().chain(self.servers.iter_mut()) {
            process.stop();
        }
    }
}

impl Process {
    fn spawn(command: &mut Command, name: String, log: &Path) -> Result<Process, DevnetError> {
        let io = |err: std::io::Error| DevnetError::Node(format!("{}: {err}", log.display()));
        let file = std::fs::File::create(log).map_err(io)?;
        command.stdin(Stdio::null()).stdout(Stdio::from(file.try_clone().map_err(io)?)).stderr(file).process_group(0);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
        // SIGTERM to the child if this process dies first.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|err| DevnetError::Node(format!("starting {name}: {err}")))?;
        Ok(Process { child: Some(child), name })
    }

    /// SIGTERM to its group, SIGKILL after 10 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let group = -(child.id() as i32);
        // SAFETY: signals the process group this value started and owns.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(process = %self.name, "did not stop within 10 s; killed");
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait();
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) -> Result<(), DevnetError> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > START_TIMEOUT {
            return Err(DevnetError::Node(format!("{what} not ready within {START_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether a `nats-server`'s monitoring port says it is healthy (`/healthz`:
/// JetStream enabled and current).
pub fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().is_some_and(|status| status.contains(" 200 "))
}
