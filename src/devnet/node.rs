//! A local hardhat node (from `contracts/node_modules`), on 127.0.0.1, in
//! its own process group so that stopping it stops everything it started.

use super::DevnetError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running node. Dropping it stops it.
#[derive(Debug)]
pub struct HardhatNode {
    child: Option<Child>,
    port: u16,
}

/// The `contracts/` folder: `$COPROCESSOR_CONTRACTS_DIR`, else `contracts/`
/// in the current directory or the nearest ancestor that has one.
pub fn contracts_dir() -> Result<PathBuf, DevnetError> {
    if let Some(dir) = std::env::var_os("COPROCESSOR_CONTRACTS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let start = std::env::current_dir().map_err(|err| DevnetError::Node(format!("current dir: {err}")))?;
    start
        .ancestors()
        .map(|dir| dir.join("contracts"))
        .find(|dir| dir.join("hardhat.config.js").is_file())
        .ok_or_else(|| DevnetError::Node("no contracts/ folder here or above (set COPROCESSOR_CONTRACTS_DIR)".into()))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, DevnetError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| DevnetError::Node(err.to_string()))?;
    Ok(listener.local_addr().map_err(|err| DevnetError::Node(err.to_string()))?.port())
}

impl HardhatNode {
    /// Starts `hardhat node` on 127.0.0.1:`port` and waits until it answers
    /// `eth_chainId`. Its output goes to `log` (or nowhere).
    pub fn start(contracts: &Path, port: u16, log: Option<&Path>) -> Result<HardhatNode, DevnetError> {
        let hardhat = contracts.join("node_modules/.bin/hardhat");
        if !hardhat.exists() {
            return Err(DevnetError::Node(format!(
                "{} is missing: run `npm ci` in {} (make run and make test do)",
                hardhat.display(),
                contracts.display()
            )));
        }
        let (stdout, stderr) = match log {
            Some(path) => {
                let io = |err: std::io::Error| DevnetError::Node(format!("{}: {err}", path.display()));
                let file = std::fs::File::create(path).map_err(io)?;
                (Stdio::from(file.try_clone().map_err(io)?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut command = Command::new(&hardhat);
        command
            .args(["node", "--hostname", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(contracts)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
        // SIGTERM to the node if this process dies first.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child =
            command.spawn().map_err(|err| DevnetError::Node(format!("starting {}: {err}", hardhat.display())))?;
        let mut node = HardhatNode { child: Some(child), port };
        node.wait_ready()?;
        Ok(node)
    }

    fn wait_ready(&mut self) -> Result<(), DevnetError> {
        let started = Instant::now();
        loop {
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(DevnetError::Node(format!(
                        "hardhat node exited at start-up ({status}); is port {} free?",
                        self.port
                    )));
                }
            }
            if chain_id(self.port).is_some_and(|id| id == 31337) {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                self.stop();
                return Err(DevnetError::Node(format!("hardhat node did not answer within {START_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's HTTP JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process group (the node's PID).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` to the node's whole process group.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: signals the process group this value started and owns.
            unsafe {
                libc::kill(-(pid as i32), signal);
            }
        }
    }

    /// Stops the node: SIGTERM to its group, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        self.signal_pid(child.id(), libc::SIGCONT);
        self.signal_pid(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.signal_pid(child.id(), libc::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_pid(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }

    fn signal_pid(&self, pid: u32, signal: i32) {
        // SAFETY: signals the process group this value started and owns.
        unsafe {
            libc::kill(-(pid as i32), signal);
        }
    }
}

impl Drop for HardhatNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `eth_chainId` over plain HTTP/1.0, or `None` if nothing answers.
fn chain_id(port: u16) -> Option<u64> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let json = response.split("\r\n\r\n").nth(1)?;
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    u64::from_str_radix(value["result"].as_str()?.trim_start_matches("0x"), 16).ok()
}
