//! `coprocessor deploy`: deploy the JobManager and the example consumers
//! to a node (local development), for the engine in `--data-dir`.

use super::dev::block_on;
use coprocessor::devnet::{self, DeployParams, ExamplePrograms};
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// The node's HTTP JSON-RPC URL.
    #[arg(long)]
    rpc: String,
    /// Print `{"jobManager", "squareRootConsumer", "clobConsumer"}`.
    #[arg(long)]
    json: bool,
    /// The engine's data dir: its operator, relayer and dev consumer keys
    /// (created if missing) go into the deployment.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The deployer's key [default: hardhat's first dev account].
    #[arg(long)]
    deployer_key: Option<String>,
}

pub(crate) fn run(args: DeployArgs) -> Result<ExitCode, String> {
    let contracts = devnet::contracts_dir().map_err(|err| err.to_string())?;
    let square_root = devnet::guest_elf(&contracts, "square-root").map_err(|err| err.to_string())?;
    let clob = devnet::guest_elf(&contracts, "clob").map_err(|err| err.to_string())?;
    coprocessor_actors::create_data_dir(&args.data_dir).map_err(|err| format!("{}: {err}", args.data_dir.display()))?;
    let key = |name: &str| keys::load_or_generate(&args.data_dir.join(name)).map_err(|err| err.to_string());
    let deployer = args.deployer_key.as_deref().unwrap_or(devnet::DEV_DEPLOYER_KEY);
    let params = DeployParams {
        rpc_url: args.rpc.clone(),
        deployer: deployer.parse().map_err(|err| format!("--deployer-key: {err}"))?,
        operator: key(keys::OPERATOR_KEY)?.address(),
        relayer: key(keys::RELAYER_KEY)?.address(),
        extra_relayers: Vec::new(),
        offchain_signer: key(keys::DEV_CONSUMER_KEY)?.address(),
        examples: Some(ExamplePrograms { square_root: ProgramId::of(&square_root), clob: ProgramId::of(&clob) }),
        max_cycles: 1_000_000_000,
        relayer_funds: alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(20u64)),
    };
    let deployment = block_on(devnet::deploy(&params))?.map_err(|err| err.to_string())?;
    let examples = deployment.examples.ok_or("the example consumers were not deployed")?;
    if args.json {
        let json = serde_json::json!({
            "jobManager": deployment.job_manager.to_string(),
            "squareRootConsumer": examples.square_root_consumer.to_string(),
            "clobConsumer": examples.clob_consumer.to_string(),
        });
        println!("{json}");
    } else {
        println!("# Put this in config.toml (or run with --rpc and --job-manager):");
        println!("[chain]");
        println!("rpc_url = \"{}\"", deployment.rpc_url);
        println!("job_manager = \"{}\"", deployment.job_manager);
        println!();
        println!("# square-root consumer: {}", examples.square_root_consumer);
        println!("# clob consumer:        {}", examples.clob_consumer);
    }
    Ok(ExitCode::SUCCESS)
}
