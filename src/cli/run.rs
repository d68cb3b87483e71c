//! `coprocessor run`: start the engine.

use coprocessor_actors::config::{Chain, Config};
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
    /// Settle onchain through this node (HTTP JSON-RPC), overriding `[chain]`.
    #[arg(long, requires = "job_manager")]
    rpc: Option<String>,
    /// The JobManager's address, overriding `[chain]`.
    #[arg(long)]
    job_manager: Option<String>,
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode, String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|err| err.to_string())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if args.rpc.is_some() || args.job_manager.is_some() {
        let mut chain = config.chain.take().unwrap_or_default();
        if let Some(rpc) = args.rpc {
            chain.rpc_url = rpc;
        }
        if let Some(job_manager) = args.job_manager {
            chain.job_manager = job_manager;
        }
        config.chain = Some(chain);
        config.validate().map_err(|err| err.to_string())?;
    }
    coprocessor_actors::run(config, coprocessor_actors::shutdown_signal()).map_err(|err| err.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// The `[chain]` section for a node and a JobManager.
pub(crate) fn chain_section(rpc_url: String, job_manager: String) -> Chain {
    Chain { rpc_url, job_manager, ..Chain::default() }
}
