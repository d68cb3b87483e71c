//! A real engine process on a temp data dir, for black-box tests.
#![allow(dead_code, unreachable_pub)]

use coprocessor::client::{Client, FastClient};
use coprocessor::request::JobRequest;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{Call, HexBytes, JobResult, NoParams, ProgramIdReply, StatusReply, SubmitProgram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `coprocessor run`.
pub struct Engine {
    pub child: Child,
    pub data_dir: PathBuf,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Engine {
    /// Starts the engine on `data_dir` with the embedded default config.
    pub fn start(data_dir: &Path) -> Engine {
        Engine::start_with(data_dir, None, &[])
    }

    /// Starts the engine with a config file's text (written next to the
    /// data dir) and extra environment variables.
    pub fn start_with(data_dir: &Path, config: Option<&str>, env: &[(&str, &str)]) -> Engine {
        let config = config.map(|text| {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, text).expect("write config");
            path
        });
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Engine::spawn(data_dir.to_owned(), config, env)
    }

    fn spawn(data_dir: PathBuf, config: Option<PathBuf>, env: Vec<(String, String)>) -> Engine {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coprocessor"));
        command.arg("run").arg("--data-dir").arg(&data_dir);
        if let Some(config) = &config {
            command.arg("--config").arg(config);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .expect("engine log file");
        command.env("RUST_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let child = command.spawn().expect("start coprocessor run");
        let mut engine = Engine { child, data_dir, config, env };
        engine.wait_ready();
        engine
    }

    /// Starts it again on the same data dir and config.
    pub fn restart(self) -> Engine {
        let (data_dir, config, env) = (self.data_dir.clone(), self.config.clone(), self.env.clone());
        drop(self);
        Engine::spawn(data_dir, config, env)
    }

    /// What the engine wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if Client::connect(&self.socket()).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the engine exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the engine did not open its socket within 30 s");
    }

    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("coprocessor.ipc")
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket()).expect("connect")
    }

    pub fn fast_client(&self) -> FastClient {
        FastClient::connect(&self.socket()).expect("connect")
    }

    /// The dev consumer signer the engine generated and allows.
    pub fn dev_signer(&self) -> Signer {
        keys::load(&self.data_dir.join(keys::DEV_CONSUMER_KEY)).expect("dev consumer key")
    }

    pub fn operator(&self) -> alloy::primitives::Address {
        let status: StatusReply = self.client().call(Call::Status(NoParams {})).expect("status");
        alloy::primitives::Address::from_slice(&status.operator.0)
    }

    pub fn submit_program(&self, guest: &str) -> ProgramId {
        let elf = std::fs::read(super::guest(guest)).expect("read guest");
        let reply: ProgramIdReply =
            self.client().call(Call::SubmitProgram(SubmitProgram { elf: HexBytes(elf) })).expect("submit program");
        ProgramId(reply.program_id.0.try_into().expect("32-byte id"))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        signal(&self.child, libc_sigterm());
        let status = wait_timeout(&mut self.child, Duration::from_secs(60)).expect("engine exits after SIGTERM");
        std::mem::forget(self);
        status
    }

    /// Kills with SIGKILL and reaps.
    pub fn kill9(mut self) -> (PathBuf, Option<PathBuf>, Vec<(String, String)>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let parts = (self.data_dir.clone(), self.config.clone(), self.env.clone());
        std::mem::forget(self);
        parts
    }

    /// Starts an engine again after [`Engine::kill9`].
    pub fn respawn(parts: (PathBuf, Option<PathBuf>, Vec<(String, String)>)) -> Engine {
        Engine::spawn(parts.0, parts.1, parts.2)
    }

    /// Waits until a job is no longer pending or running.
    pub fn wait_result(&self, client: &mut Client, job_id: &[u8]) -> JobResult {
        let start = Instant::now();
        loop {
            let result: JobResult = client
                .call(Call::GetResult(coprocessor_actors::wire::JobIdParams { job_id: HexBytes(job_id.to_vec()) }))
                .expect("get result");
            if !matches!(result.status.as_str(), "pending" | "running") {
                return result;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "job still {} after 120 s", result.status);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn libc_sigterm() -> i32 {
    15
}

fn signal(child: &Child, signal: i32) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A job request whose onchain input is `abi.encode(uint64 n)` (the input
/// of square-root and fibonacci), with a 10^6 cycle limit.
pub fn u64_job(program: ProgramId, consumer: alloy::primitives::Address, nonce: u64, n: u64) -> JobRequest {
    JobRequest {
        nonce,
        max_cycles: 1_000_000,
        consumer,
        program_id: program,
        onchain_input: super::abi_u64(n),
        offchain_input: Vec::new(),
    }
}
