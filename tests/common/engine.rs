//! An engine on a temp data dir, for the tests and the benchmarks.
//!
//! Two ways to run it, with one API:
//!
//! - [`Engine::start`]: the real binary (`coprocessor run`) as a child
//!   process. The black-box tests use this one: they test the binary.
//! - [`Engine::in_process`]: `coprocessor_actors::run` on a thread of the
//!   calling process, stopped by a channel instead of a signal. Nothing
//!   to spawn, and the engine shares the caller's address space (profilers,
//!   benchmarks).
//!
//! ```ignore
//! let engine = Engine::in_process(&dir.path().join("data"));
//! let program = engine.submit_program("square-root");
//! // ... engine.client(), engine.fast_client() ...
//! assert!(engine.terminate().success());
//! ```
#![allow(dead_code, unreachable_pub)]

use coprocessor::client::{Client, FastClient};
use coprocessor::request::JobRequest;
use coprocessor_actors::config::Config;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::protocol::eip191::Signer;
use coprocessor_actors::wire::{
    Call, ContainsProgram, ContainsReply, HexBytes, JobResult, NoParams, ProgramIdReply, StatusReply, SubmitProgram,
};
use coprocessor_actors::{EngineError, MetricsSnapshot};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running engine: `coprocessor run` or `coprocessor_actors::run`.
pub struct Engine {
    pub data_dir: PathBuf,
    socket: PathBuf,
    mode: Mode,
}

/// How the engine runs.
enum Mode {
    /// The binary, with what it was started with (for a restart).
    Binary { child: Child, config: Option<PathBuf>, env: Vec<(String, String)> },
    /// A thread of this process.
    InProcess(Box<InProcess>),
}

/// An engine on a thread of this process.
struct InProcess {
    config: Config,
    /// Dropping or sending on it resolves the engine's shutdown future.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// `None` once joined.
    thread: Option<JoinHandle<Result<(), EngineError>>>,
}

/// What [`Engine::kill9`] leaves for [`Engine::respawn`].
pub type Killed = (PathBuf, Option<PathBuf>, Vec<(String, String)>);

/// How long an engine has to open its socket, and to stop.
const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(60);

impl Engine {
    /// Starts the binary on `data_dir` with the embedded default config.
    pub fn start(data_dir: &Path) -> Engine {
        Engine::start_with(data_dir, None, &[])
    }

    /// Starts the binary with a config file's text (written next to the
    /// data dir) and extra environment variables (`RUST_LOG` is `warn`
    /// unless they set it).
    pub fn start_with(data_dir: &Path, config: Option<&str>, env: &[(&str, &str)]) -> Engine {
        let config = config.map(|text| {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, text).expect("write config");
            path
        });
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Engine::spawn(data_dir.to_owned(), config, env)
    }

    /// Runs the engine in this process on `data_dir`, with the embedded
    /// default config.
    pub fn in_process(data_dir: &Path) -> Engine {
        Engine::in_process_with(data_dir, None)
    }

    /// Runs the engine in this process with a config file's text (its
    /// `data_dir` is replaced by `data_dir`). There are no environment
    /// variables to pass: they would be the whole process's.
    pub fn in_process_with(data_dir: &Path, config: Option<&str>) -> Engine {
        let mut config = match config {
            Some(text) => Config::parse(text, "test config"),
            None => Config::embedded(),
        }
        .expect("engine config");
        config.data_dir = data_dir.to_owned();
        Engine::run_in_process(config)
    }

    fn spawn(data_dir: PathBuf, config: Option<PathBuf>, env: Vec<(String, String)>) -> Engine {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coprocessor"));
        command.arg("run").arg("--data-dir").arg(&data_dir);
        if let Some(config) = &config {
            command.arg("--config").arg(config);
        }
        command.env("RUST_LOG", "warn").envs(env.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log_file(&data_dir));
        // Its own process group, so its CPU time can be read on its own (the
        // chain bench does); and it is sent SIGTERM if this process dies
        // first, so no engine outlives its test.
        command.process_group(0);
        // SAFETY: prctl is async-signal-safe and only asks the kernel to
        // signal the child when its parent thread exits.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().expect("start coprocessor run");
        let socket = data_dir.join("coprocessor.ipc");
        let mut engine = Engine { data_dir, socket, mode: Mode::Binary { child, config, env } };
        engine.wait_ready();
        engine
    }

    /// Starts `coprocessor_actors::run` on a thread named `engine`, which
    /// logs warnings and errors to the same file as the binary's stderr.
    fn run_in_process(config: Config) -> Engine {
        let data_dir = config.data_dir.clone();
        let socket = config.socket_path();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let for_thread = config.clone();
        let log_next_to = data_dir.clone();
        let thread = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
                    .with_writer(std::sync::Mutex::new(log_file(&log_next_to)))
                    .with_ansi(false)
                    .finish();
                let result = tracing::subscriber::with_default(subscriber, || {
                    // A dropped sender stops the engine too.
                    coprocessor_actors::run(for_thread, async move {
                        let _ = stopped.await;
                    })
                });
                if let Err(err) = &result {
                    let _ = writeln!(log_file(&log_next_to), "error: {err}");
                }
                result
            })
            .expect("start the engine thread");
        let in_process = InProcess { config, stop: Some(stop), thread: Some(thread) };
        let mut engine = Engine { data_dir, socket, mode: Mode::InProcess(Box::new(in_process)) };
        engine.wait_ready();
        engine
    }

    /// Starts it again on the same data dir and config: the binary after
    /// SIGKILL, the in-process engine after a clean stop.
    pub fn restart(self) -> Engine {
        match &self.mode {
            Mode::Binary { config, env, .. } => {
                let (data_dir, config, env) = (self.data_dir.clone(), config.clone(), env.clone());
                drop(self);
                Engine::spawn(data_dir, config, env)
            }
            Mode::InProcess(in_process) => {
                let config = in_process.config.clone();
                let status = self.terminate();
                assert!(status.success(), "the engine stopped with {status} before its restart");
                Engine::run_in_process(config)
            }
        }
    }

    /// The engine's process: the child's, or this one when in-process.
    pub fn pid(&self) -> u32 {
        match &self.mode {
            Mode::Binary { child, .. } => child.id(),
            Mode::InProcess(_) => std::process::id(),
        }
    }

    /// What the engine logged: the binary's stderr, or the in-process
    /// engine's warnings and errors from its own thread (its pools' threads
    /// log to this process's subscriber, if any) and the error it stopped
    /// with.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < START_LIMIT {
            if Client::connect(&self.socket()).is_ok() {
                return;
            }
            if let Some(status) = self.exited() {
                panic!("the engine exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the engine did not open its socket within {} s", START_LIMIT.as_secs());
    }

    /// The exit status, if the engine has stopped on its own.
    fn exited(&mut self) -> Option<ExitStatus> {
        match &mut self.mode {
            Mode::Binary { child, .. } => child.try_wait().ok().flatten(),
            Mode::InProcess(in_process) => {
                if in_process.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                    in_process.join(Duration::ZERO)
                } else {
                    None
                }
            }
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.socket.clone()
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

    /// `coproc_metrics`.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.client().call(Call::Metrics(NoParams {})).expect("metrics")
    }

    /// Whether the engine holds `program`, once it does or after `limit`
    /// (a cluster's engines register what another shared).
    pub fn holds_within(&self, program: &ProgramId, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            let params = ContainsProgram { program_id: HexBytes(program.0.to_vec()) };
            let reply: ContainsReply = self.client().call(Call::ContainsProgram(params)).expect("containsProgram");
            if reply.contains || start.elapsed() > limit {
                return reply.contains;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn submit_program(&self, guest: &str) -> ProgramId {
        let elf = super::guest_elf(guest);
        let reply: ProgramIdReply = self
            .client()
            // Named as the CLI names it: the file's name, so `rv64/clob` is `clob`.
            .call(Call::SubmitProgram(SubmitProgram {
                elf: HexBytes(elf),
                name: guest.rsplit('/').next().map(str::to_owned),
            }))
            .expect("submit program");
        ProgramId(reply.program_id.0.try_into().expect("32-byte id"))
    }

    /// Stops the engine the way its operator would (SIGTERM for the binary,
    /// the shutdown future for the in-process engine) and waits for its
    /// exit status. In-process, a clean stop is status 0, an error 1 and a
    /// panic 101 (what the binary would exit with).
    pub fn terminate(mut self) -> ExitStatus {
        match &mut self.mode {
            Mode::Binary { child, .. } => {
                signal(child, libc_sigterm());
                let status = wait_timeout(child, STOP_LIMIT).expect("engine exits after SIGTERM");
                std::mem::forget(self);
                status
            }
            Mode::InProcess(in_process) => {
                in_process.stop(STOP_LIMIT).expect("the engine stops and releases its store within 60 s")
            }
        }
    }

    /// Kills the binary with SIGKILL and reaps it.
    ///
    /// # Panics
    ///
    /// In-process: a SIGKILL would take the test with it (use
    /// [`Engine::start`] for crash tests).
    pub fn kill9(mut self) -> Killed {
        let Mode::Binary { child, config, env } = &mut self.mode else {
            panic!("kill9 needs the engine binary (Engine::start): an in-process engine cannot be killed alone");
        };
        let _ = child.kill();
        let _ = child.wait();
        let parts = (self.data_dir.clone(), config.clone(), env.clone());
        std::mem::forget(self);
        parts
    }

    /// Starts the binary again after [`Engine::kill9`].
    pub fn respawn(parts: Killed) -> Engine {
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
    /// Kills the binary; stops the in-process engine (it cannot be killed)
    /// and waits for it, but not forever.
    fn drop(&mut self) {
        match &mut self.mode {
            Mode::Binary { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Mode::InProcess(in_process) => {
                if in_process.thread.is_some() && in_process.stop(STOP_LIMIT).is_none() {
                    eprintln!("the in-process engine did not stop and release its store within 60 s");
                }
            }
        }
    }
}

impl InProcess {
    /// Resolves the shutdown future and waits for the thread, then for the
    /// store's lock: `run` returns once the store is flushed, but the
    /// engine's pool threads may hold it a moment longer, and whoever opens
    /// the data dir next (a restart, a replay) must find it free, as after
    /// the binary exits. `None` if that takes longer than `limit`.
    fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let status = self.join(limit)?;
        store_released(&self.config.data_dir, limit.saturating_sub(start.elapsed())).then_some(status)
    }

    /// Joins the thread if it ends within `limit`; `None` if it does not
    /// (it stays joinable) or was joined already.
    fn join(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while !self.thread.as_ref()?.is_finished() {
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let code = match self.thread.take()?.join() {
            Ok(Ok(())) => 0,
            Ok(Err(_)) => 1,
            Err(_) => 101,
        };
        Some(ExitStatus::from_raw(code << 8))
    }
}

/// Waits up to `limit` until no one holds the lock sled takes on the store
/// (`flock` on `db/db`); true if it is free, or there is no store.
fn store_released(data_dir: &Path, limit: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(data_dir.join("db").join("db")) else { return true };
    let start = Instant::now();
    loop {
        // SAFETY: flock on a descriptor `file` owns; the lock goes with it.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The engine's log, next to its data dir, opened for appending.
fn log_file(data_dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().create(true).append(true).open(data_dir.with_extension("log")).expect("engine log file")
}

fn libc_sigterm() -> i32 {
    15
}

fn signal(child: &Child, signal: i32) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    wait_timeout(child, limit)
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
