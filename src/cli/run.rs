//! `coprocessor run`: start the engine.

use coprocessor_actors::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Configuration file [default: the embedded config.toml].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data dir, overriding the config's `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode, String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|err| err.to_string())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    coprocessor_actors::supervisor::run(config).map_err(|err| err.to_string())?;
    Ok(ExitCode::SUCCESS)
}
