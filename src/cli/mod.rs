//! The commands. Each `///` comment is the `--help` text.

mod deploy;
mod dev;
mod exec;
mod job;
mod metrics;
mod program;
mod replay;
mod request;
mod run;

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
    /// Re-execute logged jobs and check them against the log.
    Replay(replay::ReplayArgs),
    /// Run one program locally, with no engine, and print its result.
    Exec(exec::ExecArgs),
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
            Command::Replay(args) => replay::run(args),
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
}

impl EngineArgs {
    fn socket_path(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| self.data_dir.join("coprocessor.ipc"))
    }

    fn connect(&self) -> Result<Client, String> {
        Client::connect(&self.socket_path()).map_err(|err| err.to_string())
    }
}

/// A client error as a one-line message.
fn describe(err: ClientError) -> String {
    err.to_string()
}
