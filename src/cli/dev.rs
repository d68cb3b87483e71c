//! `coprocessor dev`: the whole local stack in one command — a hardhat
//! node, the contracts, and the engine wired to them. In the coprocessor
//! repository it deploys and registers the example apps too; in an app from
//! `coprocessor new` (its own `contracts/`), the JobManager alone.

use super::run::chain_section;
use coprocessor::client::Client;
use coprocessor::devnet::{self, DeployParams, Deployment, ExamplePrograms, HardhatNode};
use coprocessor_actors::config::Config;
use coprocessor_actors::keys;
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::wire::{Call, HexBytes, ProgramIdReply, SubmitProgram};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The guests the example consumers run.
const EXAMPLE_GUESTS: &[&str] = &["square-root", "clob"];

/// Arguments of `dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Data dir (keys, sled, socket, deployment.json).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The node's port on 127.0.0.1 (0: any free port; deployment.json
    /// says which).
    #[arg(long, default_value_t = 8545)]
    rpc_port: u16,
    /// Run N engines as one node on N clustered nats-servers, settling on
    /// the local chain. Engine i keeps its data in DIR/node-i, its socket at
    /// DIR/node-i/coprocessor.ipc.
    #[arg(long, value_name = "N")]
    cluster: Option<usize>,
    /// With --cluster: the first NATS client port; routes and monitoring
    /// take the 2N ports after the N client ports.
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
}

pub(crate) fn run(args: DevArgs) -> Result<ExitCode, String> {
    if let Some(n) = args.cluster {
        return run_cluster(&args, n);
    }
    let contracts = devnet::contracts_dir().map_err(|err| err.to_string())?;
    let elves = devnet::example_guests(&contracts).map_err(|err| err.to_string())?;
    prepare_data_dir(&args.data_dir, &["db"])?;
    let relayer = keys::load_or_generate(&args.data_dir.join(keys::RELAYER_KEY)).map_err(|e| e.to_string())?;
    let (node, deployment) = start_chain(&args, &contracts, elves.as_ref(), vec![relayer.address()])?;

    let mut config = Config::embedded().map_err(|err| err.to_string())?;
    config.data_dir = args.data_dir.clone();
    config.chain = Some(chain_section(node.url(), deployment.job_manager.to_string()));
    let socket = config.socket_path();
    if let Some(elves) = elves {
        std::thread::spawn(move || register(&socket, &elves));
    }
    let result = coprocessor_actors::run(config, coprocessor_actors::shutdown_signal()).map_err(|err| err.to_string());
    drop(node);
    result.map(|()| ExitCode::SUCCESS)
}

/// Starts the local node and deploys the JobManager (and, in the
/// repository, the example consumers) with the data dir's operator and dev
/// consumer keys and `relayers` (the first is the JobManager's `relayer`,
/// the others are authorized; all are funded); writes `deployment.json`.
fn start_chain(
    args: &DevArgs,
    contracts: &Path,
    elves: Option<&[Vec<u8>; 2]>,
    relayers: Vec<alloy::primitives::Address>,
) -> Result<(HardhatNode, Deployment), String> {
    let key = |name: &str| keys::load_or_generate(&args.data_dir.join(name)).map_err(|e| e.to_string());
    let (operator, signer) = (key(keys::OPERATOR_KEY)?, key(keys::DEV_CONSUMER_KEY)?);
    let port = match args.rpc_port {
        0 => devnet::free_port().map_err(|err| err.to_string())?,
        port => port,
    };
    tracing::info!(port, "starting the local node");
    let node_log = args.data_dir.join("node.log");
    let node = HardhatNode::start(contracts, port, Some(&node_log)).map_err(|err| err.to_string())?;
    let (relayer, extra_relayers) = relayers.split_first().ok_or("no relayer")?;
    let params = DeployParams {
        rpc_url: node.url(),
        deployer: devnet::DEV_DEPLOYER_KEY.parse().map_err(|err| format!("deployer key: {err}"))?,
        operator: operator.address(),
        relayer: *relayer,
        extra_relayers: extra_relayers.to_vec(),
        offchain_signer: signer.address(),
        examples: elves.map(|[square_root, clob]| ExamplePrograms {
            square_root: ProgramId::of(square_root),
            clob: ProgramId::of(clob),
        }),
        max_cycles: 1_000_000_000,
        relayer_funds: alloy::primitives::U256::from(1000u64)
            * alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18u64)),
    };
    let deployment = block_on(devnet::deploy(&params))?.map_err(|err| err.to_string())?;
    write_deployment(&args.data_dir, &deployment)?;
    tracing::info!(
        job_manager = %deployment.job_manager,
        square_root_consumer = ?deployment.examples.map(|examples| examples.square_root_consumer),
        clob_consumer = ?deployment.examples.map(|examples| examples.clob_consumer),
        "contracts deployed; see {}",
        args.data_dir.join("deployment.json").display()
    );
    Ok((node, deployment))
}

/// `dev --cluster N`: the local node and contracts, then the local cluster
/// settling on them, until SIGINT or SIGTERM (or until one of its processes
/// exits, which stops the rest).
fn run_cluster(args: &DevArgs, n: usize) -> Result<ExitCode, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let contracts = devnet::contracts_dir().map_err(|err| err.to_string())?;
    let elves = devnet::example_guests(&contracts).map_err(|err| err.to_string())?;
    let stale: Vec<String> = (0..n).flat_map(|i| [format!("node-{i}/db"), format!("nats-{i}")]).collect::<Vec<_>>();
    prepare_data_dir(&args.data_dir, &stale.iter().map(String::as_str).collect::<Vec<_>>())?;
    let binary = std::env::current_exe().map_err(|err| format!("this binary: {err}"))?;
    // Ctrl-C is caught from here on: whenever it comes, the cluster stops.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|err| err.to_string())?;
    let (mut interrupt, mut terminate) = {
        let _context = runtime.enter();
        let install = |kind| signal(kind).map_err(|err| format!("signal handlers: {err}"));
        (install(SignalKind::interrupt())?, install(SignalKind::terminate())?)
    };
    let relayers = devnet::cluster::prepare(&args.data_dir, n).map_err(|err| err.to_string())?;
    let (node, deployment) = start_chain(args, &contracts, elves.as_ref(), relayers)?;
    let ports = devnet::cluster::Ports { base: args.nats_port };
    let chain = devnet::cluster::ChainLink { rpc_url: node.url(), job_manager: deployment.job_manager };
    let mut cluster = devnet::cluster::LocalCluster::start(&binary, &args.data_dir, n, ports, Some(&chain))
        .map_err(|err| err.to_string())?;
    for (i, node) in cluster.nodes.iter().enumerate() {
        tracing::info!(node = i, socket = %node.join("coprocessor.ipc").display(), "engine up");
    }
    tracing::info!(servers = ?cluster.urls, "cluster up; Ctrl-C stops it");
    // The example guests, registered once: every engine has them.
    if let (Some(elves), Some(node)) = (elves, cluster.nodes.first()) {
        register(&node.join("coprocessor.ipc"), &elves);
    }
    let exited = runtime.block_on(async {
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interrupt.recv() => break None,
                _ = terminate.recv() => break None,
                _ = check.tick() => if let Some(name) = cluster.exited() { break Some(name) },
            }
        }
    });
    tracing::info!("stopping the cluster");
    drop(cluster);
    drop(node);
    match exited {
        Some(name) => Err(format!("{name} exited; stopped the cluster (its log is in {})", args.data_dir.display())),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// A current-thread runtime for the deployment.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|err| err.to_string())?;
    Ok(runtime.block_on(future))
}

/// Creates the data dir; if an earlier run deployed there, removes what
/// belonged to its chain (`stale`, relative to `dir`: job stores, the
/// cluster's streams).
fn prepare_data_dir(dir: &Path, stale: &[&str]) -> Result<(), String> {
    coprocessor_actors::create_data_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    // The local node keeps nothing between runs, so the last run's jobs,
    // settlements and listener cursor belong to a chain that is gone. The
    // keys stay.
    if !dir.join("deployment.json").exists() {
        return Ok(());
    }
    for path in stale.iter().map(|path| dir.join(path)).filter(|path| path.exists()) {
        tracing::warn!(path = %path.display(), "fresh local chain: clearing the previous dev run's state");
        std::fs::remove_dir_all(&path).map_err(|err| format!("{}: {err}", path.display()))?;
    }
    Ok(())
}

fn write_deployment(dir: &Path, deployment: &Deployment) -> Result<(), String> {
    let path = dir.join("deployment.json");
    let text = serde_json::to_string_pretty(deployment).map_err(|err| err.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|err| format!("{}: {err}", path.display()))
}

/// Registers the example guests once the engine's socket answers.
fn register(socket: &Path, elves: &[Vec<u8>]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = loop {
        match Client::connect(socket) {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => return tracing::error!(%err, "cannot register the example guests"),
        }
    };
    for (name, elf) in EXAMPLE_GUESTS.iter().zip(elves) {
        match client.call::<ProgramIdReply>(Call::SubmitProgram(SubmitProgram {
            elf: HexBytes(elf.clone()),
            name: Some(name.to_string()),
        })) {
            Ok(reply) => {
                tracing::info!(guest = name, program_id = %format!("0x{}", hex::encode(&reply.program_id.0)), isa = %reply.isa, "registered")
            }
            Err(err) => tracing::error!(guest = name, %err, "registering failed"),
        }
    }
}
