//! The commands. Each `///` comment is the `--help` text.

mod calldata;
mod deploy;
mod dev;
mod exec;
mod job;
mod metrics;
mod new;
mod program;
mod replay;
mod request;
mod run;
mod status;

use clap::{Parser, Subcommand};
use coprocessor::client::{Client, ClientError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Offchain compute engine for EVM applications.
#[derive(Debug, Parser)]
#[command(name = "coprocessor", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the engine (the embedded default config when no --config).
    Run(run::RunArgs),
    /// Run the whole local stack: a node, the contracts, and the engine.
    Dev(dev::DevArgs),
    /// Deploy the JobManager and the example consumers (local development).
    Deploy(deploy::DeployArgs),
    /// Register and list programs.
    #[command(subcommand)]
    Program(program::ProgramCommand),
    /// Submit jobs and read their results.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Show per-actor and engine metrics.
    Metrics(metrics::MetricsArgs),
    /// Show who the engine is, what it holds, and whether it is ready
    /// (exit 1 when it is not).
    Status(status::StatusArgs),
    /// Re-execute logged jobs and check them against the log.
    Replay(replay::ReplayArgs),
    /// Run one program locally, with no engine, and print its result.
    Exec(exec::ExecArgs),
    /// Create a new app: a guest crate on the SDK with an example, a unit
    /// test and a Makefile (`make test`).
    New(new::NewArgs),
}

impl Cli {
    pub(crate) fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Exec(args) => return exec::run(args),
            Command::Run(args) => run::run(args),
            Command::Dev(args) => dev::run(args),
            Command::Deploy(args) => deploy::run(args),
            Command::Program(command) => program::run(command),
            Command::Job(command) => job::run(command),
            Command::Metrics(args) => metrics::run(args),
            Command::Status(args) => status::run(args),
            Command::Replay(args) => replay::run(args),
            Command::New(args) => new::run(args),
        };
        match result {
            Ok(code) => code,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Where the engine is: every client command takes these.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EngineArgs {
    /// The engine's data dir (its socket and the dev consumer key are there).
    #[arg(long, default_value = "data", global = true)]
    data_dir: PathBuf,
    /// The engine's socket [default: <data-dir>/coprocessor.ipc].
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Connect to the engine's TCP address (its `api.tcp`, e.g.
    /// 127.0.0.1:8645) instead of its socket, presenting the api token.
    #[arg(long, global = true)]
    tcp: Option<String>,
    /// The api token for --tcp [default: $COPROCESSOR_API_TOKEN, else
    /// <data-dir>/api.token]. Other users can read a command line (ps):
    /// prefer the variable or the file.
    #[arg(long, global = true)]
    token: Option<String>,
}

/// The environment variable that holds the api token for `--tcp`.
const TOKEN_VAR: &str = "COPROCESSOR_API_TOKEN";

impl EngineArgs {
    fn socket_path(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| self.data_dir.join("coprocessor.ipc"))
    }

    /// The token for `--tcp`: `--token`, the variable, or the data dir's
    /// file (which must be private, like a key).
    fn token(&self) -> Result<String, String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if let Some(token) = std::env::var_os(TOKEN_VAR) {
            return token.into_string().map_err(|_| format!("{TOKEN_VAR} is not UTF-8"));
        }
        let path = self.data_dir.join(coprocessor_actors::keys::API_TOKEN);
        coprocessor_actors::keys::load_token(&path)
            .map(|token| token.to_hex())
            .map_err(|err| format!("no api token for --tcp (pass --token or set {TOKEN_VAR}): {err}"))
    }

    /// Connects over TCP with `--tcp`, else to the Unix socket.
    fn client(&self) -> Result<Client, ClientError> {
        match &self.tcp {
            Some(addr) => {
                let token = self.token().map_err(ClientError::NoToken)?;
                Client::connect_tcp(addr, &token)
            }
            None => Client::connect(&self.socket_path()),
        }
    }

    fn connect(&self) -> Result<Client, String> {
        self.client().map_err(|err| err.to_string())
    }
}

/// A client error as a one-line message.
fn describe(err: ClientError) -> String {
    err.to_string()
}
