//! The commands. Each `///` comment is the `--help` text.

mod exec;

use clap::{Parser, Subcommand};
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
    /// Run one program locally, with no engine, and print its result.
    Exec(exec::ExecArgs),
}

impl Cli {
    pub(crate) fn run(self) -> ExitCode {
        match self.command {
            Command::Exec(args) => exec::run(args),
        }
    }
}
