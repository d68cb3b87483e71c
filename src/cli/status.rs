//! `coprocessor status [--json]`: who the node is, what it holds, and
//! whether it is healthy and ready (`coproc_status` and `coproc_health`).

use super::{describe, EngineArgs};
use coprocessor::input::to_hex;
use coprocessor_actors::wire::{Call, NoParams, StatusReply};
use coprocessor_actors::Health;
use std::process::ExitCode;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print `{"status": …, "health": …}` (the two objects) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Exit status 0 when the engine is ready, 1 when it answers but is not.
pub(crate) fn run(args: StatusArgs) -> Result<ExitCode, String> {
    let mut client = args.engine.connect()?;
    let status: StatusReply = client.call(Call::Status(NoParams {})).map_err(describe)?;
    let health: Health = client.call(Call::Health(NoParams {})).map_err(describe)?;
    if args.json {
        let both = serde_json::json!({ "status": status, "health": health });
        println!("{both}");
    } else {
        print_human(&status, &health);
    }
    Ok(if health.ready { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_human(status: &StatusReply, health: &Health) {
    let state = match (health.healthy, health.ready) {
        (true, true) => "ready",
        (true, false) => "not ready",
        (false, _) => "unhealthy (restart it)",
    };
    println!("engine      {state}");
    println!("build       {} ({})", status.version, status.git_commit);
    println!("operator    {}", to_hex(&status.operator.0));
    println!("uptime      {} s", status.uptime_seconds);
    println!("pending     {} jobs", status.jobs_pending);
    println!("dead letter {} jobs", status.jobs_dead_lettered);
    if let Some(chain) = &status.chain {
        println!("chain       {chain}");
    }
    if let Some(cluster) = &status.cluster {
        println!("cluster     node {} on {}", cluster.node, cluster.servers.join(", "));
        println!(
            "cluster     {} jobs queued; here: {} run, {} results recorded, {} redelivered",
            cluster.jobs_queued, cluster.jobs_run_here, cluster.results_recorded_here, cluster.redeliveries_here
        );
        if status.chain.is_some() {
            println!(
                "cluster     {} results to settle; here: {} relaying, {} relayed, {} ordered-relay leases",
                cluster.relays_queued, cluster.relays_held_here, cluster.relays_ended_here, cluster.leases_held_here
            );
        }
    }
    if let Some(onchain) = &status.onchain {
        let or_unknown = |figure: Option<u64>| figure.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        println!("chain id    {}", or_unknown(onchain.chain_id));
        println!(
            "listener    block {} (head {}, {} behind)",
            onchain.listener_block,
            or_unknown(onchain.head),
            or_unknown(onchain.listener_lag_blocks)
        );
        println!("relay       {} results awaiting", onchain.awaiting_relay);
        for relayer in &onchain.relayers {
            let balance = relayer.balance_wei.as_deref().unwrap_or("unknown");
            println!("relayer     {} balance {balance} wei", to_hex(&relayer.address.0));
        }
    }
    for (name, check) in &health.checks {
        println!("check {name:<6}{} {}", if check.ok { "ok  " } else { "FAIL" }, check.detail);
    }
}
