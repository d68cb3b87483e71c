//! `coprocessor metrics [--watch] [--json]`.

use super::{describe, EngineArgs};
use coprocessor_actors::wire::{Call, NoParams};
use coprocessor_actors::MetricsSnapshot;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `metrics`.
#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    /// Refresh every second until interrupted.
    #[arg(long)]
    watch: bool,
    /// Print the `coproc_metrics` object as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(crate) fn run(args: MetricsArgs) -> Result<ExitCode, String> {
    let mut client = args.engine.connect()?;
    loop {
        let snapshot: MetricsSnapshot = client.call(Call::Metrics(NoParams {})).map_err(describe)?;
        let text =
            if args.json { serde_json::to_string(&snapshot).map_err(|err| err.to_string())? } else { table(&snapshot) };
        if args.watch && !args.json {
            // Clear the screen and home the cursor.
            print!("\x1b[2J\x1b[H");
        }
        println!("{text}");
        if !args.watch {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The human-readable form: one row per actor, then the engine totals.
pub(crate) fn table(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>7} {:>8} {:>9} {:>9} {:>8}",
        "actor", "received", "handled", "errors", "mailbox", "p50 µs", "p99 µs", "restarts"
    );
    for (name, a) in &snapshot.actors {
        let _ = writeln!(
            out,
            "{name:<10} {:>10} {:>10} {:>7} {:>8} {:>9} {:>9} {:>8}",
            a.received, a.handled, a.errors, a.mailbox, a.p50_micros, a.p99_micros, a.restarts
        );
    }
    let e = &snapshot.engine;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "jobs       accepted {}  done {}  failed {}  busy {}",
        e.jobs_accepted, e.jobs_done, e.jobs_failed, e.jobs_busy
    );
    let _ =
        writeln!(out, "rate       {:.0} jobs/s  {:.0} instructions/s", e.jobs_per_second, e.instructions_per_second);
    let _ = writeln!(out, "executors  {}  utilization {:.1}%", e.executors, e.executor_utilization * 100.0);
    // What the VM ran, per ISA (an engine that does not count them sends none).
    if !e.executor_jobs_by_isa.is_empty() {
        let by_isa: Vec<String> = e
            .executor_jobs_by_isa
            .iter()
            .map(|(isa, jobs)| {
                let cycles = e.executor_cycles_by_isa.get(isa).copied().unwrap_or(0);
                format!("{isa} {jobs} jobs {cycles} cycles")
            })
            .collect();
        let _ = writeln!(out, "isa        {}", by_isa.join("  "));
    }
    let _ = writeln!(out, "sled       {} bytes", e.sled_bytes);
    let _ = write!(out, "uptime     {} s  rejected requests {}", e.uptime_seconds, e.requests_rejected);
    // Settlement, once anything went onchain.
    if e.relay_transactions > 0 || e.jobs_relayed > 0 || e.relay_balance_gwei > 0 {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "settled    {} confirmed  {} already settled  {} cancelled  {} dead-lettered  {:.1}/s",
            e.jobs_relayed, e.jobs_already_settled, e.jobs_cancelled, e.jobs_dead_lettered, e.settled_per_second
        );
        let _ = writeln!(
            out,
            "relay      {} transactions  {:.1} results each  {} in flight  {} replaced  {} failures",
            e.relay_transactions, e.relay_average_batch, e.relay_in_flight, e.relay_replacements, e.relay_failures
        );
        let low = if e.relay_low_balance { "  LOW: fund the relayer" } else { "" };
        let _ = write!(
            out,
            "fees       {:.0} gas and {:.0} gwei per result  balance {:.4} ETH{low}",
            e.relay_gas_per_result,
            e.relay_fee_per_result_gwei,
            e.relay_balance_gwei as f64 / 1e9
        );
    }
    out
}
